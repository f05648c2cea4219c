"""Push an environment's image to a registry and pull one back, through the docker CLI.

push: tag the image as REF (the tag defaults to its content tag), push, read the digest the registry
      gave; a failed push leaves no new tag behind.
pull: pull REF, check the digest (the one asked for, or the lock's), tag the image with its content tag
      (gpuenv-NAME:TAG) so that `gpuenv up` finds it; a failed check leaves nothing behind.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from gpuenv.errors import BadInput, EngineError, GpuenvError
from gpuenv.registry.failures import failure
from gpuenv.registry.login import Login, docker_environment
from gpuenv.registry.ref import Ref
from gpuenv.run.docker import Docker

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect

CONTENT_TAG = re.compile(r"^[0-9a-f]{12}$")
_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_PULLED = re.compile(r"Digest: (sha256:[0-9a-f]{64})")
TIMEOUT = 6 * 3600            # tens of GB over a slow link


@dataclass(frozen=True)
class Pushed:
    image: str                # the local image (gpuenv-NAME:TAG)
    image_id: str
    target: str               # REF:TAG it was pushed as
    digest: str
    pinned: str               # REGISTRY/REPO@sha256:...


@dataclass(frozen=True)
class Pulled:
    source: str               # what was pulled
    pinned: str               # REGISTRY/REPO@sha256:...
    digest: str
    image_id: str
    tag: Optional[str]        # the content tag it now also has (None: not known)
    info: ImageInspect        # `docker image inspect` of it


def push(docker: Docker, image: str, ref: Ref, login: Optional[Login]) -> Pushed:
    info = docker.image(image)
    if not info:
        raise GpuenvError(f"the image {image} is not on this engine", "build it first: gpuenv build")
    target = ref.tagged(ref.tag or content_tag(image))
    had = docker.image(target)
    docker.run("tag", info["Id"], target)
    try:
        with docker_environment(login, ref.host) as env:
            done = _docker(docker, env, "push", target)
        if done.returncode != 0:
            raise failure("push", ref, done.stderr or done.stdout, login.username if login else None)
        digest = _found(_PUSHED, done.stdout) or _repo_digest(docker.image(target) or {}, ref)
        if not digest:
            raise EngineError(f"`docker push {target}` said no digest", "push again; the registry may be full")
    except BaseException:
        _untag(docker, target, had)
        raise
    return Pushed(image, info["Id"], target, digest, ref.pinned(digest))


def pull(docker: Docker, ref: Ref, login: Optional[Login], expect_id: str = "",
         content: Optional[str] = None) -> Pulled:
    """Pull REF (a tag or a digest), check it, and tag it `content` (else the tag its labels give)."""
    if not ref.tag and not ref.digest:
        raise BadInput(f"{ref} names no tag or digest", f"e.g. {ref.name}:TAG or {ref.name}@sha256:...")
    source = str(ref) if not (ref.tag and ref.digest) else ref.pinned()
    had = docker.image(source)
    with docker_environment(login, ref.host) as env:
        done = _docker(docker, env, "pull", source)
    if done.returncode != 0:
        raise failure("pull", ref, done.stderr or done.stdout, login.username if login else None)
    info = docker.image(source) or {}
    try:
        digest = _checked_digest(info, ref, _found(_PULLED, done.stdout))
        if expect_id and info.get("Id") != expect_id:
            raise GpuenvError(f"{source} is the image {info.get('Id')}, and gpuenv.lock expects {expect_id}",
                              "the registry holds another image under that name: push again, or lock again")
        tag = content or labelled_tag(info, ref)
        if tag:
            docker.run("tag", info["Id"], tag)
    except BaseException:
        _untag(docker, source, had)
        raise
    return Pulled(source, ref.pinned(digest), digest, info["Id"], tag, info)


def content_tag(image: str) -> str:
    """The tag part of gpuenv-NAME:TAG (what a push is tagged by default)."""
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else "latest"


def labelled_tag(info: ImageInspect, ref: Ref) -> Optional[str]:
    """gpuenv-NAME:TAG from the image's title label and REF's tag, when that tag is a content tag (or
    the one the image has already here, pulled by digest)."""
    labels = (info.get("Config") or {}).get("Labels") or {}
    name = labels.get("org.opencontainers.image.title")
    if not labels.get("io.gpuenv.spec-sha256") or not name:
        return None
    if CONTENT_TAG.match(ref.tag or ""):
        return f"gpuenv-{name}:{ref.tag}"
    return next((t for t in info.get("RepoTags") or [] if t.startswith(f"gpuenv-{name}:")), None)


def built_for(info: ImageInspect) -> Optional[tuple[int, int]]:
    """The UID:GID the image's user was built with (its USER line), None when it says no numbers."""
    user = (info.get("Config") or {}).get("User") or ""
    uid, _, gid = user.partition(":")
    return (int(uid), int(gid or uid)) if uid.isdigit() and (gid or uid).isdigit() else None


def _checked_digest(info: ImageInspect, ref: Ref, said: Optional[str]) -> str:
    digest = ref.digest or said or _repo_digest(info, ref)
    if not info or not digest or ref.pinned(digest) not in (info.get("RepoDigests") or []):
        raise GpuenvError(f"the pulled image's digests {info.get('RepoDigests')} do not include "
                          f"{ref.pinned(digest or 'sha256:?')}", "pull again; if it repeats, the registry is faulty")
    return digest


def _repo_digest(info: ImageInspect, ref: Ref) -> Optional[str]:
    for entry in info.get("RepoDigests") or []:
        name, _, digest = entry.partition("@")
        if name == ref.name:
            return digest
    return None


def _found(pattern: re.Pattern[str], text: str) -> Optional[str]:
    match = pattern.search(text or "")
    return match.group(1) if match else None


def _untag(docker: Docker, ref: str, had: Optional[ImageInspect]) -> None:
    """Remove a reference this command made (one that was there before stays)."""
    if had is None:
        docker.run("image", "rm", ref, check=False)


def _docker(docker: Docker, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(docker.argv(*args), env=env, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise EngineError(f"`docker {args[0]}` did not finish within {TIMEOUT // 3600} h",
                          "the link to the registry may be stalled; run it again (layers sent are kept)") from None
    except OSError as exc:
        raise EngineError(f"cannot run {docker.client}: {exc}", "install Docker, then `gpuenv doctor`") from None
