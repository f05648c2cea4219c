"""Rules that tie several fields of a valid spec together.

They run after every field has passed its own check, and return every broken rule at once as
(field path, message, example) so that the loader can place each in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from gpuenv.spec.locate import FieldPath
from gpuenv.spec.model import Added, EnvSpec, Network
from gpuenv.spec.requirements import RequirementsFile, read_requirements
from gpuenv.spec.workspace import refusal

Broken = tuple[FieldPath, str, Optional[str]]      # (where, what is wrong, an example)


def broken_rules(spec: EnvSpec, base_dir: Optional[Path]) -> list[Broken]:
    found: list[Broken] = []
    for rule in (_one_gpu_target, _free_gpus, _jupyter_auth, _distinct_host_ports):
        found.extend(rule(spec))
    if base_dir is not None:
        found.extend(_requirements_file(spec, base_dir))
        found.extend(_workspace_folder(spec, base_dir))
    return found


def _one_gpu_target(spec: EnvSpec) -> Iterator[Broken]:
    if spec.gpu.model != "auto" and spec.gpu.compute_capability != "auto":
        yield (("gpu", "compute_capability"), "give gpu.model or gpu.compute_capability, not both",
               'compute_capability = "auto"')


def _free_gpus(spec: EnvSpec) -> Iterator[Broken]:
    """count, idle_memory_mib and idle_utilization say how `devices = "free"` chooses: alone they mean nothing."""
    if spec.gpu.devices == "free":
        return
    for name in ("count", "idle_memory_mib", "idle_utilization"):     # a value other than the default's
        if getattr(spec.gpu, name) != type(spec.gpu).model_fields[name].default:
            yield (("gpu", name), f'{name} is used only with devices = "free"', 'devices = "free"')


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


def _host_ports(spec: EnvSpec) -> Iterator[tuple[FieldPath, int]]:
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
    """The requirements file: inside the spec's folder, text, and only what gpuenv honours (requirements.py),
    with no index URL that differs from network.pip_index."""
    found = _requirements(spec, base_dir)
    if found is None:
        return
    for problem in found.problems:
        yield (("requirements",), problem, 'requirements = "requirements.txt"')
    own = spec.network.pip_index if "pip_index" in _explicit(spec.network) else None
    if found.index_url and own and found.index_url != own:
        yield (("requirements",), f"{found.index_line}: --index-url {found.index_url} differs from network.pip_index "
               f"{own}: give the index in one place (a requirements file's index is used as if written in "
               "[network])", None)


def _requirements(spec: EnvSpec, base_dir: Optional[Path]) -> Optional[RequirementsFile]:
    if spec.requirements is None or base_dir is None:
        return None
    return read_requirements(base_dir / Path(spec.requirements).expanduser(), base_dir)


def _explicit(network: Network) -> set[str]:
    return set(network.model_fields_set) - set(network.filled)


def with_requirements_network(spec: EnvSpec, base_dir: Optional[Path]) -> EnvSpec:
    """The spec with its requirements file's --index-url, --extra-index-url and --trusted-host in [network],
    as if written there: the file's index replaces one a preset filled; the lists are joined, the spec's first."""
    found = _requirements(spec, base_dir)
    if found is None or not (found.index_url or found.extra_index_urls or found.trusted_hosts):
        return spec
    net = spec.network
    added: dict[str, Added] = {
        "pip_extra_indexes": [u for u in found.extra_index_urls if u not in net.pip_extra_indexes],
        "pip_trusted_hosts": [h for h in found.trusted_hosts if h not in net.pip_trusted_hosts],
    }
    if found.index_url and found.index_url != net.pip_index:
        added["pip_index"] = found.index_url
    return spec.model_copy(update={"network": _network_with(net, added)})


def _network_with(net: Network, added: dict[str, Added]) -> Network:
    """`net` with `added`; it remembers what was added, so that a spec written back (spec/write.py) leaves
    it in the requirements file."""
    data = net.model_dump(exclude_unset=True)
    data |= {key: [*getattr(net, key), *value] if isinstance(value, list) else value for key, value in added.items()}
    if net.preset is not None:
        data["preset"] = net.preset
    merged = Network.model_validate(data)
    merged._from_requirements = {key: value for key, value in added.items() if value}
    return merged


def _workspace_folder(spec: EnvSpec, base_dir: Path) -> Iterator[Broken]:
    """The workspace is mounted read-write: never the host's root or a system folder, unless allowed."""
    if spec.workspace.allow_system_folder:
        return
    why = refusal(base_dir / Path(spec.workspace.host).expanduser())
    if why:
        yield (("workspace", "host"), f"{why}: the container could change this host through it; give a project "
               "folder, or set workspace.allow_system_folder = true if you mean it", 'host = "."')
