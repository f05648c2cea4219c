"""What a doctor check returns, and the ordered registry of checks.

A check is a function of the `Context` (the host report, the spec, what ports are free) that returns
a `Finding` when something is wrong, else None. Ids are stable kebab-case names users can skip.
Checks never print and never run commands: the runner gathers facts first (doctor/__init__.py).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from gpuenv.host.probe import HostReport

if TYPE_CHECKING:
    from gpuenv.spec.model import EnvSpec

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    check: str                          # the check's id
    severity: str                       # error (gpuenv or GPU containers will fail), warning, info
    problem: str                        # what is wrong
    detected: str                       # how gpuenv saw it
    fix: tuple[str, ...] = ()           # commands for the detected distribution, in order
    note: str = ""                      # why it matters, or what else would do
    failure_mode: Optional[int] = None  # the row of research/failure-modes.md

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    report: HostReport
    spec: Optional[EnvSpec] = None      # when one was given or found
    spec_path: Optional[str] = None
    taken_ports: dict[int, str] = field(default_factory=dict)    # port -> who said it is taken
    root: bool = field(default_factory=lambda: os.geteuid() == 0)

    @property
    def family(self) -> str:
        return self.report.system.distro.family

    def sudo(self, command: str) -> str:
        return command if self.root else f"sudo {command}"

    def by_family(self, debian: Sequence[str], rhel: Sequence[str]) -> tuple[str, ...]:
        """The commands for this distribution; both sets, labelled, when it is neither family."""
        if self.family == "debian":
            return tuple(debian)
        if self.family == "rhel":
            return tuple(rhel)
        return ("# on Debian or Ubuntu:", *debian, "# on RHEL, Rocky, Alma, CentOS or Fedora:", *rhel)

    @property
    def gpu_host(self) -> bool:
        """A host that has, or should have, NVIDIA GPUs."""
        return self.report.driver.ok or bool(self.report.system.nvidia_pci) or self.report.kernel_module is not None


Check = Callable[[Context], Optional[Finding]]


@dataclass(frozen=True)
class Registered:
    id: str
    title: str
    run: Check


CHECKS: list[Registered] = []


def check(check_id: str, title: str) -> Callable[[Check], Check]:
    """Register a check; the order of registration is the order of the report."""
    def register(fn: Check) -> Check:
        if any(c.id == check_id for c in CHECKS):
            raise ValueError(f"duplicate doctor check id {check_id}")
        CHECKS.append(Registered(check_id, title, fn))
        return fn
    return register
