"""The workspace folder on the host, just before the first container mounts it: refused when it is the
host's root or a system folder (the spec's own check again, on the very path the mount uses: the spec's
folder can be anywhere, and a symlink can change), and made when it is missing, as the user it is for
(the engine would make it as root, and the container's user could not write to it).
"""

from __future__ import annotations

import os
from pathlib import Path

from gpuenv.errors import BadInput, GpuenvError, StorageError
from gpuenv.spec.workspace import ALLOW_KEY, refusal


def check(folder: Path, allowed: bool) -> None:
    """BadInput (exit 2) when `folder` must not be mounted and the spec does not allow it."""
    why = None if allowed else refusal(folder)
    if why:
        raise BadInput(f"the workspace {folder} cannot be mounted: {why}, and the container could change this "
                       "host through it", f"set workspace.host to a project folder, or {ALLOW_KEY} = true if "
                       "you mean it")


def create(folder: Path, uid: int, gid: int) -> list[Path]:
    """Make a missing `folder` and its missing parents, owned by `uid`:`gid` when gpuenv runs as root
    (through sudo: the caller); the folders it made, top first."""
    missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)][::-1]
    for path in missing:
        try:
            path.mkdir()
        except OSError as exc:
            raise StorageError.from_os(exc, path, doing="create the workspace folder") or GpuenvError(
                f"cannot create the workspace folder {path}: {exc.strerror}",
                "create it yourself, or set workspace.host in gpuenv.toml to a folder you own") from None
        if os.getuid() == 0:
            os.chown(path, uid, gid, follow_symlinks=False)   # the folder just made, never what a link names
    return missing


def owner(container_uid: int, container_gid: int, caller: tuple[int, int]) -> tuple[int, int]:
    """Whom a new workspace belongs to: the container's user, who writes there; the caller when that is root."""
    return caller if container_uid == 0 else (container_uid, container_gid)
