"""The `docker run` of each service of an environment: what compose.yaml says, plus what only this
host knows (the GPU mode the probe found, the driver files of `devices` mode, the ports that are free).

gpuenv starts containers itself rather than through compose: compose cannot express `devices` mode (the
driver's files mounted one by one) or CDI on the engines of lab servers, and `docker run` is there on
every engine. compose.yaml stays the file to keep; both say the same thing, but for the limits `up`
derives from the engine's host where the spec leaves them "auto" (host/limits.py): compose.yaml holds
only the spec's own.
Containers carry io.gpuenv.* labels: `gpuenv ls`, `status`, `down` read nothing else.

A container's environment (the Jupyter token, the gateway's token, a password hash, a proxy with its
login) never goes on `docker run`'s command line, which every local user reads in /proc/PID/cmdline:
it goes through an env file of mode 600 in a private folder, removed once the container is created
(`start`). Docker keeps it in the container's config, which `docker inspect` shows to whoever may use
the engine (README: Security).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from gpuenv.errors import BadInput
from gpuenv.host.access import Devices, GpuMode, RunArgs
from gpuenv.host.limits import HostSize, Limits, docker_args, max_jobs
from gpuenv.host.user import ids
from gpuenv.render.compose import CA_IN_CONTAINER, CA_VARIABLES, run_ca, runtime_environment
from gpuenv.render.recipe import ACCESS_PORTS, HOME, SSH_HOST_KEYS, Published, Recipe, Service, ServiceName
from gpuenv.run import workspace
from gpuenv.run.docker import Docker, ImageInspect

LABEL = "io.gpuenv"


@dataclass(frozen=True)
class Launch:
    name: str                     # the container's name: PROJECT-SERVICE
    service: ServiceName
    argv: tuple[str, ...]         # after `docker run`, without the environment
    config: str                   # hash of what the container would be: a change means recreate
    environment: tuple[tuple[str, str], ...] = ()    # (name, value): through a private file, never argv


@dataclass(frozen=True)
class Host:
    """This host's side of the run."""

    files: Path                   # the folder of Dockerfile/compose.yaml/.env
    image: str
    image_env: tuple[tuple[str, str], ...]    # the image's ENV (PATH...): the GPU's prepends go before it
    gpu: RunArgs
    gpu_mode: GpuMode             # the probe's, or "none" when the environment needs no GPU
    gpus: str                     # "all", "0,1" or "none"
    ports: tuple[Published, ...]  # the host ports chosen; () until `up` chose them (the config hash ignores them)
    owner: int
    selinux: bool = False
    network: str = ""             # "none" on an engine without a bridge network (dockerd --bridge=none)
    remote: bool = False          # the engine runs on another host: this host's files cannot be mounted
    limits: Limits = Limits()     # each container's: the spec's, or the host's defaults (host/limits.py)
    size: HostSize = HostSize()   # the engine's host: MAX_JOBS where a limit is lifted


def launches(r: Recipe, host: Host) -> list[Launch]:
    return [_launch(r, host, s, i == 0) for i, s in enumerate(r.services)]


def container_name(r: Recipe, service: ServiceName) -> str:
    return f"{r.project}-{service}"


def volume_name(r: Recipe) -> str:
    """sshd's host-key volume: the name compose.yaml gives it too (Recipe.volumes)."""
    return r.volumes()[SSH_HOST_KEYS]


def _launch(r: Recipe, host: Host, s: Service, main: bool) -> Launch:
    name = container_name(r, s.name)
    args = ["--detach", "--name", name, "--hostname", r.name, "--init", "--restart", r.spec.run.restart]
    args += _ipc(r) + docker_args(host.limits)
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
    environment, at = tuple(_environment(r, host, s)), len(args)
    args += list(host.gpu.flags)
    if s.health and not main:
        kind, port = s.health
        args += ["--health-cmd", f"{r.python.command} /usr/local/lib/gpuenv/healthcheck.py {kind} {port}",
                 "--health-interval", "10s", "--health-timeout", "5s", "--health-retries", "3",
                 "--health-start-period", "30s"]
    # the config: everything but the host ports, which `up` chooses only when it (re)creates
    wanted = [f"{x.name}:{x.port}:{x.host_port}" for x in r.services]
    wanted += [f"{ACCESS_PORTS}:{p.container}:{p.host}" for p in r.spec.access.ports] + [r.spec.access.bind]
    settings = [x for key, value in environment for x in ("--env", f"{key}={value}")]   # where they once were
    described = [host.image, *args[:at], *settings, *args[at:], *wanted]
    config = hashlib.sha256("\0".join(described).encode()).hexdigest()[:16]
    for service, inside, outside in host.ports:           # Published(service, container, host)
        if service == s.name or (main and service == ACCESS_PORTS):
            args += ["--publish", f"{_bind(r.spec.access.bind)}:{outside}:{inside}"]
    labels = {
        "project": r.project, "env": r.name, "service": s.name, "main": str(main).lower(),
        "owner": str(host.owner), "files": str(host.files), "workspace": _workspace(r, host),
        "gpu-mode": host.gpu_mode, "gpus": host.gpus, "config": config, "python-command": r.python.command,
    }
    for key, value in labels.items():
        args += ["--label", f"{LABEL}.{key}={value}"]
    args.append(host.image)
    if not main:
        args += list(s.command)
    return Launch(name, s.name, tuple(args), config, environment)


