"""gpuenv.lock: what an environment was built from, exactly, so that another day or host builds the same.

    lockfile.py    the gpuenv.lock format (TOML): read, write atomically, the plan as data and back
    partition.py   which distributions each pip step of the Dockerfile installed (pure: recorded metadata in)
    inside.py      what a built image holds: its distributions' metadata, its apt packages (one docker run each)
    hashes.py      sha256 of every file of a pinned version, from the spec's package indexes (PEP 691 / 503)
    collect.py     a built environment -> a Lock
    drift.py       `gpuenv lock --check`: the spec, the image and the base against the lock
    locked.py      `--locked`: the lock -> the plan and the pinned steps the files are rendered from

The modules below are loaded on first use (gpuenv/lazy.py): the lock file's format brings the spec model
(pydantic), which `gpuenv ls`, `down`, `rm` and `verify` never need. Bind the package
(`import gpuenv.lock as locks`) and use `locks.locked`, `locks.lockfile`, `locks.built` where needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.lock import built as built
    from gpuenv.lock import locked as locked
    from gpuenv.lock import lockfile as lockfile

LOCK_NAME = "gpuenv.lock"
_NAMES = {name: f"gpuenv.lock.{name}" for name in ("built", "locked", "lockfile")}
__getattr__, __dir__ = exports(__name__, _NAMES)
