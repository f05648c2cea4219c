"""How GPUs can reach containers on the engine's host, best first, and the `docker run` arguments of each.

    toolkit   the NVIDIA Container Toolkit: the engine has the `nvidia` runtime or its hook is
              installed -> `--gpus` (device requests; compose device reservations)
    cdi       a CDI spec for nvidia.com/gpu and an engine that reads CDI specs -> `--device nvidia.com/gpu=all`
    devices   no toolkit, but a working driver: the /dev/nvidia* nodes are passed and the driver's own
              libraries and tools are mounted read-only (what nvidia-docker 1.0 did)
    none      CPU only

Pure: decided from the probe's facts, so it is tested on recorded hosts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Optional, Sequence, Union

from gpuenv.host.driver_files import BIN_DIR, LIB_DIR, DriverFiles
from gpuenv.host.engine import Engine
from gpuenv.host.nvidia import DriverState
from gpuenv.host.system import System

# how GPUs reach a container (the module docstring says each); "none": CPU only
GpuMode = Literal["toolkit", "cdi", "devices", "none"]
MODES: tuple[GpuMode, ...] = ("toolkit", "cdi", "devices", "none")     # best first
CAPABILITIES = "compute,utility"

Devices = Union[str, Sequence[Union[int, str]]]    # "all", or GPU indexes / UUIDs


@dataclass(frozen=True)
class Mode:
    """One GPU mode as the probe found it on the engine's host."""

    name: GpuMode
    usable: bool
    why: str                            # why it can or cannot be used here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunArgs:
    """What `docker run` needs for the GPU: flags, and variables whose value is prepended to the
    image's own (PATH, LD_LIBRARY_PATH), since `-e` would replace it."""

    flags: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    prepend: tuple[tuple[str, str], ...] = ()


def modes(engine: Engine, system: System, driver: DriverState, files: DriverFiles) -> tuple[Mode, ...]:
    """Every mode with whether it can be used here, in order of preference."""
    return (_toolkit(engine, system, driver), _cdi(engine, system, driver), _devices(driver, files),
            Mode("none", True, "CPU only: always possible"))


def best(found: Sequence[Mode]) -> Mode:
    return next(m for m in found if m.usable)


def _toolkit(engine: Engine, system: System, driver: DriverState) -> Mode:
    if not driver.ok:
        return Mode("toolkit", False, "no working NVIDIA driver")
    if "nvidia" in engine.runtimes:
        return Mode("toolkit", True, "the engine has the nvidia runtime")
    if system.toolkit.hook:
        return Mode("toolkit", True, f"the toolkit's hook is installed ({system.toolkit.hook}): --gpus works")
    return Mode("toolkit", False, "the NVIDIA Container Toolkit is not installed")


def _cdi(engine: Engine, system: System, driver: DriverState) -> Mode:
    if not driver.ok:
        return Mode("cdi", False, "no working NVIDIA driver")
    specs = [s for s in system.cdi_specs if s.kind == "nvidia.com/gpu"]
    if not specs:
        return Mode("cdi", False, "no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi")
    if not engine.cdi_spec_dirs:
        return Mode("cdi", False, f"a CDI spec exists ({specs[0].path}), but engine {engine.version or '?'} "
                                  "does not read CDI specs (Docker 25+ with CDI enabled does)")
    stale = [s for s in specs if s.driver and driver.version and s.driver != driver.version]
    if stale:
        return Mode("cdi", False, f"{stale[0].path} was generated for driver {stale[0].driver}, "
                                  f"the driver is {driver.version}")
    return Mode("cdi", True, f"CDI spec {specs[0].path}")


def _devices(driver: DriverState, files: DriverFiles) -> Mode:
    if not driver.ok:
        return Mode("devices", False, driver.error or "no working NVIDIA driver")
    nodes = {d.path for d in files.devices}
    missing = [p for p in ("/dev/nvidiactl", "/dev/nvidia-uvm") if p not in nodes]
    if missing:
        return Mode("devices", False, f"device node {missing[0]} is missing")
    if files.library("libcuda.so.1") is None or files.library("libnvidia-ml.so.1") is None:
        return Mode("devices", False, f"libcuda.so.1 / libnvidia-ml.so.1 of driver {driver.version} "
                                      "are not in the linker cache")
    return Mode("devices", True, f"{len(files.devices)} device nodes and {len(files.libraries)} driver libraries "
                                 "found; they are passed and mounted read-only")


def run_args(mode: GpuMode, driver: DriverState, files: DriverFiles, devices: Devices = "all") -> RunArgs:
    """The `docker run` arguments that give a container the GPUs `devices` in `mode`."""
    if mode == "none":
        return RunArgs(())
    env = (("NVIDIA_VISIBLE_DEVICES", _visible(devices)), ("NVIDIA_DRIVER_CAPABILITIES", CAPABILITIES))
    if mode == "toolkit":
        chosen = "all" if devices == "all" else f'"device={_visible(devices)}"'
        return RunArgs(("--gpus", chosen), env)
    if mode == "cdi":
        names = ["all"] if devices == "all" else [str(d) for d in devices]
        return RunArgs(tuple(f for n in names for f in ("--device", f"nvidia.com/gpu={n}")), env)
    if mode == "devices":
        return _devices_args(driver, files, devices)
    raise ValueError(f"unknown GPU mode {mode!r}")


def _devices_args(driver: DriverState, files: DriverFiles, devices: Devices) -> RunArgs:
    wanted = _minors(driver, devices)
    flags: list[str] = []
    for node in files.devices:
        gpu = re.fullmatch(r"/dev/nvidia(\d+)", node.path)
        if gpu and wanted is not None and int(gpu.group(1)) not in wanted:
            continue
        flags += ["--device", node.path]
    for lib in files.libraries:
        for name in lib.names:
            flags += ["--volume", f"{lib.host_path}:{LIB_DIR}/{name}:ro"]
    for tool in files.tools:
        flags += ["--volume", f"{tool}:{BIN_DIR}/{tool.rsplit('/', 1)[-1]}:ro"]
    return RunArgs(tuple(flags), (("NVIDIA_DRIVER_CAPABILITIES", CAPABILITIES),),
                   (("PATH", BIN_DIR), ("LD_LIBRARY_PATH", LIB_DIR)))


def _minors(driver: DriverState, devices: Devices) -> Optional[set[int]]:
    """The /dev/nvidiaN minors of the chosen GPUs (None: all)."""
    if devices == "all":
        return None
    chosen = set()
    for want in devices:
        for gpu in driver.gpus:
            if str(want) in (str(gpu.index), gpu.uuid):
                chosen.add(gpu.minor if gpu.minor is not None else gpu.index)
    return chosen


def _visible(devices: Devices) -> str:
    return "all" if devices == "all" else ",".join(str(d) for d in devices)
