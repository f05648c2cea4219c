"""An image whose user has another UID/GID, derived from a loaded one without the network.

A bundle's image was built for its maker's UID/GID (the user `gpuenv`, render/dockerfile.py _user). On
another server the user differs, so the workspace would be written as a stranger. One tiny build FROM the
loaded image (no context, `--network none`, the legacy builder: nothing to pull, no BuildKit frontend)
renumbers the user and its group (adding them when the image was built by root), hands them the home and
the workspace mount point, and sets USER. It is tagged with the tag gpuenv computes for this user, so
`gpuenv up` finds it and never builds.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING

from gpuenv.errors import BadInput, EngineError
from gpuenv.run.docker import Docker

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect

USER = "gpuenv"
DERIVED_FROM = "io.gpuenv.retargeted-from"      # the label naming the image a derived one was made from
PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")


def script(uid: int, gid: int, home: str, workspace: str) -> str:
    """The shell step that gives the user `gpuenv` this UID/GID (root: nothing to renumber)."""
    if uid == 0:
        return f"mkdir -p {home} {workspace} && chown 0:0 {home} {workspace}"
    return (
        f"if ! getent group {gid} >/dev/null; then "
        f"if getent group {USER} >/dev/null; then groupmod --non-unique --gid {gid} {USER}; "
        f"else groupadd --non-unique --gid {gid} {USER}; fi; fi"
        f" && if getent passwd {USER} >/dev/null; then "
        f"usermod --non-unique --uid {uid} --gid {gid} --home {home} {USER}; "
        f"else useradd --non-unique --no-create-home --uid {uid} --gid {gid} --home-dir {home} "
        f"--shell /bin/bash {USER}; fi"
        f" && mkdir -p {home} {workspace} && chown -R {uid}:{gid} {home} && chown {uid}:{gid} {workspace}"
    )


def dockerfile(image_id: str, uid: int, gid: int, home: str, workspace: str) -> str:
    return "\n".join([
        f"FROM {image_id}",
        "USER 0:0",
        f"RUN {script(uid, gid, home, workspace)}",
        f"USER {uid}:{gid}",
        f"LABEL {DERIVED_FROM}={image_id}",
        "",
    ])


def _plain(path: str, name: str) -> str:
    """The image's own path, refused unless plain: it goes into a Dockerfile line and a shell step."""
    if not PLAIN_PATH.fullmatch(path) or len(path) > 4096:
        raise BadInput(f"the image's {name} ({path!r}) is not a plain absolute path, so its user cannot be "
                       "renumbered safely", "an image gpuenv built has a plain one: save and load it again")
    return path


def env_of(info: ImageInspect) -> dict[str, str]:
    pairs = ((info.get("Config") or {}).get("Env") or [])
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def retarget(docker: Docker, info: ImageInspect, uid: int, gid: int, tag: str) -> str:
    """Build the derived image of `info` (docker image inspect) for uid:gid, tagged `tag`; its image ID.
    One derived from this image already under `tag` is kept (a second load or pull makes nothing)."""
    there = docker.image(tag)
    if there and ((there.get("Config") or {}).get("Labels") or {}).get(DERIVED_FROM) == info["Id"]:
        return there["Id"]
    env = env_of(info)
    home = _plain(env.get("HOME", "/home/gpuenv"), "HOME")
    workspace = _plain(env.get("GPUENV_WORKSPACE", "/workspace"), "GPUENV_WORKSPACE")
    text = dockerfile(info["Id"], uid, gid, home, workspace)
    argv = docker.argv("build", "--network", "none", "--pull=false", "-t", tag, "-")
    done = subprocess.run(argv, input=text, capture_output=True, text=True, errors="replace", timeout=1800,
                          env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if done.returncode != 0:
        raise EngineError(f"could not give the loaded image's user UID {uid} / GID {gid}: "
                          f"{(done.stderr or done.stdout).strip()[-600:]}",
                          "the image needs groupadd/usermod (Debian's passwd package); or load it as the user it "
                          "was made for (the bundle's manifest.json names the UID/GID)")
    made = docker.image(tag)
    if not made:
        raise EngineError(f"the derived image {tag} is missing after its build")
    return made["Id"]
