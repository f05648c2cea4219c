"""The NVIDIA driver and GPUs of a host: through NVML (nvidia-ml-py) on this host, else `nvidia-smi`.

`read_nvml()` asks the driver's libnvidia-ml.so.1 directly (fast: no process). Where NVML is not there
(no nvidia-ml-py, a remote host, a recording), the same facts come from `nvidia-smi -q -x` and, for
the compute capability that the XML does not carry, `nvidia-smi --query-gpu=compute_cap` (R510 on).
A driver that is missing or broken is a `DriverState` with the reason, never an exception.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType
from typing import Any, Callable, Optional, TypeVar

from gpuenv.host.observe import Observations, observe_local

QUERY = "index,name,uuid,compute_cap,driver_version"
T = TypeVar("T")


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_mib: Optional[int]
    kind: str = ""          # "C" compute, "G" graphics, "C+G" both (nvidia-smi's <type>); "": not said


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str
    cc: Optional[str] = None               # "9.0"; None where the driver does not report it
    minor: Optional[int] = None            # N of /dev/nvidiaN
    pci_bus_id: str = ""
    memory_total_mib: Optional[int] = None
    memory_used_mib: Optional[int] = None
    utilization_pct: Optional[int] = None
    compute_mode: str = ""                 # Default, Exclusive_Process, Prohibited
    persistence_mode: str = ""
    mig: bool = False
    fabric_state: str = ""                 # NVSwitch systems: Completed / In Progress / Not Started; else N/A
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class DriverState:
    """What the driver said: its version, the newest CUDA it runs, its GPUs; or why it said nothing."""

    version: Optional[str] = None
    cuda: Optional[str] = None             # "13.0", as the driver reports it
    gpus: tuple[Gpu, ...] = ()
    source: str = ""                       # "nvml" or "nvidia-smi"
    error: Optional[str] = None            # why no answer: missing, mismatch, NVML Unknown Error...

    @property
    def ok(self) -> bool:
        return self.version is not None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- NVML --------------------------------------------------------------------------------------------

def read_nvml() -> Optional[DriverState]:
    """The driver through NVML, or None when nvidia-ml-py is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return DriverState(source="nvml", error=_nvml_error(pynvml, exc))
    try:
        version = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        gpus = tuple(_nvml_gpu(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount()))
        return DriverState(version, f"{cuda // 1000}.{cuda % 1000 // 10}", gpus, "nvml")
    except pynvml.NVMLError as exc:
        return DriverState(source="nvml", error=_nvml_error(pynvml, exc))
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _nvml_error(pynvml: ModuleType, exc: Exception) -> str:
    if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
        return "no NVIDIA driver: libnvidia-ml.so.1 is not in the linker cache"
    if isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
        return "no NVIDIA driver: the kernel module is not loaded"
    return f"Failed to initialize NVML: {exc}"