def start(docker: Docker, launch: Launch) -> None:
    """`docker run` of a launch, its environment read from a private env file (never the command line)."""
    with env_file(launch.environment) as path:
        docker.run("run", "--env-file", str(path), *launch.argv, timeout=300)


def create(docker: Docker, launch: Launch) -> str:
    """`docker create` of a launch (as `start`, not started: a claim on its GPUs, share/arbiter.py); its id."""
    argv = [a for a in launch.argv if a != "--detach"]
    with env_file(launch.environment) as path:
        return docker.run("create", "--env-file", str(path), *argv, timeout=300).stdout.strip()


@contextmanager
def env_file(environment: tuple[tuple[str, str], ...]) -> Iterator[str]:
    """A file in docker's --env-file format (NAME=VALUE, the value verbatim to the end of the line),
    mode 600 in a folder of mode 700 that only this user can enter; removed when the block ends."""
    text = "".join(f"{_env_line(key, value)}\n" for key, value in environment)
    with tempfile.TemporaryDirectory(prefix="gpuenv-run-") as folder:     # created with mode 700
        path = os.path.join(folder, "env")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield path


def _env_line(key: str, value: str) -> str:
    """One line of an env file; a value that one line cannot hold is refused, never cut short."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or any(c in value for c in "\n\r\0"):
        raise BadInput(f"the container's environment variable {key!r} cannot be passed: its name or value "
                       "holds a line break or NUL", "remove the line break from the gpuenv.toml setting that gives it")
    return f"{key}={value}"


def _ipc(r: Recipe) -> list[str]:
    return ["--ipc", "host"] if r.spec.run.ipc == "host" else ["--shm-size", r.spec.run.shm_size]


def _bind(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def ready_workspace(r: Recipe, host: Host) -> None:
    """Before anything starts: the workspace is no system folder (unless the spec allows it), and a
    missing one is made as the user it is for (run/workspace.py). On a remote engine, it is that host's."""
    folder = Path(_workspace(r, host))
    workspace.check(folder, r.spec.workspace.allow_system_folder)
    real = Path(os.path.realpath(folder))        # a link to a missing folder: the engine would make its target
    if not host.remote and not real.exists():
        workspace.create(real, *workspace.owner(r.inputs.uid, r.inputs.gid, ids("host")))


def _workspace(r: Recipe, host: Host) -> str:
    return _path(host.files, r.inputs.workspace)


def _path(base: Path, text: str) -> str:
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _environment(r: Recipe, host: Host, s: Service) -> list[tuple[str, str]]:
    tokens, access = r.inputs.tokens, r.spec.access
    env: list[tuple[str, str]] = []
    if s.name == "jupyter":
        jupyter = access.jupyter              # set whenever the jupyter service is (spec rules)
        if jupyter is not None and jupyter.auth == "password" and jupyter.password_hash:
            env.append(("GPUENV_JUPYTER_PASSWORD_HASH", jupyter.password_hash))
        else:
            env.append(("JUPYTER_TOKEN", tokens["JUPYTER_TOKEN"]))
    if s.name == "gateway":
        env.append(("KG_AUTH_TOKEN", tokens["GPUENV_GATEWAY_TOKEN"]))
    env += [(k, v) for k, v in runtime_environment(r).items() if not (host.remote and k in CA_VARIABLES)]
    env += list(host.gpu.env)
    if _devel(r):
        env.append(("MAX_JOBS", str(max_jobs(host.limits, host.size))))
    image_env = dict(host.image_env)
    for key, value in host.gpu.prepend:
        env.append((key, f"{value}:{image_env[key]}" if image_env.get(key) else value))
    return env


def _devel(r: Recipe) -> bool:
    """A toolkit = "devel" environment: compiles at run time (`pip install -e .`, DeepSpeed's JIT) read
    MAX_JOBS, which the limits size so that they fit (the image's build steps size their own)."""
    chain = r.plan.toolchain
    return chain is not None and chain.level == "devel"


def gpus_text(devices: Devices, mode: GpuMode) -> str:
    """The GPUs a container gets, as its io.gpuenv.gpus label says them: "all", "0,1" or "none"."""
    if mode == "none":
        return "none"
    return "all" if devices == "all" else ",".join(str(d) for d in devices)


def image_env(image: Optional[ImageInspect]) -> tuple[tuple[str, str], ...]:
    """The image's ENV (its `docker image inspect`), as (name, value) pairs."""
    found: list[str] = ((image or {}).get("Config") or {}).get("Env") or []
    pairs = (item.partition("=") for item in found if "=" in item)
    return tuple((key, value) for key, _, value in pairs)
