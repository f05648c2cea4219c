"""What `gpuenv pull` pulls: REF as given, or the digests ./gpuenv.lock pins (each registry in turn);
and whether the image's user matches this one.

An image built for another UID/GID runs, but files it writes in the workspace belong to that UID and
`gpuenv up` here plans another content tag (the tag hashes UID/GID). With the environment's gpuenv.toml
and gpuenv.lock in the folder, `renumber` gives this user the image `gpuenv up` looks for: the files the
lock renders (pinned, or unpinned for an image built before it was locked) that give the pulled image's
tag for its builder give this user's tag too, and build/retarget.py derives that image, offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import gpuenv
import gpuenv.images
from gpuenv.errors import BadInput, GpuenvError
from gpuenv.registry import ref as refs
from gpuenv.registry.lockfile import LockedImage
from gpuenv.registry.login import Login
from gpuenv.registry.transfer import Pulled, built_for, pull
from gpuenv.run.docker import Docker

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect


@dataclass(frozen=True)
class UserMismatch:
    built_for: tuple[int, int]
    you: tuple[int, int]

    @property
    def message(self) -> str:
        b, y = (f"{u}:{g}" for u, g in (self.built_for, self.you))
        return (f"the image was built for UID:GID {b} and you are {y}: files it writes in your workspace will "
                f"belong to {b}, and `gpuenv up` here plans an image for {y} (it builds that one)")

    def to_dict(self) -> dict[str, str]:
        return {"built_for": "%d:%d" % self.built_for, "you": "%d:%d" % self.you}


def user_mismatch(info: ImageInspect, you: tuple[int, int]) -> Optional[UserMismatch]:
    built = built_for(info)
    return UserMismatch(built, you) if built and built != you else None


def by_ref(docker: Docker, text: str, login: Optional[Login], locked: Optional[LockedImage]) -> Pulled:
    """REF; when ./gpuenv.lock pins that digest, its [image] id is checked and its tag given."""
    ref = refs.parse(text)
    pinned = locked if locked and ref.digest and ref.pinned() in locked.repo_digests else None
    pulled = pull(docker, ref, login, pinned.id if pinned else "", pinned.tag if pinned and pinned.tag else None)
    if locked and locked.tag and not pinned and locked.id == pulled.image_id and pulled.tag != locked.tag:
        docker.run("tag", pulled.image_id, locked.tag)
        pulled = Pulled(pulled.source, pulled.pinned, pulled.digest, pulled.image_id, locked.tag, pulled.info)
    return pulled


def by_lock(docker: Docker, login: Optional[Login], locked: Optional[LockedImage], path: Path) -> Pulled:
    """The first of the lock's repo_digests that pulls, checked against its [image] id and tagged."""
    if locked is None:
        raise BadInput(f"no REF given and no [image] in {path}",
                       "gpuenv pull REGISTRY/REPO:TAG, or run it in the folder of an environment's gpuenv.lock")
    if not locked.repo_digests:
        raise BadInput(f"{path} pins no registry digest ([image].repo_digests is empty)",
                       "push it first (gpuenv push REF records the digest), or gpuenv pull REF")
    failed = []
    for entry in locked.repo_digests:
        try:
            return pull(docker, refs.parse(entry), login, locked.id, locked.tag or None)
        except GpuenvError as exc:
            failed.append((entry, exc))
    if len(failed) == 1:
        raise failed[0][1]
    raise GpuenvError("no registry of gpuenv.lock gave the image: "
                      + "; ".join(f"{entry}: {exc.message}" for entry, exc in failed),
                      failed[-1][1].hint)


def renumber(docker: Docker, spec_file: Path, pulled: Pulled, mismatch: UserMismatch) -> Optional[str]:
    """This user's image of a pulled one built for another user, under the tag `gpuenv up` plans here;
    None when no rendering of the folder's lock gives the pulled image (nothing is derived then)."""
    # environment, render and images.retarget load here (their faces): only a pull of another user's image
    if not pulled.tag or not spec_file.is_file():
        return None
    found = gpuenv.environment.prepare_matching(spec_file, docker, lambda p: gpuenv.render.tag_for(
        p.rendered.recipe.name, *mismatch.built_for, p.rendered.context()) == pulled.tag)
    if found is None:
        return None
    gpuenv.images.retarget.retarget(docker, pulled.info, *mismatch.you, found.image)
    return found.image