def _nvml_gpu(pynvml: ModuleType, index: int) -> Gpu:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return Gpu(
        index=index,
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
        cc=f"{major}.{minor}",
        minor=_try(pynvml, lambda: pynvml.nvmlDeviceGetMinorNumber(handle)),
        pci_bus_id=_try(pynvml, lambda: _text(pynvml.nvmlDeviceGetPciInfo(handle).busId)) or "",
        memory_total_mib=memory.total // 2**20,
        memory_used_mib=memory.used // 2**20,
        utilization_pct=_try(pynvml, lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        compute_mode=_named(_NVML_COMPUTE_MODES, _try(pynvml, lambda: pynvml.nvmlDeviceGetComputeMode(handle))),
        persistence_mode=_named(_NVML_PERSISTENCE_MODES,
                                _try(pynvml, lambda: pynvml.nvmlDeviceGetPersistenceMode(handle))),
        mig=bool((_try(pynvml, lambda: pynvml.nvmlDeviceGetMigMode(handle)) or [0])[0]),
        processes=tuple(GpuProcess(p.pid, _process_name(pynvml, p.pid), _mib(p.usedGpuMemory), "C")
                        for p in _try(pynvml, lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(handle)) or ()),
    )


_NVML_COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
_NVML_PERSISTENCE_MODES = {0: "Disabled", 1: "Enabled"}


def _named(names: dict[int, str], value: Optional[int]) -> str:
    """The name of an NVML enum value, as nvidia-smi prints it; "" where NVML did not say or the value is new."""
    return names.get(value, "") if value is not None else ""


def _try(pynvml: ModuleType, call: Callable[[], T]) -> Optional[T]:
    """What `call` answers, or None where NVML raises (a field this GPU or driver does not report)."""
    try:
        return call()
    except pynvml.NVMLError:
        return None


def _process_name(pynvml: ModuleType, pid: int) -> str:
    return _text(_try(pynvml, lambda: pynvml.nvmlSystemGetProcessName(pid)) or "")


def _mib(value: Optional[int]) -> Optional[int]:
    return None if value is None or value >= 2**63 else value // 2**20


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- nvidia-smi -------------------------------------------------------------------------------------

def from_observations(obs: Observations) -> DriverState:
    """The driver from `nvidia-smi -q -x`, completed by `--query-gpu` (compute capability)."""
    xml = obs.text("nvidia-smi-q.xml")
    if xml is None:
        return DriverState(source="nvidia-smi", error=_smi_error(obs.raw("nvidia-smi-q.xml")))
    try:
        state = parse_xml(xml)
    except ET.ParseError as exc:
        return DriverState(source="nvidia-smi", error=f"nvidia-smi -q -x printed no valid XML: {exc}")
    query = parse_query(obs.text("nvidia-smi-query-gpu.csv") or "")
    by_uuid = {g.uuid: g for g in (query.gpus if query else ())}
    gpus = tuple(replace(g, cc=g.cc or (by_uuid[g.uuid].cc if g.uuid in by_uuid else None)) for g in state.gpus)
    return replace(state, gpus=gpus)


def _smi_error(printed: str) -> str:
    text = printed.strip()
    if not text or "not found" in text or "No such file" in text:
        return "no NVIDIA driver: nvidia-smi is not installed"
    first = text.splitlines()[0]
    return first if "exit" not in first else "nvidia-smi failed"


def parse_xml(text: str) -> DriverState:
    """Parse `nvidia-smi -q -x` (every format from R300 on: fields missing in old ones stay empty)."""
    root = ET.fromstring(_without_doctype(text))
    gpus = tuple(_xml_gpu(i, node) for i, node in enumerate(root.findall("gpu")))
    cuda = _field(root, "cuda_version")
    return DriverState(_field(root, "driver_version") or None, cuda if cuda and cuda[0].isdigit() else None,
                       gpus, "nvidia-smi")


def _xml_gpu(index: int, node: ET.Element) -> Gpu:
    processes = tuple(
        GpuProcess(int(_field(p, "pid")), _field(p, "process_name"), _number(_field(p, "used_memory")),
                   _field(p, "type"))
        for p in node.findall("processes/process_info") if _field(p, "pid").isdigit())
    minor = _field(node, "minor_number")
    return Gpu(
        index=index,
        name=_field(node, "product_name"),
        uuid=_field(node, "uuid"),
        minor=int(minor) if minor.isdigit() else None,
        pci_bus_id=node.get("id", "") or _field(node, "pci/pci_bus_id"),
        memory_total_mib=_number(_field(node, "fb_memory_usage/total")),
        memory_used_mib=_number(_field(node, "fb_memory_usage/used")),
        utilization_pct=_number(_field(node, "utilization/gpu_util")),
        compute_mode=_field(node, "compute_mode"),
        persistence_mode=_field(node, "persistence_mode"),
        mig=_field(node, "mig_mode/current_mig") == "Enabled",
        fabric_state=_field(node, "fabric/state"),
        processes=processes,
    )


def _without_doctype(text: str) -> str:
    return re.sub(r"<!DOCTYPE[^>]*>", "", text, count=1)


def _field(node: ET.Element, path: str) -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None else ""


def _number(text: str) -> Optional[int]:
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class QueryRow:
    index: int
    name: str
    uuid: str
    cc: Optional[str]


@dataclass(frozen=True)
class QueryAnswer:
    driver: str
    gpus: tuple[QueryRow, ...] = field(default_factory=tuple)


def parse_query(text: str) -> Optional[QueryAnswer]:
    """Parse `nvidia-smi --query-gpu=<fields> --format=csv` (with or without its header line)."""
    rows = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r]
    names = [h.split(" [", 1)[0].strip().lower() for h in rows[0]] if rows else []
    if {"index", "name", "driver_version", "uuid"} & set(names):      # a header line, fields in any order
        header, rows = names, rows[1:]
    else:
        header = QUERY.split(",")
    gpus: list[QueryRow] = []
    driver: Optional[str] = None
    for row in rows:
        item = dict(zip(header, (c.strip() for c in row)))
        if not re.fullmatch(r"\d+", item.get("index", "0")) or not re.match(r"\d+\.", item.get("driver_version", "")):
            continue        # not an answer: an error message, or a field this nvidia-smi does not know
        driver = item.get("driver_version") or driver
        cc = item.get("compute_cap")
        gpus.append(QueryRow(int(item.get("index", len(gpus))), item.get("name", "?"), item.get("uuid", ""),
                             cc if cc and cc[0].isdigit() else None))
    return QueryAnswer(driver, tuple(gpus)) if driver else None


def kernel_module_version(obs: Observations) -> Optional[str]:
    """The loaded kernel module's version, from /proc/driver/nvidia/version."""
    text = obs.text("proc-driver-nvidia-version.txt") or ""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def driver_for_planning() -> Optional[DriverState]:
    """This host's driver and GPUs for `gpuenv plan`: NVML, else nvidia-smi's CSV query (fast). Here, not in
    probe.py, so that a plan loads no engine, network or access module (start-up time)."""
    found = read_nvml()
    if found is not None and found.ok:
        return found
    answer = parse_query(observe_local(["nvidia-smi-query-gpu.csv"]).text("nvidia-smi-query-gpu.csv") or "")
    if answer is None:
        return None
    gpus = tuple(Gpu(g.index, g.name, g.uuid, g.cc) for g in answer.gpus)
    return DriverState(answer.driver, None, gpus, "nvidia-smi")
