"""A Resolved from the real resolver, for tests that need one before planning makes it: `uv pip compile`
of the whole environment against PyPI (through this machine's proxy), then each pin given to the first
pip step whose own requirements reach it (the same steps, in the same order, as the Dockerfile's)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

from gpuenv.resolve.resolved import Pin, Resolved, StepPins

PYPI = "https://pypi.org/simple"
PLATFORM = "x86_64-manylinux_2_28"


def compile_text(requirements: list[str], python: str, *more: str) -> str:
    from uv import find_uv_bin

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "requirements.in"
        source.write_text("".join(f"{r}\n" for r in requirements))
        done = subprocess.run([find_uv_bin(), "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                               "--index-url", PYPI, "--python-version", python, "--python-platform", PLATFORM,
                               *more, str(source)], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def parse(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (version, hashes) of a compiled requirements file."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    name = ""
    for line in text.splitlines():
        word = line.strip().rstrip("\\").strip()
        if word.startswith("--hash="):
            version, hashes = found[name]
            found[name] = (version, hashes + (word[len("--hash="):],))
        elif "==" in word and not word.startswith("#"):
            raw, version = word.split("==", 1)
            name = canonicalize_name(raw.split("[", 1)[0])
            found[name] = (version.split(";", 1)[0].strip(), ())
    return found


def resolve(steps: list[tuple[str, tuple[str, ...]]], python: str) -> Resolved:
    wanted = list(dict.fromkeys(r for _, requires in steps for r in requires))
    whole = compile_text(wanted, python, "--generate-hashes")
    pins = parse(whole)
    seen: set[str] = set()
    out = []
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, (v, _) in pins.items()))
        for step_id, requires in steps:
            reach = parse(compile_text(list(requires), python, "-c", str(constraints)))
            mine = [n for n in pins if n in reach and n not in seen]
            seen.update(mine)
            out.append(StepPins(step_id, requires, tuple(Pin(n, pins[n][0], pins[n][1], PYPI, (step_id,))
                                                        for n in mine)))
    return Resolved("resolved", tuple(out), python, PLATFORM, (PYPI,))
