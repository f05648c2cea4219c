"""The GPUs an environment gets at `up`: the spec's `devices`, or `--gpus`; with "free", `count` GPUs
that no one holds, taken through the engine (arbiter.py) and pinned by UUID. An environment that holds
free GPUs already (its containers alive) keeps them on the next `up`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from gpuenv.errors import ImpossibleRequest
from gpuenv.host.access import Devices
from gpuenv.host.nvidia import Gpu
from gpuenv.host.probe import HostReport
from gpuenv.run.docker import ContainerInspect, Docker
from gpuenv.share import look
from gpuenv.share.arbiter import Create, Won, claim
from gpuenv.share.claims import Claim, claims
from gpuenv.share.free import Idle, busy_reasons, select
from gpuenv.share.holders import held_by, survey


@dataclass(frozen=True)
class Wanted:
    devices: Devices        # what the containers get; with `choosing`, the GPUs held before, or "all" for now
    choosing: bool          # "free", and none held yet: take them when the main container is created
    count: int = 1
    idle: Idle = Idle()


def wanted(devices: Devices, count: Optional[int], idle: Idle, old: Sequence[ContainerInspect],
           gpus: Sequence[Gpu], gpu_wanted: bool) -> Wanted:
    """What `up` gives: `devices` as they are; "free" as the UUIDs the environment's alive containers hold
    already (the same number, all still on this host), else to be chosen."""
    if devices != "free" or not gpu_wanted:
        return Wanted(devices, False)
    number = count or 1
    held = claims(old)
    uuids = {g.uuid for g in gpus}
    if held and not held[0].everything and len(held[0].gpus) == number and set(held[0].gpus) <= uuids:
        return Wanted(list(held[0].gpus), False, number, idle)
    return Wanted("all", True, number, idle)


def take(docker: Docker, project: str, report: HostReport, want: Wanted, create: Create) -> Won:
    """Take `want.count` free GPUs for `project`, `create` making its main container with them (arbiter.py);
    ImpossibleRequest naming who holds what when too few are free."""
    gpus = report.driver.gpus

    def choose(others: Sequence[Claim]) -> tuple[str, ...]:
        picked = select(gpus, others, want.count, want.idle)
        if not picked.chosen:
            raise refusal(docker, report, want, len(picked.free))
        return picked.uuids()
    return claim(docker, project, gpus, choose, create)


def refusal(docker: Docker, report: HostReport, want: Wanted, free: int) -> ImpossibleRequest:
    """No `count` free GPUs: every GPU, with who holds it (share/holders.py)."""
    if not report.driver.ok or not report.driver.gpus:
        return ImpossibleRequest(f'devices = "free" needs a GPU, and {report.observed} has none: '
                                 f"{report.driver.error or 'no GPU'}", code="no-free-gpu",
                                 hint='use devices = "none" (CPU only), or run on a host with GPUs')
    found = survey(report.driver, look.holder_observations(report.engine), look.every_container(docker), want.idle)
    causes = [f"GPU {u.gpu.index} ({u.gpu.name}, {u.gpu.uuid}): {held_by(u)}" for u in found.gpus]
    asked = f"{want.count} free GPU{'s' if want.count > 1 else ''}"
    return ImpossibleRequest(f"no {asked} on {report.observed}: {free} of {len(report.driver.gpus)} "
                             f"{'is' if free == 1 else 'are'} free", causes=causes, code="no-free-gpu",
                             alternatives=["gpuenv up --gpus 0,1 (indexes or UUIDs: your choice, shared)",
                                           "wait until a GPU is free (gpuenv gpus shows who holds which)"],
                             hint="gpuenv gpus shows who holds which GPU; gpuenv up --gpus INDEX,... takes GPUs "
                                  "by hand (shared with whoever uses them)")


def taken(gpus: Sequence[Gpu], won: Won) -> str:
    """What `up` says about the GPUs it took."""
    names = [f"{g.index} ({g.name}, {g.uuid})" for u in won.uuids for g in gpus if g.uuid == u]
    return f"took free GPU{'s' if len(names) > 1 else ''} {', '.join(names)}"


def warnings(devices: Devices, gpus: Sequence[Gpu], others: Sequence[Claim], idle: Idle) -> list[str]:
    """GPUs given by hand (`--gpus`, a list in the spec) that someone else holds or uses."""
    if not isinstance(devices, list) and not isinstance(devices, tuple):
        return []
    named = {str(d) for d in devices}
    found = []
    for gpu in gpus:
        if named & {str(gpu.index), gpu.uuid}:
            reasons = busy_reasons(gpu, others, gpus, idle)
            if reasons:
                found.append(f"GPU {gpu.index} is not free: {'; '.join(reasons)}")
    return found
