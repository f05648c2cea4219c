"""gpuenv.lock's [image] table, as push and pull use it (the lock part owns the rest of the file).

Push adds "REGISTRY/REPO@sha256:..." to [image].repo_digests and changes nothing else: the file is
edited as text (its comments and layout stay), and the edit is checked by parsing the result, so a
file gpuenv cannot edit safely is left as it was. One function to swap for gpuenv.lock's own module.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gpuenv.errors import BadInput, GpuenvError
from gpuenv.tomlcompat import tomllib

LOCK_FILE = "gpuenv.lock"
_HEADER = re.compile(r"^\s*\[\s*image\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_KEY = re.compile(r"^\s*repo_digests\s*=")


@dataclass(frozen=True)
class LockedImage:
    path: Path
    tag: str
    id: str
    repo_digests: tuple[str, ...]


def read_image(path: Path) -> Optional[LockedImage]:
    """The [image] table of a lock file; None when the file or the table is missing."""
    data = _load(path)
    if data is None or not isinstance(data.get("image"), dict):
        return None
    image = data["image"]
    digests = image.get("repo_digests") or []
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise BadInput(f"{path}: [image].repo_digests must be a list of \"REGISTRY/REPO@sha256:...\" strings",
                       "fix it, or make the lock again: gpuenv lock")
    return LockedImage(path, str(image.get("tag") or ""), str(image.get("id") or ""), tuple(digests))


def add_repo_digest(path: Path, entry: str) -> bool:
    """Add `entry` to [image].repo_digests; False when it was there already."""
    locked = read_image(path)
    if locked is None:
        raise GpuenvError(f"{path} has no [image] table, so the pushed digest was not recorded",
                          "make the lock again (gpuenv lock), then push again")
    if entry in locked.repo_digests:
        return False
    text = path.read_text()
    edited = _with_digests(text, list(locked.repo_digests) + [entry])
    _check_edit(path, text, edited, list(locked.repo_digests) + [entry])
    _replace(path, edited)
    return True


def _load(path: Path) -> Optional[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GpuenvError(f"cannot read {path}: {exc.strerror}", "check its permissions") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix it, or make the lock again: gpuenv lock") from None


def _with_digests(text: str, digests: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        return text                               # an inline or dotted [image]: _check_edit refuses it
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    value = "repo_digests = [" + ", ".join(json.dumps(d) for d in digests) + "]\n"
    for i in range(start + 1, end):
        if _KEY.match(lines[i]):
            last = _array_end(lines, i)
            return "".join(lines[:i] + [value] + lines[last + 1:])
    at = end
    while at > start + 1 and not lines[at - 1].strip():
        at -= 1                                   # before the blank lines that end the table
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + [value] + lines[at:])


def _array_end(lines: list[str], first: int) -> int:
    depth = 0
    for i in range(first, len(lines)):
        code = lines[i].split("#", 1)[0]
        depth += code.count("[") - code.count("]")
        if depth <= 0:
            return i
    return len(lines) - 1


def _check_edit(path: Path, before: str, after: str, digests: list[str]) -> None:
    old, new = tomllib.loads(before), _parsed(after)
    if new is not None:
        old["image"]["repo_digests"] = digests
    if new != old:
        raise GpuenvError(f"gpuenv could not add the digest to {path} without changing other parts; "
                          "the file is as it was", f"add it by hand to [image] repo_digests: {digests[-1]}")


def _parsed(text: str) -> Optional[dict[str, Any]]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _replace(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    descriptor, temporary = tempfile.mkstemp(prefix=".gpuenv-lock-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
