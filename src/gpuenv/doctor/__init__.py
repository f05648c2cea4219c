"""`gpuenv doctor`: checks of the host -> findings (what is wrong, how it was detected, the exact fix).

    finding.py        Finding, Context and the ordered registry of checks
    engine_checks.py  the engine and its clients
    gpu_checks.py     the driver, the GPUs, the GPU path into containers
    setup_checks.py   container defaults and the network
    smoke.py          the final GPU smoke test in a short-lived container

`doctor --network` has its own checks (network_checks.py, network_probe.py: an HTTP client and the
trust stores, ~15 ms); they load on first use (gpuenv/lazy.py).

Checks are pure functions of the probe's report; the few facts that need I/O of their own (free
ports, the smoke test) are gathered here first. Nothing here prints: the CLI does.
"""

from __future__ import annotations

import difflib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from gpuenv.doctor import engine_checks, gpu_checks, setup_checks  # noqa: F401  (registers the checks)
from gpuenv.doctor.finding import CHECKS, Context, Finding
from gpuenv.doctor.smoke import SmokeResult, run_smoke
from gpuenv.errors import BadInput
from gpuenv.host.probe import HostReport
from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.doctor import network_checks as network_checks
    from gpuenv.doctor import network_probe as network_probe
    from gpuenv.spec.model import EnvSpec

__getattr__, __dir__ = exports(__name__, {"network_checks": "gpuenv.doctor.network_checks",
                                         "network_probe": "gpuenv.doctor.network_probe"})

SMOKE = "gpu-smoke-test"
ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Diagnosis:
    report: HostReport
    findings: tuple[Finding, ...]
    smoke: Optional[SmokeResult]
    skipped: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "host": self.report.to_dict(), "findings": [f.to_dict() for f in self.findings],
                "smoke_test": self.smoke.to_dict() if self.smoke else None, "skipped": list(self.skipped)}


def check_ids() -> list[str]:
    return [c.id for c in CHECKS] + [SMOKE]


def validate_skips(skip: Iterable[str]) -> tuple[str, ...]:
    known = check_ids()
    for item in skip:
        if item not in known:
            near = difflib.get_close_matches(item, known, n=1)
            raise BadInput(f"--skip: there is no doctor check '{item}'",
                           f"did you mean {near[0]}?" if near else "checks: " + ", ".join(known))
    return tuple(skip)


def diagnose(report: HostReport, spec: Optional[EnvSpec] = None, spec_path: Optional[str] = None,
             skip: Iterable[str] = (), smoke: bool = True, smoke_image: Optional[str] = None) -> Diagnosis:
    skipped = validate_skips(skip)
    ctx = Context(report, spec, spec_path, taken_ports(spec) if spec is not None and not report.engine.remote else {})
    findings = [f for c in CHECKS if c.id not in skipped for f in [c.run(ctx)] if f is not None]
    result = None
    if smoke and SMOKE not in skipped and report.engine.ok and report.mode.name != "none":
        result = run_smoke(report, smoke_image)
        finding = smoke_finding(ctx, result)
        if finding:
            findings.append(finding)
    findings.sort(key=lambda f: ORDER[f.severity])
    return Diagnosis(report, tuple(findings), result, skipped)


def smoke_finding(ctx: Context, result: SmokeResult) -> Optional[Finding]:
    if result.ok:
        return None
    if not result.ran:
        return Finding(SMOKE, "warning", f"the GPU smoke test did not run: {result.detail}",
                       "`docker image ls` on the engine; none of the first images has python3",
                       ("gpuenv doctor --smoke-image IMAGE   # any image on the engine with python3",
                        "docker pull python:3.12-slim   # where a registry answers"))
    return Finding(SMOKE, "error", f"a container in '{result.mode}' mode could not use the GPU: {result.detail}",
                   "ran: " + " ".join(result.command[:3]) + " ... " + (result.image or ""),
                   ("gpuenv doctor --json   # the full command and output are under smoke_test",),
                   "the findings above usually say why.", 20)


def taken_ports(spec: EnvSpec) -> dict[int, str]:
    """Ports the spec publishes that cannot be bound on its access.bind address."""
    access = spec.access
    wanted = {m.host: "ports" for m in access.ports}
    for name in ("jupyter", "gateway", "ssh"):
        table = getattr(access, name)
        if table is not None:
            wanted[table.port] = f"access.{name}.port"
    taken = {}
    for port, field_name in wanted.items():
        error = _bind_error(access.bind, port)
        if error:
            taken[port] = f"{field_name}: {error}"
    return taken


def _bind_error(address: str, port: int) -> Optional[str]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as servers do: TIME_WAIT is not "taken"
        try:
            sock.bind((address, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
