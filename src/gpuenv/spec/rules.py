"""Rules that tie several fields of a valid spec together.

They run after every field has passed its own check, and return every broken rule at once as
(field path, message, example) so that the loader can place each in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from gpuenv.spec.model import EnvSpec

Broken = tuple[tuple[Any, ...], str, Optional[str]]


def broken_rules(spec: EnvSpec, base_dir: Optional[Path]) -> list[Broken]:
    found: list[Broken] = []
    for rule in (_one_gpu_target, _jupyter_auth, _distinct_host_ports):
        found.extend(rule(spec))
    if base_dir is not None:
        found.extend(_requirements_file(spec, base_dir))
        found.extend(_workspace_folder(spec, base_dir))
    return found


def _one_gpu_target(spec: EnvSpec) -> Iterator[Broken]:
    if spec.gpu.model != "auto" and spec.gpu.compute_capability != "auto":
        yield (("gpu", "compute_capability"), "give gpu.model or gpu.compute_capability, not both",
               'compute_capability = "auto"')


def _jupyter_auth(spec: EnvSpec) -> Iterator[Broken]:
    jupyter = spec.access.jupyter
    if jupyter is None:
        return
    where = ("access", "jupyter", "password_hash")
    if jupyter.auth == "password" and not jupyter.password_hash:
        yield (where, 'auth = "password" needs a password_hash', 'password_hash = "argon2:$argon2id$..."')
    if jupyter.auth == "token" and jupyter.password_hash:
        yield (where, 'password_hash is used only with auth = "password"', 'auth = "password"')


def _distinct_host_ports(spec: EnvSpec) -> Iterator[Broken]:
    taken: dict[int, str] = {}
    for path, number in _host_ports(spec):
        label = ".".join(str(p) for p in path)
        if number in taken:
            yield (path, f"host port {number} is already used by {taken[number]}", None)
        taken.setdefault(number, label)


def _host_ports(spec: EnvSpec) -> Iterator[tuple[tuple[Any, ...], int]]:
    access = spec.access
    if access.jupyter is not None:
        yield ("access", "jupyter", "port"), access.jupyter.port
    if access.gateway is not None:
        yield ("access", "gateway", "port"), access.gateway.port
    if access.ssh is not None:
        yield ("access", "ssh", "port"), access.ssh.port
    for index, mapping in enumerate(access.ports):
        yield ("access", "ports", index), mapping.host


def _requirements_file(spec: EnvSpec, base_dir: Path) -> Iterator[Broken]:
    if spec.requirements is None:
        return
    path = (base_dir / Path(spec.requirements).expanduser())
    if not path.is_file():
        yield (("requirements",), f"no file at {path}: the path is relative to the spec's folder",
               'requirements = "requirements.txt"')


def _workspace_folder(spec: EnvSpec, base_dir: Path) -> Iterator[Broken]:
    """The workspace is mounted read-write: never the host's root or a system folder, unless allowed."""
    from gpuenv.spec.workspace import refusal

    if spec.workspace.allow_system_folder:
        return
    why = refusal(base_dir / Path(spec.workspace.host).expanduser())
    if why:
        yield (("workspace", "host"), f"{why}: the container could change this host through it; give a project "
               "folder, or set workspace.allow_system_folder = true if you mean it", 'host = "."')
