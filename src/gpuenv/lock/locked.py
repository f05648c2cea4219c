"""`--locked`: the lock next to a spec -> what the files are rendered from, with no planning.

The plan is the lock's; each pip step installs exactly its locked distributions (a requirements file
per step, `--no-deps`, `--require-hashes` when every one has hashes); FROM is the base's registry
digest when it has one, else the local base must still be the image (ID) the lock was made on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from gpuenv.errors import BadInput, GpuenvError
from gpuenv.lock import LOCK_NAME
from gpuenv.lock.lockfile import SYSTEM_STEP, Lock, Step, read
from gpuenv.render.recipe import step_file
from gpuenv.spec.write import spec_hash

if TYPE_CHECKING:
    from gpuenv.run.docker import Docker
    from gpuenv.spec.model import EnvSpec


def lock_for(spec_file: Path, spec: EnvSpec) -> Lock:
    """The lock next to `spec_file`, refused when it was made from another spec."""
    path = spec_file.parent / LOCK_NAME
    if not path.is_file():
        raise BadInput(f"--locked needs {path}, and there is none",
                       f"make it first: gpuenv lock -f {spec_file}")
    lock = read(path)
    if lock.spec_sha256 != spec_hash(spec):
        raise BadInput(f"{path} was made from another gpuenv.toml: {spec_file} changed since (spec sha256 "
                       f"{spec_hash(spec)[:12]}, the lock's {lock.spec_sha256[:12]})",
                       f"lock it again: gpuenv lock -f {spec_file} (`gpuenv lock --check` says what changed)")
    return lock


def requirement_files(lock: Lock) -> tuple[tuple[str, str], ...]:
    """(step id, requirements file text) of every pip step the lock knows."""
    resolved = lock.plan.get("resolved") or {}
    indexes = resolved.get("indexes") or [""]
    links = tuple(resolved.get("find_links") or ())
    return tuple((s.id, requirements_text(s, indexes[0], links)) for s in lock.steps if s.id != SYSTEM_STEP)


def requirements_text(step: Step, main: str = "", links: tuple[str, ...] = ()) -> str:
    pins = "".join(" \\\n    ".join([p.pin()] + [f"--hash={h}" for h in p.hashes]) + "\n" for p in step.packages)
    return step_file(step.id, pins, [p.index for p in step.packages], main, links)


def pinned_base(lock: Lock, docker: Docker) -> str:
    """What FROM names: the base's registry digest; without one, the base by name once this engine's
    image of that name is checked to be the one (ID) the lock was made on."""
    if lock.base.digest:
        return lock.base.digest
    info = docker.image(lock.base.image)
    if info is None:
        raise GpuenvError(f"the lock's base image {lock.base.image} ({_short(lock.base.id)}) is not on this engine, "
                          "and no registry digest of it is known",
                          "bring the same image here (docker save | docker load, or gpuenv save/load), or push "
                          "the base to a registry and lock again so that the lock pins its digest")
    if lock.base.id and info.get("Id") != lock.base.id:
        raise GpuenvError(f"the base image {lock.base.image} on this engine is {_short(info.get('Id', ''))}, not "
                          f"{_short(lock.base.id)} as when the lock was made: the locked build would not be the same",
                          "load the lock's base here, or lock again on this base: gpuenv lock "
                          "(gpuenv lock --check shows every difference)")
    return lock.base.image


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12] or "no ID"


# pip 24-26: "    NAME==VERSION from URL (from -r FILE (line N)):", then "Expected sha256 ..." / "Got ..."
_MISMATCH = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) from ((?:https?|file)://\S+)")


def explain(error: GpuenvError, log_text: str = "", source: str = LOCK_NAME) -> GpuenvError:
    """A locked build that pip stopped because a download does not match the lock's hashes, said as
    such, naming each package; any other failure as it was."""
    text = f"{error.message}\n{log_text}"
    if "hash mismatch" in text.lower():
        return _uv_mismatch(error, text, source)
    if "DO NOT MATCH THE HASHES" not in text and "Expected sha256" not in text:
        return error
    where = text[text.find("DO NOT MATCH THE HASHES"):]
    found = list(dict.fromkeys(f"{n}=={v}" for n, v, _ in _MISMATCH.findall(where)))
    names = ", ".join(found) or "a package"
    return _mismatch(error, names, source)


# uv 0.13: "Hash mismatch for `NAME==VERSION`" (the pinned file's hashes, then the computed one)
_UV_MISMATCH = re.compile(r"[Hh]ash mismatch for `([A-Za-z0-9][A-Za-z0-9._-]*)==([^`\s]+)`")


def _uv_mismatch(error: GpuenvError, text: str, source: str) -> GpuenvError:
    found = list(dict.fromkeys(f"{n}=={v}" for n, v in _UV_MISMATCH.findall(text)))
    return _mismatch(error, ", ".join(found) or "a package", source)


def _mismatch(error: GpuenvError, names: str, source: str) -> GpuenvError:
    return GpuenvError(f"the pinned build stopped: the file downloaded for {names} does not match the hashes "
                       f"in {source} (the index now serves other bytes under that version, or the lock was edited)",
                       "if the lock was edited, restore it from version control; if the index changed the file, "
                       "check why, then lock again: gpuenv lock" + (f"; {error.hint}" if error.hint else ""))
