"""What to build, before any engine or file: a request (command-line words or a gpuenv.toml) and a target
(flags, the spec's [gpu] table, or this host), then the plan (the knowledge base's, or the whole
environment resolved by uv). environment.py takes a plan from here to files, an image and containers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional

import gpuenv.host as hosts          # the face: the host's modules load only when the host is asked
import gpuenv.spec as specs          # the face: its model (pydantic) loads when a gpuenv.toml is read
from gpuenv.errors import BadInput
from gpuenv.resolve import GpuTarget, Plan, Request, Target, nvidia, resolve, want
from gpuenv.resolve.packages import source_for
from gpuenv.resolve.request import requirements_file
from gpuenv.resolve.resolved import tools_for
from gpuenv.resolve.whole import resolve_whole
from gpuenv.spec.request import parse_request

if TYPE_CHECKING:
    from gpuenv.host.nvidia import DriverState
    from gpuenv.spec.model import EnvSpec


@dataclass(frozen=True)
class TargetFlags:
    """What the command line says about the machine to plan for (None: not said)."""

    driver: Optional[str] = None
    gpu_names: tuple[str, ...] = ()
    gpu_ccs: tuple[str, ...] = ()


def request_from_words(words: list[str], python: Optional[str] = None) -> Request:
    """A request from command-line words (`torch>=2.4`, `tensorflow 1.2.1 py36`, `mxnet cu90`)."""
    partial = parse_request(words)
    gpu = partial.get("gpu", {})
    return Request(
        wants=tuple(want(text, "request") for text in partial.get("frameworks", [])),
        python=python or partial.get("python"),
        cuda=gpu.get("cuda"),
        cpu=gpu.get("devices") == "none",
        packages=tuple(partial.get("packages", [])),
    )


def request_from_spec(path: Path, python: Optional[str] = None) -> tuple[Request, EnvSpec]:
    """A request from a gpuenv.toml (frameworks, and those named in its requirements file)."""
    spec = specs.load_spec(path)
    texts = list(spec.frameworks)
    packages = list(spec.packages)
    if spec.requirements:
        listed = requirements_file(path.parent / spec.requirements, path.parent)
        texts += listed.frameworks
        packages += listed.others
    where = f"{path}"
    request = Request(
        wants=tuple(want(str(t), where) for t in texts),
        python=python or spec.python,
        cuda=None if spec.gpu.cuda == "auto" else spec.gpu.cuda,
        base=spec.base,
        cpu=spec.gpu.devices == "none",
        packages=tuple(str(p) for p in packages),
        toolkit=spec.gpu.toolkit,
    )
    return request, spec


class Seen(NamedTuple):
    """The driver and GPUs containers will get, as a probe saw them, and where they were seen."""

    driver: Optional[DriverState]   # None, or one that is not `ok`: no usable driver (a target with no limits)
    origin: str                     # "this host", "the engine's host (ssh://gpu1)": said in the plan's reasons


def target_for(flags: TargetFlags, spec: Optional[EnvSpec] = None, *, probe: bool = True,
               seen: Optional[Seen] = None) -> Target:
    """The machine to plan for, the first that says anything: the flags, then the spec's [gpu] table, then
    the engine's host (where the containers run: this host, or a remote DOCKER_HOST's).

    The engine's host is `seen` when a probe was already made (environment.prepare passes its own); None:
    it is asked here (_this_host). `probe=False`: it is never asked, and with neither flags nor [gpu] the
    target is no machine (no limits); `seen` is then not used."""
    if flags.driver or flags.gpu_names or flags.gpu_ccs:
        gpus = [_named_gpu(n, "--gpu-name") for n in flags.gpu_names] + [_cc_gpu(c, "--gpu") for c in flags.gpu_ccs]
        return Target(flags.driver and _driver(flags.driver, "--driver"), tuple(gpus), "the machine the flags describe")
    if spec is not None and (spec.gpu.driver != "auto" or spec.gpu.model != "auto"
                             or spec.gpu.compute_capability != "auto"):
        gpus = []
        if spec.gpu.model != "auto":
            gpus.append(_named_gpu(spec.gpu.model, "gpu.model"))
        ccs = spec.gpu.compute_capability
        if ccs != "auto":
            gpus += [_cc_gpu(c, "gpu.compute_capability") for c in ([ccs] if isinstance(ccs, str) else ccs)]
        limit = None if spec.gpu.driver == "auto" else spec.gpu.driver
        return Target(limit, tuple(gpus), "the machine gpuenv.toml's [gpu] describes")
    if not probe:
        return Target(None, (), "no machine (no limits)")
    host, origin = seen if seen is not None else _this_host()
    host = host if host is not None and host.ok else None
    if host is None:
        return Target(None, (), f"{origin} (no NVIDIA driver)")
    gpus = []
    for gpu in host.gpus:
        cc = gpu.cc or (nvidia.gpu_by_name(gpu.name) or (None, None))[1]
        if cc:
            gpus.append(GpuTarget(gpu.name, cc))
    return Target(host.version, tuple(gpus), origin)


def _this_host() -> Seen:
    """The driver and GPUs containers will get: this host's, or a remote engine's host's (the host's
    modules load here, through its face: a plan for flags or a spec's [gpu] never looks at the host)."""
    endpoint, _ = hosts.engine.endpoint_from_config()
    if hosts.engine.remote_endpoint(endpoint):
        report = hosts.probe.probe(network=False)
        return Seen(report.driver if report.driver.ok else None, f"the engine's host ({endpoint})")
    return Seen(hosts.nvidia.driver_for_planning(), "this host")


