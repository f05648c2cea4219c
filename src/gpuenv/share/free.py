"""Which GPUs are free, and choosing `count` of them (`[gpu] devices = "free"`). Pure: GPU facts (the
driver's, live or recorded) and the environments' claims in, a choice or the reasons out.

A GPU is free when
  - no alive gpuenv environment claims it (claims.py: named GPUs; "all" claims none in particular),
  - no compute process runs on it (a graphics-only process, such as Xorg, does not make it busy: its
    memory counts below),
  - its memory in use is below `Idle.memory_mib` and its utilization below `Idle.utilization_pct`
    (processes nvidia-smi cannot list, such as another PID namespace's on some drivers, still show there),
  - and it is not in MIG mode (its MIG devices are given by UUID with `--gpus`).
Free GPUs are taken in index order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from gpuenv.host.nvidia import Gpu
from gpuenv.share.claims import Claim

IDLE_MEMORY_MIB = 1024        # below this much memory in use, a GPU with no compute process is idle
IDLE_UTILIZATION_PCT = 10     # and below this utilization


@dataclass(frozen=True)
class Idle:
    """The thresholds under which a GPU counts as idle ([gpu] idle_memory_mib, idle_utilization)."""

    memory_mib: int = IDLE_MEMORY_MIB
    utilization_pct: int = IDLE_UTILIZATION_PCT


@dataclass(frozen=True)
class Busy:
    gpu: Gpu
    reasons: tuple[str, ...]        # why it is not free, each a short phrase


@dataclass(frozen=True)
class Selection:
    chosen: tuple[Gpu, ...]         # the GPUs taken; () when fewer than asked are free
    free: tuple[Gpu, ...]           # every free GPU
    busy: tuple[Busy, ...]          # every other GPU, with why

    def uuids(self) -> tuple[str, ...]:
        return tuple(g.uuid for g in self.chosen)


def busy_reasons(gpu: Gpu, claims: Sequence[Claim], gpus: Sequence[Gpu], idle: Idle) -> tuple[str, ...]:
    """Why `gpu` is not free (empty: it is)."""
    reasons = [f"claimed by environment {c.env} ({c.container})" for c in claims
               if not c.everything and gpu.uuid in c.uuids(gpus)]
    compute = [p for p in gpu.processes if "C" in p.kind or not p.kind]
    if compute:
        reasons.append(f"{len(compute)} compute process{'es' if len(compute) > 1 else ''} "
                       f"(pid {', '.join(str(p.pid) for p in compute[:4])}{', ...' if len(compute) > 4 else ''})")
    if gpu.memory_used_mib is not None and gpu.memory_used_mib >= idle.memory_mib:
        reasons.append(f"{gpu.memory_used_mib} MiB of memory in use (idle: below {idle.memory_mib} MiB)")
    if gpu.utilization_pct is not None and gpu.utilization_pct >= idle.utilization_pct:
        reasons.append(f"{gpu.utilization_pct}% utilization (idle: below {idle.utilization_pct}%)")
    if gpu.mig:
        reasons.append("MIG mode is on (give its MIG devices by UUID with --gpus)")
    return tuple(reasons)


def select(gpus: Sequence[Gpu], claims: Sequence[Claim], count: int, idle: Idle = Idle()) -> Selection:
    """`count` free GPUs in index order, or none when fewer are free."""
    free: list[Gpu] = []
    busy: list[Busy] = []
    for gpu in sorted(gpus, key=lambda g: g.index):
        reasons = busy_reasons(gpu, claims, gpus, idle)
        if reasons:
            busy.append(Busy(gpu, reasons))
        else:
            free.append(gpu)
    chosen = tuple(free[:count]) if len(free) >= count else ()
    return Selection(chosen, tuple(free), tuple(busy))
