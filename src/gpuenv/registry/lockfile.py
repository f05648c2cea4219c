"""gpuenv.lock's [image] table, as push and pull use it: read through gpuenv.lock.lockfile (the lock's
one reader and writer), and "REGISTRY/REPO@sha256:..." added to repo_digests after a push."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import gpuenv.lock as locks         # the face: the lock file's format (and pydantic) loads when a lock exists
from gpuenv.lock import LOCK_NAME as LOCK_FILE

__all__ = ["LOCK_FILE", "LockedImage", "read_image", "add_repo_digest"]


@dataclass(frozen=True)
class LockedImage:
    path: Path
    tag: str
    id: str
    repo_digests: tuple[str, ...]


def read_image(path: Path) -> Optional[LockedImage]:
    """The [image] table of a lock file; None when there is no lock (BadInput when it is malformed)."""

    if not path.is_file():
        return None
    image = locks.lockfile.read(path).image
    return LockedImage(path, image.tag, image.id, tuple(image.repo_digests))


def add_repo_digest(path: Path, entry: str) -> bool:
    """Add `entry` to [image].repo_digests (the file is written whole, atomically); False when it was there."""

    lock = locks.lockfile.read(path)
    if entry in lock.image.repo_digests:
        return False
    image = dataclasses.replace(lock.image, repo_digests=tuple(lock.image.repo_digests) + (entry,))
    locks.lockfile.write(dataclasses.replace(lock, image=image), path)
    return True
