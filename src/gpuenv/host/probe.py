"""The host probe: one call that sees the engine, the driver and GPUs of the engine's host, the GPU
paths into containers, and the network. Everything runs concurrently; nothing here raises for a
broken host (a broken host is what the report describes).

Where the facts come from:
    engine          the docker CLI (host/engine.py)
    driver, GPUs    NVML on this host, else nvidia-smi; on a remote engine's host, nvidia-smi run
                    there in a short-lived container (host/remote.py)
    system, files   OBSERVATIONS (host/observe.py), here or there
    network         this host (builds are sent from here)
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

from gpuenv.errors import EngineError
from gpuenv.host import access, nvidia
from gpuenv.host.driver_files import DriverFiles, driver_files
from gpuenv.host.engine import Engine, probe_engine
from gpuenv.host.network import DOCKER_HUB, Network, RegistryCheck, extra_cas, intercepting_ca, proxy_env, \
    registry_check, registry_url
from gpuenv.host.observe import HOLDERS, OBSERVATIONS, Observations, observe_local
from gpuenv.host.remote import observe_remote
from gpuenv.host.system import System, system

NVIDIA_SMI = ("nvidia-smi-q.xml", "nvidia-smi-query-gpu.csv")
DOCKER_ROOT = "docker-root-df.txt"     # needs the engine's root dir: run once the engine has answered


@dataclass(frozen=True)
class HostReport:
    engine: Engine
    driver: nvidia.DriverState
    kernel_module: Optional[str]        # the loaded kernel module's version; None: none loaded, or not seen
    system: System
    files: DriverFiles
    modes: tuple[access.Mode, ...]
    network: Optional[Network]          # this host's proxies, CAs and registries; None: not probed
                                        # (probe(network=False), or a report from observations alone)
    observed: str                       # which host the driver and system facts are from, and how
    probe_error: Optional[str] = None   # a remote host that could not be observed

    @property
    def mode(self) -> access.Mode:
        return access.best(self.modes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.name
        return data


def from_observations(engine: Engine, obs: Observations, driver: Optional[nvidia.DriverState] = None,
                      network: Optional[Network] = None, probe_error: Optional[str] = None) -> HostReport:
    """Evaluate observations (live, remote or recorded) into a report. Pure."""
    if driver is None or not driver.ok:
        seen = nvidia.from_observations(obs)
        driver = seen if seen.ok or driver is None or _missing(driver) else driver
    module = nvidia.kernel_module_version(obs)
    files = driver_files(obs, driver.version or module)
    found = system(obs)
    return HostReport(engine, driver, module, found, files, access.modes(engine, found, driver, files), network,
                      obs.where, probe_error)


def _missing(driver: nvidia.DriverState) -> bool:
    return bool(driver.error and driver.error.startswith("no NVIDIA driver"))


def probe(network: bool = True, index_host: str = "pypi.org", through_engine: Optional[bool] = None,
          compose: bool = True) -> HostReport:
    """Probe the host. `through_engine`: True always observes through a container on the engine,
    False never, None when the engine is remote. `compose=False`: compose's version is not asked."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        engine_job = pool.submit(probe_engine, compose)
        nvml_job = pool.submit(nvidia.read_nvml)
        local_job = pool.submit(observe_local, [n for n in OBSERVATIONS if n not in NVIDIA_SMI + HOLDERS + (DOCKER_ROOT,)])
        engine = engine_job.result()
        net_job: Optional[Future[Network]] = pool.submit(probe_network, engine, index_host) if network else None
        remote = engine.ok and (engine.remote if through_engine is None else through_engine)
        if remote:
            obs, error = _observe_through(engine)
            report = from_observations(engine, obs, None, None, error)
        else:
            nvml = nvml_job.result()
            more: tuple[str, ...] = (DOCKER_ROOT,) if engine.root_dir else ()
            more += NVIDIA_SMI if nvml is None or not nvml.ok else ()
            obs = _merged(local_job.result(), observe_local(more, docker_root=engine.root_dir or "/"))
            report = from_observations(engine, obs, nvml)
        return replace(report, network=net_job.result() if net_job else None)


def _observe_through(engine: Engine) -> tuple[Observations, Optional[str]]:
    try:
        return observe_remote(engine.client or "docker", engine.root_dir or "/var/lib/docker"), None
    except EngineError as exc:
        return Observations({}, "the engine's host (not observed)"), exc.message


def _merged(first: Observations, more: Observations) -> Observations:
    return Observations({**first.outputs, **more.outputs}, first.where)


def probe_network(engine: Engine, index_host: str = "pypi.org") -> Network:
    """Proxies and CAs of this host; whether TLS to the package index is intercepted; whether Docker
    Hub and the engine's mirrors answer (through the engine's proxy, as its pulls would)."""
    cas = extra_cas()
    proxy = engine.https_proxy or proxy_env().get("https_proxy")
    urls = [registry_url(m) for m in engine.mirrors] + [DOCKER_HUB]
    with ThreadPoolExecutor(max_workers=len(urls) + 1) as pool:
        intercept: Future[tuple[Optional[str], str]] = pool.submit(intercepting_ca, index_host, cas)
        checks: list[Future[RegistryCheck]] = [pool.submit(registry_check, url, proxy) for url in urls]
        ca, what = intercept.result()
        return Network(proxy_env(), cas, ca, what, tuple(c.result() for c in checks))
