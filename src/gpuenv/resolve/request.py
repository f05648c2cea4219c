"""What the resolver is asked: the frameworks wanted (from a spec, a requirements file or the command
line) and the machine to plan for (this host, or one described by flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from packaging.requirements import InvalidRequirement, Requirement

from gpuenv.errors import BadInput
from gpuenv.kb.frameworks import canonical, closest, family_of, misnomer


@dataclass(frozen=True)
class Want:
    """One framework requirement as the user wrote it."""

    text: str                 # "tensorflow==1.2.1"
    project: str              # PEP 503 name, "tensorflow"
    family: str               # "tensorflow"
    specifier: str            # "==1.2.1", "" for any
    extras: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.text


@dataclass(frozen=True)
class Request:
    wants: tuple[Want, ...]
    python: Optional[str] = None    # "3", "3.6", "2.7"
    cuda: Optional[str] = None      # gpu.cuda of the spec, "9.0"
    base: Optional[str] = None      # spec `base`
    cpu: bool = False               # gpu.devices = "none"
    packages: tuple[str, ...] = ()  # other pip packages, as written
    base_holds: tuple[Any, ...] = ()  # frameworks found inside the spec's base (provided.Provided)


@dataclass(frozen=True)
class GpuTarget:
    name: str                       # as given or probed, "NVIDIA H200"
    cc: str                         # "9.0"


@dataclass(frozen=True)
class Target:
    """The machine the plan is for: its driver (None: no limit) and GPUs (empty: any)."""

    driver: Optional[str] = None
    gpus: tuple[GpuTarget, ...] = ()
    origin: str = "this host"       # where the facts came from, for reasons
    notes: tuple[str, ...] = field(default_factory=tuple)


def want(text: str, where: str = "request") -> Want:
    """Parse one framework requirement; a name that is no framework is a BadInput with a hint."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise BadInput(f"{where}: '{text}' is not a valid requirement: {exc}",
                       "write it as pip does, e.g. tensorflow==1.2.1 or torch>=2.4") from exc
    project = canonical(req.name)
    family = family_of(project)
    if family is None:
        wrong = misnomer(project)
        if wrong:
            raise BadInput(f"{where}: '{req.name}' is not the name of a package on PyPI",
                           f"use {wrong[0]} ({wrong[1]})")
        near = closest(project)
        hint = f"did you mean {near}?" if near else "frameworks gpuenv knows: see `gpuenv matrix --help`"
        raise BadInput(f"{where}: '{req.name}' is not a framework gpuenv knows", hint)
    return Want(text, project, family, str(req.specifier), tuple(sorted(req.extras)))


def frameworks_in(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split requirement lines into (framework requirements, other requirements), skipping pip options."""
    frameworks, others = [], []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            name = Requirement(line).name
        except InvalidRequirement:
            others.append(line)
            continue
        (frameworks if family_of(name) else others).append(line)
    return frameworks, others


def requirements_file(path: Path) -> tuple[list[str], list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read requirements file {path}: {exc.strerror}",
                       "fix `requirements` in gpuenv.toml, or create the file") from exc
    return frameworks_in(text.splitlines())
