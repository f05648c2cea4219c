"""What the resolver is asked: the frameworks wanted (from a spec, a requirements file or the command
line) and the machine to plan for (this host, or one described by flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Optional

from packaging.requirements import InvalidRequirement, Requirement

import gpuenv.spec as specs     # the face: spec.requirements (spec.values, kb.mirrors) loads for a file
from gpuenv.errors import BadInput
from gpuenv.kb.frameworks import canonical, closest, family_of, misnomer

if TYPE_CHECKING:
    from gpuenv.resolve.provided import Provided


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
    base_holds: tuple[Provided, ...] = ()  # frameworks found inside the spec's base
    toolkit: Literal["auto", "runtime", "devel"] = "auto"   # gpu.toolkit: a compiler (resolve/toolchain.py)


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
    _exact(req, text, where)
    return Want(text, project, family, str(req.specifier), tuple(sorted(req.extras)))


def _exact(req: Requirement, text: str, where: str) -> None:
    """A framework named by URL or with a marker is refused rather than planned as something else (the URL or
    the marker would be dropped: the plan installs the build it chose, by version)."""
    if req.url:
        raise BadInput(f"{where}: '{text}' names {req.name} by URL; gpuenv plans a framework by version and variant",
                       f"pin it as pip does ({req.name}==VERSION, with +cu118 or [extra] for a variant), or give a "
                       "`base` that holds it")
    if req.marker is not None:
        raise BadInput(f"{where}: '{text}' has an environment marker ({req.marker}); a framework is planned for one "
                       "Python and platform, so the marker cannot be kept", f"write it without the marker: "
                       f"{req.name}{req.specifier}, and `python` to choose the Python")


class FileRequirements(NamedTuple):
    """A spec's requirements file, split as a request takes it."""

    frameworks: list[str]           # the requirements of frameworks gpuenv plans ("torch>=2.4")
    others: list[str]               # every other requirement: installed as the spec's packages


def requirements_file(path: Path, folder: Optional[Path] = None) -> FileRequirements:
    """The requirements of a spec's requirements file, read and confined to `folder` (the spec's; default
    the file's own) as spec/requirements.py says; BadInput for a problem."""
    found = specs.read_requirements(path, folder or path.parent)
    if found.problems:
        raise BadInput(f"requirements file {path}: " + "; ".join(found.problems),
                       "fix the file, or `requirements` in gpuenv.toml; `gpuenv spec check` lists every problem")
    frameworks: list[str] = []
    others: list[str] = []
    for text in found.requirements:
        (frameworks if family_of(Requirement(text).name) else others).append(text)
    return FileRequirements(frameworks, others)
