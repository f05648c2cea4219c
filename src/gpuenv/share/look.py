"""Looking at a host's GPUs and who holds them (the I/O around holders.survey): the driver through NVML
here, else nvidia-smi; on a remote engine's host, nvidia-smi and the process records in one container
there (host/remote.py); every container of the engine, inspected."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Optional

from gpuenv.errors import EngineError
from gpuenv.host import nvidia
from gpuenv.host.engine import Engine, engine_from_info
from gpuenv.host.observe import HOLDERS, Observations, observe_local
from gpuenv.host.remote import observe_remote
from gpuenv.run.docker import ContainerInspect, Docker
from gpuenv.share.free import Idle
from gpuenv.share.holders import Survey, survey

if TYPE_CHECKING:
    from gpuenv.run.hosts import DockerHost

NVIDIA_SMI = ("nvidia-smi-q.xml", "nvidia-smi-query-gpu.csv")


def holder_observations(engine: Engine, with_driver: bool = False, context: str = "",
                        client: str = "") -> Observations:
    """gpu-processes.txt and passwd.txt (and nvidia-smi's, `with_driver`) of the engine's host (of docker
    context `context`, "" the CLI's own). A remote host that cannot be observed gives none (the survey then
    shows processes by PID)."""
    names = HOLDERS + (NVIDIA_SMI if with_driver else ())
    if not engine.remote:
        return observe_local(names)
    try:
        return observe_remote(client or engine.client or "docker", engine.root_dir or "/var/lib/docker", names=names,
                              context=context)
    except EngineError as exc:
        return Observations({}, f"the engine's host (not observed: {exc.message})")


def every_container(docker: Docker) -> list[ContainerInspect]:
    """Every container of the engine, running or not, inspected (whoever started it)."""
    ids = docker.run("ps", "-a", "-q", "--no-trunc").stdout.split()
    return docker.inspect("container", *ids)


def look(engine: Engine, docker: Docker, idle: Idle = Idle()) -> Survey:
    """Every GPU of the engine's host with who holds it (`docker` names the engine's context, if any)."""
    nvml: Optional[nvidia.DriverState] = None if engine.remote else nvidia.read_nvml()
    local = nvml is not None and nvml.ok
    obs = holder_observations(engine, with_driver=not local, context=docker.context, client=docker.client)
    driver = nvml if local and nvml is not None else nvidia.from_observations(obs)
    return survey(driver, obs, every_container(docker), idle)


def look_at(docker: Docker, host: DockerHost) -> Survey:
    """`look` at the engine of one docker context (`gpuenv gpus --hosts`): that engine as its own `docker
    info` describes it (remote when its host is not this one)."""
    info = docker.run("info", "--format", "{{json .}}").stdout
    try:
        data = json.loads(info)
    except ValueError:
        raise EngineError(f"{host.name}: `docker info` printed no JSON", "check `docker --context NAME info`") from None
    return look(engine_from_info(data if isinstance(data, dict) else {}, endpoint=host.endpoint), docker)
