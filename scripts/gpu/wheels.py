#!/usr/bin/env python3
"""wheels.py DIR: fill DIR with the wheels the GPU machine's Python (CPython 3.12, manylinux x86_64)
needs to run gpuenv and its GPU tests, following pyproject.toml (scripts/gpu/carry runs it).

The set is computed, never listed by hand: pyproject's `dependencies` (markers evaluated for that
Python), and of the `test` extra the projects the GPU tests import (TEST_PROJECTS), less what the GPU
machine's venv already has (PRESENT, as scripts/gpu/README.md lists it); then `pip download` resolves
their closure for that Python (`--python-version 3.12 --only-binary=:all:`). A dependency the closure
shares with the venv is carried too when the venv's may be too old (typing-extensions: torch takes any
>= 4.10, pydantic wants newer; scripts/gpu/py-deps unpacks it only where the venv's does not satisfy).
Versions are the ones this repository's .venv was tested with when it has them (pip's constraints),
else the newest that fit. Wheels of other versions in DIR are removed; the result is checked: every
requirement of every carried wheel is met by a carried wheel or by PRESENT.
"""
from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]

# In the GPU machine's venv (/opt/torch/.venv, see scripts/gpu/README.md and ENVIRONMENT.md): not carried.
PRESENT = frozenset({"click", "rich", "packaging", "pyyaml", "nvidia-ml-py", "pytest", "torch", "jax", "jaxlib",
                     "cupy", "numpy", "pygments", "markdown-it-py", "mdurl", "iniconfig", "pluggy"})
# Of the test extra, what the GPU tests import (the browser, lint and schema tools are for this machine).
TEST_PROJECTS = frozenset({"hypothesis", "tomli-w"})
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pyproject_lists(text: str) -> dict[str, list[str]]:
    """`dependencies` and each optional-dependencies list of a pyproject.toml, as written."""
    try:
        import tomllib
    except ImportError:                                   # Python < 3.11
        import tomli as tomllib                           # type: ignore[no-redef]
    project = tomllib.loads(text)["project"]
    return {"dependencies": list(project.get("dependencies", [])), **project.get("optional-dependencies", {})}


def wanted(text: str, with_test: bool = True) -> list[Requirement]:
    """What to carry, by pyproject: its dependencies for the target Python, and TEST_PROJECTS of its test
    extra, less PRESENT."""
    lists = pyproject_lists(text)
    reqs = [Requirement(r) for r in lists["dependencies"]]
    if with_test:
        reqs += [r for r in map(Requirement, lists.get("test", [])) if canonicalize_name(r.name) in TEST_PROJECTS]
    return [r for r in reqs if applies(r) and canonicalize_name(r.name) not in PRESENT]


def applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(TARGET)


def tested_versions() -> list[str]:
    """`name==version` of this repository's .venv (what the tests here ran with), [] without one."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        return []
    done = subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if re.fullmatch(r"[A-Za-z0-9._-]+==[^\s;]+", line)]


def download(reqs: list[Requirement], into: Path, constraints: list[str]) -> None:
    """pip download of `reqs` and their closure, for the target Python, into `into`."""
    argv = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
            "--python-version", TARGET["python_version"], "--implementation", "cp", "-d", str(into)]
    argv += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:
        pins.write("\n".join(constraints) + "\n")
        pins.flush()
        done = subprocess.run(argv + (["-c", pins.name] if constraints else []) + [str(r) for r in reqs],
                              capture_output=True, text=True)
    if done.returncode != 0 and constraints:               # the tested versions have no wheel for 3.12: newest
        print("==> the .venv's versions do not all have 3.12 wheels; resolving the newest", file=sys.stderr)
        return download(reqs, into, [])
    if done.returncode != 0:
        sys.exit(f"error: pip download failed:\n{done.stderr.strip()}")


def requires(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(name).decode("utf-8"))
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def check(folder: Path, reqs: list[Requirement]) -> list[str]:
    """Problems of a wheel folder: a wheel not for the target, a requirement nobody meets."""
    have = {}
    problems = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(wheel.name)
        if not any(t.interpreter in ("py3", "cp312") and t.platform in ("any", *PLATFORMS) for t in tags):
            problems.append(f"{wheel.name} is not for CPython 3.12 on manylinux x86_64")
        have[name] = (version, wheel)
    asked = [("pyproject.toml", r) for r in reqs]
    asked += [(str(n), r) for n, (_, w) in have.items() for r in requires(w) if _runtime(r)]
    for who, req in asked:
        name = canonicalize_name(req.name)
        if name in have and not req.specifier.contains(have[name][0], prereleases=True):
            problems.append(f"{who} needs {req}, carried {name} {have[name][0]}")
        elif name not in have and name not in PRESENT:
            problems.append(f"{who} needs {req}: neither carried nor on the GPU machine")
    return problems


def _runtime(req: Requirement) -> bool:
    """A wheel's requirement that applies without extras on the target."""
    return req.marker is None or Marker(str(req.marker)).evaluate(TARGET)


def fill(folder: Path, text: str) -> list[Path]:
    """Download the set into `folder` (keeping nothing else there); the wheels, checked."""
    reqs = wanted(text)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as staging:
        download(reqs, Path(staging), tested_versions())
        fresh = {w.name for w in Path(staging).glob("*.whl")
                 if canonicalize_name(parse_wheel_filename(w.name)[0]) not in PRESENT}
        for old in folder.glob("*.whl"):
            if old.name not in fresh:
                old.unlink()
                print(f"removed {old.name}", file=sys.stderr)
        for name in fresh:
            shutil.move(os.path.join(staging, name), folder / name)
    problems = check(folder, reqs)
    if problems:
        sys.exit("error: the carried wheels do not hold together:\n  " + "\n  ".join(problems))
    return sorted(folder.glob("*.whl"))


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[0])
    wheels = fill(Path(sys.argv[1]), (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    print("wheels: " + ", ".join(w.name.split("-")[0] + " " + w.name.split("-")[1] for w in wheels), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
