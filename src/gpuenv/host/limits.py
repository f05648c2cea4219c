"""The limits of an environment's containers ([run] cpus, memory, pids): the spec's, or defaults from the
size of the engine's host, so that one runaway environment (a DataLoader with too many workers, a leak, a
fork loop) cannot take every core, all the memory or every process slot of a shared server. Pure: the
host's size comes from `docker info` (NCPU, MemTotal: the engine's host, local or remote), the limits a
container got from `docker inspect` (HostConfig), the kills from its cgroup's counters.

Defaults (docs/decisions.md, issue 19: limits):
    cpus      all but one of the host's CPUs when it has more than 2; no limit on 1 or 2
    memory    the host's memory less max(2 GiB, 10%), never below half of it; swap included (no swap on top)
    pids      32768 processes and threads
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional

from gpuenv.errors import ImpossibleRequest
from gpuenv.spec.values import size_bytes

if TYPE_CHECKING:
    from gpuenv.spec.model import Run

GIB = 1024 ** 3
MIB = 1024 ** 2
DEFAULT_PIDS = 32768
JOB_BYTES = 4 * GIB            # a compile job's memory, as build-jobs.sh counts it (MAX_JOBS)
Kind = Literal["cpus", "memory", "pids"]


@dataclass(frozen=True)
class HostSize:
    """The engine's host, as `docker info` tells it: 0 where it does not."""

    cpus: int = 0
    memory: int = 0               # bytes


@dataclass(frozen=True)
class Limits:
    """What a container may use; None is no limit."""

    cpus: Optional[float] = None
    memory: Optional[int] = None  # bytes; swap is limited to the same (no swap on top)
    pids: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory": self.memory, "pids": self.pids}

    def describe(self) -> str:
        """"7 CPUs, 21.5 GiB memory, 32768 processes"; "no limits"."""
        parts = []
        if self.cpus is not None:
            parts.append(f"{self.cpus:g} CPU" + ("" if self.cpus == 1 else "s"))
        if self.memory is not None:
            parts.append(f"{size_text(self.memory)} memory")
        if self.pids is not None:
            parts.append(f"{self.pids} processes")
        return ", ".join(parts) or "no limits"


@dataclass(frozen=True)
class Applied:
    """The limits `up` gives each container, and which of them are the host-derived defaults."""

    limits: Limits
    defaults: tuple[Kind, ...]     # the kinds left at "auto"
    warnings: tuple[str, ...]      # what the user must know (an explicit memory above the host's)

    def describe(self) -> str:
        text = self.limits.describe()
        if self.defaults:
            text += f" ({', '.join(self.defaults)}: defaults from the engine's host)"
        return text


def default_limits(host: HostSize) -> Limits:
    """The defaults for a host of this size; a size the engine did not say gets no limit of that kind."""
    cpus = float(host.cpus - 1) if host.cpus > 2 else None
    memory = None
    if host.memory > 0:
        memory = max(host.memory - max(2 * GIB, host.memory // 10), host.memory // 2) // MIB * MIB
    return Limits(cpus, memory, DEFAULT_PIDS)


def explicit(run: Run) -> Limits:
    """The spec's own limits only ("auto" and "none" are None): what compose.yaml, a file to keep, carries."""
    return Limits(_float(run.cpus), size_bytes(run.memory) if run.memory not in ("auto", "none") else None,
                  run.pids if isinstance(run.pids, int) else None)


def _float(text: str) -> Optional[float]:
    return float(text) if text not in ("auto", "none") else None


def applied(run: Run, host: HostSize) -> Applied:
    """The spec's limits, its "auto" ones from the host's size. More CPUs than the host has is refused
    (docker would refuse it too); more memory than it has is said (the limit then limits nothing)."""
    given, default = explicit(run), default_limits(host)
    autos: tuple[Kind, ...] = tuple(k for k in ("cpus", "memory", "pids") if getattr(run, k) == "auto")
    limits = Limits(*(getattr(default if kind in autos else given, kind) for kind in ("cpus", "memory", "pids")))
    if given.cpus is not None and host.cpus and given.cpus > host.cpus:
        raise ImpossibleRequest(
            f"[run] cpus = {run.cpus} asks for more CPUs than the engine's host has ({host.cpus})",
            hint=f"set [run] cpus to {host.cpus} or fewer, or \"auto\" ({_cpus_text(default.cpus)})")
    warnings = []
    if given.memory is not None and host.memory and given.memory > host.memory:
        warnings.append(f"[run] memory = \"{run.memory}\" is more than the engine's host has "
                        f"({size_text(host.memory)}): it limits nothing there")
    return Applied(limits, autos, tuple(warnings))


def _cpus_text(cpus: Optional[float]) -> str:
    return "no limit on this host" if cpus is None else f"{cpus:g} here"


def docker_args(limits: Limits) -> list[str]:
    """`docker run`'s flags for the limits; memory and memory plus swap alike, so swap does not hide it."""
    args = []
    if limits.cpus is not None:
        args += ["--cpus", f"{limits.cpus:g}"]
    if limits.memory is not None:
        args += ["--memory", f"{limits.memory}b", "--memory-swap", f"{limits.memory}b"]
    if limits.pids is not None:
        args += ["--pids-limit", str(limits.pids)]
    return args


def max_jobs(limits: Limits, host: HostSize) -> int:
    """MAX_JOBS for compiles at run time: the CPUs and, at 4 GiB a job, the memory the container may use
    (the host's where it has no limit); at least 1."""
    cpus = limits.cpus if limits.cpus is not None else host.cpus
    memory = limits.memory if limits.memory is not None else host.memory
    bounds = [int(cpus)] if cpus else []
    bounds += [memory // JOB_BYTES] if memory else []
    return max(1, min(bounds)) if bounds else 1


def from_host_config(config: Any) -> Limits:
    """The limits a container runs with, from its `docker inspect` HostConfig (NanoCpus, Memory,
    PidsLimit); 0, -1 or a missing value is no limit."""
    config = config if isinstance(config, dict) else {}
    nano, memory, pids = (_positive(config.get(key)) for key in ("NanoCpus", "Memory", "PidsLimit"))
    return Limits(round(nano / 1e9, 2) if nano else None, memory, pids)


def _positive(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def oom_kills(text: str) -> Optional[int]:
    """The OOM-kill counter of a cgroup's memory file: cgroup v2 `memory.events` or v1
    `memory.oom_control` (kernel 4.13+), both a line `oom_kill N`; None when the text has none."""
    found = re.search(r"^oom_kill (\d+)$", text, re.M)
    return int(found.group(1)) if found else None


def size_text(count: int) -> str:
    """Bytes as a person reads them: "512 MiB", "21.5 GiB"."""
    if count >= GIB:
        return f"{count / GIB:.1f} GiB".replace(".0 GiB", " GiB")
    return f"{count // MIB} MiB" if count >= MIB else f"{count} B"
