"""Who holds which GPU: every GPU of a host with the environments, containers and processes on it.

The facts come from three places, all of the engine's host: the driver (NVML or nvidia-smi: each GPU,
its memory, utilization and processes), the observation `gpu-processes.txt` (each of those processes'
UID, user, cgroup and command line: host/processes.py) and the engine (its containers, inspected). A
process is mapped to its container through the container id in its cgroup; a container of a gpuenv
environment (its io.gpuenv.* labels) is shown as that environment, with its owner and container name.
Another user's environment shows its owner and name, never its environment variables or tokens (they
are not read); the command line of a process outside containers is shown with secret-looking arguments
hidden (processes.shown_command).

Pure: `survey` evaluates what was observed, live or recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence

from gpuenv.host.nvidia import DriverState, Gpu, GpuProcess
from gpuenv.host.observe import Observations
from gpuenv.host.processes import ProcessRecord, parse_passwd, parse_records, shown_command
from gpuenv.run.docker import ContainerInspect
from gpuenv.share.claims import LABEL, Claim, claims
from gpuenv.share.free import Idle, busy_reasons

HolderKind = Literal["environment", "container", "process"]


@dataclass(frozen=True)
class Holder:
    """One environment, container or process outside containers that holds or uses a GPU."""

    kind: HolderKind
    name: str                  # the environment's name, the container's name, or the command line shown
    owner: str                 # the user: an environment's owner, a process's user ("" when not known)
    container: str = ""        # the container's name ("" for a process outside containers)
    pids: tuple[int, ...] = ()
    used_mib: Optional[int] = None   # memory its processes use on this GPU (None: not reported)
    claimed: bool = False      # an environment that was given this GPU by name (label), used or not

    def describe(self) -> str:
        who = f" ({self.owner})" if self.owner else ""
        memory = f", {self.used_mib} MiB" if self.used_mib is not None else ""
        pids = f", pid {', '.join(map(str, self.pids))}" if self.pids else ""
        if self.kind == "environment":
            held = "" if self.pids else ", claimed, no process yet" if self.claimed else ""
            return f"environment {self.name}{who} in {self.container}{pids}{memory}{held}"
        if self.kind == "container":
            return f"container {self.name}{who}{pids}{memory}"
        return f"{self.name}{who}{pids}{memory}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GpuUse:
    gpu: Gpu
    holders: tuple[Holder, ...]
    busy: tuple[str, ...]      # why `devices = "free"` would not take it (empty: free)

    @property
    def free(self) -> bool:
        return not self.busy

    def to_dict(self) -> dict[str, Any]:
        g = self.gpu
        return {"index": g.index, "uuid": g.uuid, "name": g.name, "memory_used_mib": g.memory_used_mib,
                "memory_total_mib": g.memory_total_mib, "utilization_pct": g.utilization_pct, "mig": g.mig,
                "free": self.free, "busy": list(self.busy), "holders": [h.to_dict() for h in self.holders]}


@dataclass(frozen=True)
class Survey:
    where: str                       # which host, and how it was seen
    gpus: tuple[GpuUse, ...]
    sharing: tuple[Holder, ...]      # environments given every GPU (devices = "all"): they hold none alone
    error: Optional[str] = None      # why no GPU is listed: no driver, no GPU

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "error": self.error, "gpus": [u.to_dict() for u in self.gpus],
                "sharing_every_gpu": [h.to_dict() for h in self.sharing]}


def survey(driver: DriverState, obs: Observations, containers: Sequence[ContainerInspect],
           idle: Idle = Idle()) -> Survey:
    """Every GPU of `driver` with who holds it; `obs` holds gpu-processes.txt and passwd.txt (either may be
    missing: then processes are shown by PID and name, owners by UID)."""
    if not driver.ok or not driver.gpus:
        return Survey(obs.where, (), (), driver.error or "the NVIDIA driver is there, and no GPU")
    records = parse_records(obs.text("gpu-processes.txt") or "")
    names = _names(parse_passwd(obs.text("passwd.txt") or ""), records.values())
    by_id = {str(c.get("Id", "")): c for c in containers}
    found = claims(containers)
    uses = tuple(_use(gpu, driver.gpus, found, records, by_id, names, idle) for gpu in driver.gpus)
    sharing = tuple(_claim_holder(c, names, False) for c in found if c.everything)
    return Survey(obs.where, uses, sharing)


def _use(gpu: Gpu, gpus: Sequence[Gpu], found: Sequence[Claim], records: Mapping[int, ProcessRecord],
         by_id: Mapping[str, ContainerInspect], names: Mapping[int, str], idle: Idle) -> GpuUse:
    holders: list[Holder] = []
    grouped: dict[str, list[GpuProcess]] = {}
    for process in gpu.processes:
        record = records.get(process.pid)
        cid = record.container_id if record is not None else None
        if cid is None:
            holders.append(_process_holder(process, record))
        else:
            grouped.setdefault(cid, []).append(process)
    for cid, processes in grouped.items():
        holders.append(_container_holder(cid, processes, by_id.get(cid), names))
    for claim in found:
        if not claim.everything and gpu.uuid in claim.uuids(gpus) \
                and not any(h.kind == "environment" and h.container == claim.container for h in holders):
            holders.insert(0, _claim_holder(claim, names, True))
    return GpuUse(gpu, tuple(holders), busy_reasons(gpu, found, gpus, idle))


def _process_holder(process: GpuProcess, record: Optional[ProcessRecord]) -> Holder:
    command = shown_command(record.command) if record is not None and record.command else process.name
    user = record.user or (f"uid {record.uid}" if record.uid is not None else "") if record is not None else ""
    return Holder("process", command or f"pid {process.pid}", user, "", (process.pid,), process.used_mib)


def _container_holder(cid: str, processes: list[GpuProcess], container: Optional[ContainerInspect],
                      names: Mapping[int, str]) -> Holder:
    pids = tuple(p.pid for p in processes)
    known = [p.used_mib for p in processes if p.used_mib is not None]
    used = sum(known) if known else None
    if container is None:       # a container of another engine on this host (containerd, Kubernetes, podman)
        return Holder("container", f"{cid[:12]} (not on this engine)", "", cid[:12], pids, used)
    labels = (container.get("Config") or {}).get("Labels") or {}
    name = str(container.get("Name", "")).lstrip("/")
    if f"{LABEL}.project" in labels:
        owner = labels.get(f"{LABEL}.owner", "")
        claimed = labels.get(f"{LABEL}.gpus", "") not in ("", "all", "none")
        return Holder("environment", labels.get(f"{LABEL}.env", "") or labels[f"{LABEL}.project"],
                      _owner(int(owner) if owner.isdigit() else None, names), name, pids, used, claimed)
    return Holder("container", name, "", name, pids, used)


def _claim_holder(claim: Claim, names: Mapping[int, str], claimed: bool) -> Holder:
    return Holder("environment", claim.env, _owner(claim.owner, names), claim.container, claimed=claimed)


def _names(passwd: dict[int, str], records: Iterable[ProcessRecord]) -> dict[int, str]:
    for record in records:
        if record.uid is not None and record.user:
            passwd.setdefault(record.uid, record.user)
    return passwd


def _owner(uid: Optional[int], names: Mapping[int, str]) -> str:
    if uid is None:
        return ""
    return names.get(uid, f"uid {uid}")


def held_by(use: GpuUse) -> str:
    """One line: who holds this GPU, or why it is not free."""
    if use.holders:
        return "; ".join(h.describe() for h in use.holders)
    return "; ".join(use.busy) if use.busy else "free"
