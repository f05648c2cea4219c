"""This user's environments on this engine, read from the labels their containers carry, and finding
the one a command means. An environment is its invoker's (the `owner` label: the user who ran `up`),
whatever UID its containers run as. Once its containers are gone (`down`), what it left (image,
volume, build log, state folder) is found from its files folder's .env: `Remains`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gpuenv.errors import BadInput
from gpuenv.host.limits import Limits, from_host_config
from gpuenv.run.container import LABEL
from gpuenv.run.docker import ContainerInspect, Docker


@dataclass(frozen=True)
class Env:
    project: str
    containers: tuple[ContainerInspect, ...]     # `docker container inspect` of each, by name

    def label(self, key: str, container: Optional[ContainerInspect] = None) -> str:
        labels = ((container or self.main).get("Config") or {}).get("Labels") or {}
        return labels.get(f"{LABEL}.{key}", "")

    @property
    def main(self) -> ContainerInspect:
        for c in self.containers:
            if ((c.get("Config") or {}).get("Labels") or {}).get(f"{LABEL}.main") == "true":
                return c
        return self.containers[0]

    @property
    def name(self) -> str:
        return self.label("env")

    @property
    def main_name(self) -> str:
        return self.main.get("Name", "").lstrip("/")

    @property
    def image(self) -> str:
        return (self.main.get("Config") or {}).get("Image", "")

    @property
    def state(self) -> str:
        states = sorted({(c.get("State") or {}).get("Status", "?") for c in self.containers})
        return states[0] if len(states) == 1 else "+".join(states)

    @property
    def running(self) -> bool:
        return all((c.get("State") or {}).get("Running") for c in self.containers)

    def ports(self) -> list[tuple[str, str, int, int]]:
        """(service, host address, host port, container port) of every published port."""
        found = []
        for c in self.containers:
            bindings = ((c.get("HostConfig") or {}).get("PortBindings") or {})
            for inside, outside in bindings.items():
                for b in outside or ():
                    found.append((self.label("service", c), b.get("HostIp") or "0.0.0.0",
                                  int(b.get("HostPort") or 0), int(inside.split("/")[0])))
        return sorted(found)

    @property
    def limits(self) -> Limits:
        """What its main container may use (`up` gives each container the same), as the engine says."""
        return from_host_config(self.main.get("HostConfig"))

    def health(self) -> str:
        status = ((self.main.get("State") or {}).get("Health") or {}).get("Status")
        return status or ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "project": self.project, "state": self.state, "image": self.image,
                "gpu_mode": self.label("gpu-mode"), "gpus": self.label("gpus"), "files": self.label("files"),
                "workspace": self.label("workspace"), "health": self.health(), "limits": self.limits.to_dict(),
                "containers": [c.get("Name", "").lstrip("/") for c in self.containers],
                "ports": [{"service": s, "host": h, "port": p, "container_port": i} for s, h, p, i in self.ports()]}


def environments(docker: Docker, owner: Optional[int]) -> list[Env]:
    """Environments on this engine (of the user `owner`, or everyone's with None), by project."""
    labels = [f"{LABEL}.project"] + ([f"{LABEL}.owner={owner}"] if owner is not None else [])
    groups: dict[str, list[ContainerInspect]] = {}
    for c in docker.containers(*labels):
        project = ((c.get("Config") or {}).get("Labels") or {}).get(f"{LABEL}.project", "")
        groups.setdefault(project, []).append(c)
    return [Env(p, tuple(sorted(cs, key=lambda c: c.get("Name", "")))) for p, cs in sorted(groups.items())]


def find(docker: Docker, name: Optional[str], owner: int, cwd: Path, files: Optional[Path] = None,
         only_here: bool = False) -> Env:
    """The environment a command means: by name (or project); with none given, the one whose files
    or workspace are this folder, else (unless `only_here`: a verb that removes, such as `down`) the
    only one there is."""
    envs = environments(docker, owner)
    if name:
        chosen = [e for e in envs if name in (e.name, e.project)]
        if len(chosen) > 1:
            here = [e for e in chosen if _here(e, cwd, files)]
            chosen = here or chosen
    else:
        chosen = [e for e in envs if _here(e, cwd, files)] or (envs if len(envs) == 1 and not only_here else [])
        if not chosen and only_here and envs:
            raise BadInput("no environment of yours belongs to this folder (yours: "
                           + ", ".join(e.name for e in envs) + ")",
                           "name the one you mean: gpuenv down NAME (gpuenv ls lists them)")
        if not chosen and envs:
            raise BadInput("several environments run here and none belongs to this folder: "
                           + ", ".join(e.name for e in envs), "name one: gpuenv COMMAND NAME (gpuenv ls lists them)")
    if not chosen:
        what = f"no environment named '{name}'" if name else "no environment of yours on this engine"
        raise BadInput(what, "gpuenv ls lists yours; gpuenv up starts one")
    if len(chosen) > 1:
        raise BadInput(f"'{name}' names several environments: " + ", ".join(e.project for e in chosen),
                       "give the project name instead (gpuenv ls shows it)")
    return chosen[0]


def belongs_here(env: Env, cwd: Path) -> bool:
    """Whether the environment's files or workspace are this folder."""
    return _here(env, cwd, None)


def _here(env: Env, cwd: Path, files: Optional[Path]) -> bool:
    places = {env.label("files"), env.label("workspace")}
    return str(cwd.resolve()) in places or (files is not None and str(files.resolve()) in places)


@dataclass(frozen=True)
class Remains:
    """What an environment leaves besides containers, as its files folder's .env names it."""

    project: str
    image: str
    folder: Optional[Path]           # the files folder (None when unknown)
    user: str = ""                   # "UID:GID" the image was built for (its .env's), "" when unknown

    @property
    def repository(self) -> str:
        return self.image.rsplit(":", 1)[0] if ":" in self.image.rsplit("/", 1)[-1] else self.image


def remains_of(env: Env) -> Remains:
    files = env.label("files")
    found = remains_in(Path(files)) if files else None
    return Remains(env.project, env.image, Path(files) if files else None, found.user if found else "")


def remains_in(folder: Path) -> Optional[Remains]:
    """The environment whose files are in `folder` (its .env, written by gpuenv), or None."""
    path = folder / ".env"
    try:
        text = path.read_text(errors="replace") if path.is_file() else ""
    except OSError:
        return None
    values = dict(re.findall(r"^(COMPOSE_PROJECT_NAME|GPUENV_IMAGE|GPUENV_UID|GPUENV_GID)=(\S+)$", text, re.M))
    if "gpuenv" not in text[:200] or "COMPOSE_PROJECT_NAME" not in values or "GPUENV_IMAGE" not in values:
        return None
    user = f"{values['GPUENV_UID']}:{values['GPUENV_GID']}" if "GPUENV_UID" in values and "GPUENV_GID" in values else ""
    return Remains(values["COMPOSE_PROJECT_NAME"], values["GPUENV_IMAGE"], folder.resolve(), user)


def left_behind(name: Optional[str], cwd: Path, state: Path) -> Optional[Remains]:
    """An environment without containers: this folder's (its own files, or a request's files in the
    state folder `state`), or by name (project or environment name) among those."""
    here = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:6]
    mine = sorted(state.glob(f"*-{here}")) if state.is_dir() else []
    if name is None:
        found = [r for r in (remains_in(f) for f in [cwd, *mine]) if r]
    else:
        others = sorted(p for p in state.iterdir() if p.is_dir()) if state.is_dir() else []
        found = [r for r in (remains_in(f) for f in dict.fromkeys([cwd, *mine, *others])) if r
                 and name in (r.project, r.repository.removeprefix("gpuenv-"))]
    return found[0] if found else None
