"""The `docker run` of each service of an environment: what compose.yaml says, plus what only this
host knows (the GPU mode the probe found, the driver files of `devices` mode, the ports that are free).

gpuenv starts containers itself rather than through compose: compose cannot express `devices` mode (the
driver's files mounted one by one) or CDI on the engines of lab servers, and `docker run` is there on
every engine. compose.yaml stays the file to keep; both say the same thing.
Containers carry io.gpuenv.* labels: `gpuenv ls`, `status`, `down` read nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gpuenv.host.access import RunArgs
from gpuenv.render.compose import CA_IN_CONTAINER, CA_VARIABLES, run_ca, runtime_environment
from gpuenv.render.recipe import HOME, SSH_HOST_KEYS, Recipe, Service

LABEL = "io.gpuenv"


@dataclass(frozen=True)
class Launch:
    name: str                     # the container's name: PROJECT-SERVICE
    service: str
    argv: tuple[str, ...]         # after `docker run`
    config: str                   # hash of what the container would be: a change means recreate


@dataclass(frozen=True)
class Host:
    """This host's side of the run."""

    files: Path                   # the folder of Dockerfile/compose.yaml/.env
    image: str
    image_env: tuple[tuple[str, str], ...]    # the image's ENV (PATH...): the GPU's prepends go before it
    gpu: RunArgs
    gpu_mode: str
    gpus: str                     # "all", "0,1" or "none"
    ports: tuple[tuple[str, int, int], ...]   # (service, container port, host port)
    owner: int
    selinux: bool = False
    network: str = ""             # "none" on an engine without a bridge network (dockerd --bridge=none)
    remote: bool = False          # the engine runs on another host: this host's files cannot be mounted


def launches(r: Recipe, host: Host) -> list[Launch]:
    return [_launch(r, host, s, i == 0) for i, s in enumerate(r.services)]


def container_name(r: Recipe, service: str) -> str:
    return f"{r.inputs.project or r.name}-{service}"


def volume_name(r: Recipe) -> str:
    """sshd's host-key volume: the name compose.yaml gives it too (Recipe.volumes)."""
    return r.volumes()[SSH_HOST_KEYS]


def _launch(r: Recipe, host: Host, s: Service, main: bool) -> Launch:
    name = container_name(r, s.name)
    args = ["--detach", "--name", name, "--hostname", r.name, "--init", "--restart", r.spec.run.restart]
    args += _ipc(r)
    args += ["--security-opt", "no-new-privileges:true"]
    if host.network:
        args += ["--network", host.network]
    if host.selinux and host.gpu.flags:
        args += ["--security-opt", "label=disable"]          # failure-modes row 16: device labels
    args += ["--volume", f"{_workspace(r, host)}:{r.workspace_mount}", "--workdir", r.workspace_mount]
    if run_ca(r) and not host.remote:     # --mount: a bundle gone from the host is an error, not an empty folder
        args += ["--mount", f"type=bind,source={r.inputs.ca_bundle},target={CA_IN_CONTAINER},readonly"]
    args += ["--volume", f"{r.volumes()[HOME]}:{HOME}"]         # HOME outlives the container
    if s.name == "ssh":
        args += ["--volume", f"{_path(host.files, r.inputs.ssh_key)}:/etc/gpuenv/authorized_keys:ro",
                 "--volume", f"{volume_name(r)}:{SSH_HOST_KEYS}"]
    for key, value in _environment(r, host, s):
        args += ["--env", f"{key}={value}"]
    args += list(host.gpu.flags)
    if s.health and not main:
        kind, port = s.health
        args += ["--health-cmd", f"{r.python.command} /usr/local/lib/gpuenv/healthcheck.py {kind} {port}",
                 "--health-interval", "10s", "--health-timeout", "5s", "--health-retries", "3",
                 "--health-start-period", "30s"]
    # the config: everything but the host ports, which `up` chooses only when it (re)creates
    wanted = [f"{x.name}:{x.port}:{x.host_port}" for x in r.services]
    wanted += [f"*:{p.container}:{p.host}" for p in r.spec.access.ports] + [r.spec.access.bind]
    config = hashlib.sha256("\0".join([host.image, *args, *wanted]).encode()).hexdigest()[:16]
    for service, inside, outside in host.ports:
        if service == s.name or (main and service == "*"):
            args += ["--publish", f"{_bind(r.spec.access.bind)}:{outside}:{inside}"]
    labels = {
        "project": r.inputs.project or r.name, "env": r.name, "service": s.name, "main": str(main).lower(),
        "owner": str(host.owner), "files": str(host.files), "workspace": _workspace(r, host),
        "gpu-mode": host.gpu_mode, "gpus": host.gpus, "config": config, "python-command": r.python.command,
    }
    for key, value in labels.items():
        args += ["--label", f"{LABEL}.{key}={value}"]
    args.append(host.image)
    if not main:
        args += list(s.command)
    return Launch(name, s.name, tuple(args), config)


def _ipc(r: Recipe) -> list[str]:
    return ["--ipc", "host"] if r.spec.run.ipc == "host" else ["--shm-size", r.spec.run.shm_size]


def _bind(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _workspace(r: Recipe, host: Host) -> str:
    return _path(host.files, r.inputs.workspace)


def _path(base: Path, text: str) -> str:
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _environment(r: Recipe, host: Host, s: Service) -> list[tuple[str, str]]:
    tokens, access = r.inputs.tokens, r.spec.access
    env: list[tuple[str, str]] = []
    if s.name == "jupyter":
        if access.jupyter.auth == "password":
            env.append(("GPUENV_JUPYTER_PASSWORD_HASH", access.jupyter.password_hash))
        else:
            env.append(("JUPYTER_TOKEN", tokens["JUPYTER_TOKEN"]))
    if s.name == "gateway":
        env.append(("KG_AUTH_TOKEN", tokens["GPUENV_GATEWAY_TOKEN"]))
    env += [(k, v) for k, v in runtime_environment(r).items() if not (host.remote and k in CA_VARIABLES)]
    env += list(host.gpu.env)
    image_env = dict(host.image_env)
    for key, value in host.gpu.prepend:
        env.append((key, f"{value}:{image_env[key]}" if image_env.get(key) else value))
    return env


def gpus_text(devices: object, mode: str) -> str:
    if mode == "none":
        return "none"
    return "all" if devices == "all" else ",".join(str(d) for d in devices)   # type: ignore[union-attr]


def image_env(image: Optional[dict]) -> tuple[tuple[str, str], ...]:
    found = ((image or {}).get("Config") or {}).get("Env") or []
    return tuple(tuple(item.split("=", 1)) for item in found if "=" in item)   # type: ignore[misc]