_DRIVER = re.compile(r"\d{3}(\.\d{1,3}){0,2}")


def _driver(text: str, where: str) -> str:
    if not _DRIVER.fullmatch(text):
        raise BadInput(f"{where}: '{text}' is not an NVIDIA driver version",
                       "write it as nvidia-smi shows it, e.g. 384.90 or 535.104.05")
    return text


def _named_gpu(name: str, where: str) -> GpuTarget:
    found = nvidia.gpu_by_name(name)
    if found is None:
        near = nvidia.close_gpu_names(name)
        hint = f"did you mean {', '.join(near)}?" if near else "give its compute capability with --gpu X.Y instead"
        raise BadInput(f"{where}: gpuenv does not know the GPU '{name}'", hint)
    return GpuTarget(found[0], found[1])


def _cc_gpu(cc: str, where: str) -> GpuTarget:
    if not re.fullmatch(r"\d{1,2}\.\d", cc) or nvidia.arch(cc) is None:
        known = ", ".join(a.cc for a in nvidia.archs())
        raise BadInput(f"{where}: '{cc}' is not a compute capability gpuenv knows", f"one of: {known}")
    return GpuTarget(f"a GPU of compute capability {cc}", cc)


def plan(request: Request, target: Target) -> Plan:
    """The knowledge base's plan alone (`gpuenv matrix`, and what the whole resolution starts from)."""
    return resolve(request, target)


def plan_whole(request: Request, target: Target, spec: Optional[EnvSpec] = None, spec_dir: Optional[Path] = None,
               offline: bool = False) -> Plan:
    """The plan of the whole environment: the knowledge base's choice checked, and searched further when
    needed, by the resolver over every package (resolve/whole.py), through the spec's network policy.
    `spec` None (a request from words): no access tools, the environment's index settings (PIP_INDEX_URL,
    proxies, CAs). `spec_dir`: where the spec's relative paths (CA files) start. `offline`: no index is
    asked, and the plan's `resolved` says so ("unresolved"); the plan's `resolved` is never None here."""
    tools: tuple[str, ...] = ()
    if spec is not None:
        tools = tools_for(spec)
    source = source_for(spec.network if spec is not None else None, spec_dir, offline)
    return resolve_whole(request, target, tools, source)
