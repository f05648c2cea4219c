"""The resolver's recent answers, kept for a few minutes: the same question (the same requirement files,
Python, platform, indexes and options, the same uv) asked again within `TTL_S` gets the same answer
without asking the index again.

uv caches the index's pages by their HTTP caching headers (PyPI allows 10 minutes), but a TLS-inspecting
proxy that strips those headers makes it fetch every page on every plan. This keeps PyPI's own horizon:
a release published in the last minutes may be missed, as it would be through uv's own cache. Only
answers that do not depend on the network's mood are kept: a resolution, or "no solution".
`GPUENV_RESOLVE_TTL=0` turns it off. Files: ~/.cache/gpuenv/resolutions/<sha256>.json, the user's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from gpuenv import paths

TTL_S = 600


def key(inputs: Sequence[tuple[str, str]], args: Sequence[str]) -> str:
    """The question: each input file's name and text, and uv's arguments that are not paths."""
    data = json.dumps({"inputs": list(inputs), "args": list(args)}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def get(question: str) -> Optional[tuple[int, str, str]]:
    """(returncode, stdout, stderr) of the same question asked within the TTL, else None."""
    path = _folder() / f"{question}.json"
    ttl = _ttl()
    try:
        if not ttl or time.time() - path.stat().st_mtime > ttl:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["returncode"]), str(data["stdout"]), str(data["stderr"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def put(question: str, returncode: int, stdout: str, stderr: str) -> None:
    """Keep an answer (whole or not at all; a cache that cannot be written is no error)."""
    if not _ttl():
        return
    folder = _folder()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8") as out:
            json.dump({"returncode": returncode, "stdout": stdout, "stderr": stderr}, out)
        os.replace(out.name, folder / f"{question}.json")
    except OSError:
        return


def _ttl() -> int:
    try:
        return max(0, int(os.environ.get("GPUENV_RESOLVE_TTL", TTL_S)))
    except ValueError:
        return TTL_S


def _folder() -> Path:
    return paths.cache_dir() / "resolutions"
