"""The host as it is: the Docker engine, the NVIDIA driver and GPUs of the engine's host, how GPUs can
reach containers there, and the network builds will meet. Probes sit behind observations
(observe.py) so that the evaluation is pure and tested on real recorded outputs.

    observe.py       named shell observations: run here, in a container on a remote engine's host
                     (remote.py), or replayed from a recording
    nvidia.py        driver and GPUs: NVML (nvidia-ml-py), else nvidia-smi -q -x / --query-gpu
    driver_files.py  the driver's libraries, tools and device nodes (for the `devices` mode)
    system.py        distribution, cgroups, SELinux, WSL, toolkit, CDI specs, daemon.json
    engine.py        the Docker engine and clients, through the docker CLI
    network.py       proxies, extra CAs, TLS interception, registries that answer
    access.py        the GPU modes (toolkit, cdi, devices, none) and their `docker run` arguments
    probe.py         all of it at once: HostReport

`engine`, `nvidia` and `probe` are loaded on first use (gpuenv/lazy.py): a plan for flags or a spec's
[gpu] table never looks at the host, and a plan for this one reads only its driver (nvidia).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.host import engine as engine
    from gpuenv.host import nvidia as nvidia
    from gpuenv.host import probe as probe

__getattr__, __dir__ = exports(__name__, {name: f"gpuenv.host.{name}" for name in ("engine", "nvidia", "probe")})
