"""Looking at a host's GPUs and who holds them (the I/O around holders.survey): the driver through NVML
here, else nvidia-smi; on a remote engine's host, nvidia-smi and the process records in one container
there (host/remote.py); every container of the engine, inspected."""

from __future__ import annotations

from typing import Optional

from gpuenv.errors import EngineError
from gpuenv.host import nvidia
from gpuenv.host.engine import Engine
from gpuenv.host.observe import HOLDERS, Observations, observe_local
from gpuenv.host.remote import observe_remote
from gpuenv.run.docker import ContainerInspect, Docker
from gpuenv.share.free import Idle
from gpuenv.share.holders import Survey, survey

NVIDIA_SMI = ("nvidia-smi-q.xml", "nvidia-smi-query-gpu.csv")


def holder_observations(engine: Engine, with_driver: bool = False) -> Observations:
    """gpu-processes.txt and passwd.txt (and nvidia-smi's, `with_driver`) of the engine's host. A remote host
    that cannot be observed gives none (the survey then shows processes by PID)."""
    names = HOLDERS + (NVIDIA_SMI if with_driver else ())
    if not engine.remote:
        return observe_local(names)
    try:
        return observe_remote(engine.client or "docker", engine.root_dir or "/var/lib/docker", names=names)
    except EngineError as exc:
        return Observations({}, f"the engine's host (not observed: {exc.message})")


def every_container(docker: Docker) -> list[ContainerInspect]:
    """Every container of the engine, running or not, inspected (whoever started it)."""
    ids = docker.run("ps", "-a", "-q", "--no-trunc").stdout.split()
    return docker.inspect("container", *ids)


def look(engine: Engine, docker: Docker, idle: Idle = Idle()) -> Survey:
    """Every GPU of the engine's host with who holds it."""
    nvml: Optional[nvidia.DriverState] = None if engine.remote else nvidia.read_nvml()
    local = nvml is not None and nvml.ok
    obs = holder_observations(engine, with_driver=not local)
    driver = nvml if local and nvml is not None else nvidia.from_observations(obs)
    return survey(driver, obs, every_container(docker), idle)
