"""`gpuenv doctor`: probe the host, run the checks, print each problem with how it was seen and its fix."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlparse

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import doctor as diagnosis
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.doctor.finding import CHECKS, Finding
from gpuenv.errors import EXIT_FAILURE, BadInput
from gpuenv.host.probe import probe
from gpuenv.spec import SPEC_FILE, load_spec

if TYPE_CHECKING:
    from gpuenv.doctor import Diagnosis
    from gpuenv.doctor.network_checks import NetworkReport
    from gpuenv.spec.model import EnvSpec

MARKS = {"error": "[bold red]✗ error[/]", "warning": "[yellow]! warning[/]", "info": "[cyan]i info[/]"}


@click.command()
@click.option("--skip", "skip", multiple=True, metavar="ID", help="Skip a check (repeatable, or comma-separated).")
@click.option("-f", "--file", "file", type=click.Path(path_type=Path),
              help="Also check this gpuenv.toml's ports and settings (default: ./gpuenv.toml when there is one).")
@click.option("--no-smoke", is_flag=True, help="Do not run the GPU smoke test.")
@click.option("--smoke-image", metavar="IMAGE", help="Run the GPU smoke test in this image (it needs python3).")
@click.option("--probe", "probe_where", type=click.Choice(["auto", "local", "engine"]), default="auto",
              show_default=True, help="Where to look for GPUs: this host, or the engine's host through a "
                                      "container (auto: the engine's when it is remote).")
@click.option("--offline", is_flag=True, help="Do not try Docker Hub, mirrors or the package index.")
@click.option("--network", "network", is_flag=True,
              help="Only the network: try every source the spec uses (pip index, extra indexes, PyTorch wheels, apt "
                   "mirror, registry mirror, Docker Hub, proxy) and say which is slow, blocked or fails TLS.")
@click.option("--list", "list_checks", is_flag=True, help="List the checks and their ids, then exit.")
@global_options
def doctor(skip: tuple[str, ...], file: Optional[Path], no_smoke: bool, smoke_image: Optional[str],
           probe_where: str, offline: bool, network: bool, list_checks: bool, **_: Any) -> Result:
    """Diagnose this host for GPU containers: the engine, the driver and GPUs, the GPU path into
    containers, the network. Each problem comes with how it was detected and the commands that fix it.

    \b
    gpuenv doctor
    gpuenv doctor --skip docker-hub,shm-size --json
    gpuenv doctor --network -f gpuenv.toml
    Exit code 1 when an error was found (warnings and notes leave it 0).
    """
    if list_checks:
        return _checks_result()
    wanted = [s.strip() for item in skip for s in item.split(",") if s.strip()]
    if network:
        return _network(file, wanted, offline)
    skips = diagnosis.validate_skips(wanted)
    spec, spec_file = _spec(file)
    index_host = _index_host(spec)
    report = probe(network=not offline, index_host=index_host,
                   through_engine={"auto": None, "local": False, "engine": True}[probe_where])
    result = diagnosis.diagnose(report, spec, spec_file, skips, smoke=not no_smoke, smoke_image=smoke_image)
    data = result.to_dict()
    return Result(data, lambda console: _show(console, result), 0 if result.ok else EXIT_FAILURE)


def _network(file: Optional[Path], skip: list[str], offline: bool) -> Result:
    if offline:
        raise BadInput("--network tries the network and --offline forbids it", "give one of them")
    for item in skip:
        if item not in diagnosis.network_checks.IDS:
            near = difflib.get_close_matches(item, diagnosis.network_checks.IDS, n=1)
            raise BadInput(f"--skip: there is no network check '{item}'",
                           f"did you mean {near[0]}?" if near else "network checks: " + ", ".join(diagnosis.network_checks.IDS))
    spec, _ = _spec(file)
    found = diagnosis.network_checks.report(diagnosis.network_probe.probe_all(spec), spec, tuple(skip))
    return Result(found.to_dict(), lambda console: _show_network(console, found), 0 if found.ok else EXIT_FAILURE)


_STATE = {"ok": ("ok", "green"), "slow": ("slow", "yellow"), "blocked": ("blocked", "red"),
          "tls": ("TLS failure", "red"), "http": ("HTTP error", "red")}


def _show_network(console: Console, found: NetworkReport) -> None:
    for a in found.answers:
        took = f"{a.seconds:.2f} s" if a.seconds is not None else a.detail
        via = f" via {a.proxy}" if a.proxy else ""
        word, color = _STATE[a.status]
        console.print(f"[{color}]{word:<12}[/]{a.source.id:<17}{escape(a.source.url)}{escape(via)}  "
                      f"[dim]{escape(took)}; {escape(a.source.setting)}[/]", soft_wrap=True)
    if not found.findings:
        console.print("\n[green]every source answers[/]")
    for finding in found.findings:
        _show_finding(console, finding)


def _spec(file: Optional[Path]) -> tuple[Optional[EnvSpec], Optional[str]]:
    if file is None and not Path(SPEC_FILE).is_file():
        return None, None
    path = file if file is not None else Path(SPEC_FILE)
    if path.is_dir():
        path = path / SPEC_FILE
    return load_spec(path), str(path)


def _index_host(spec: Optional[EnvSpec]) -> str:
    index = spec.network.pip_index if spec is not None else None
    return urlparse(str(index)).hostname or "pypi.org" if index else "pypi.org"


def _checks_result() -> Result:
    rows = [{"id": c.id, "title": c.title} for c in CHECKS] + [
        {"id": diagnosis.SMOKE, "title": "a container uses every GPU in the best mode found"}]

    def show(console: Console) -> None:
        for row in rows:
            console.print(f"{row['id']:<22}{escape(row['title'])}")

    return Result({"checks": rows}, show)


def _show(console: Console, result: Diagnosis) -> None:
    report = result.report
    engine, driver = report.engine, report.driver
    if engine.ok:
        where = f"remote, {engine.endpoint}" if engine.remote else engine.endpoint or "local"
        console.print(f"[bold]engine[/]   ok: Docker {escape(engine.version)} (API {escape(engine.api_version)}, "
                      f"{escape(where)}), {escape(engine.storage_driver)}, cgroup v{escape(engine.cgroup_version)} "
                      f"{escape(engine.cgroup_driver)}" + (", rootless" if engine.rootless else ""))
        build = report.engine.buildkit
        console.print("[bold]build[/]    " + (f"BuildKit through {escape(build.client)} ({build.how})" if build
                                             else "no client builds with BuildKit"))
    else:
        console.print(f"[bold]engine[/]   {escape(engine.status.replace('-', ' '))}")
    if driver.ok:
        console.print(f"[bold]driver[/]   {escape(driver.version or '')} (CUDA {escape(driver.cuda or '?')}, "
                      f"via {driver.source}), seen on {escape(report.observed)}")
        for gpu in driver.gpus:
            used = f", {gpu.memory_used_mib}/{gpu.memory_total_mib} MiB used" if gpu.memory_total_mib else ""
            busy = f", {len(gpu.processes)} process(es)" if gpu.processes else ""
            console.print(f"[bold]gpu {gpu.index}[/]    {escape(gpu.name)}, compute capability "
                          f"{escape(gpu.cc or '?')}{used}{busy}")
    else:
        console.print(f"[bold]driver[/]   none ({escape(driver.error or 'no answer')})")
    mode = report.mode
    console.print(f"[bold]gpu mode[/] {mode.name}: {escape(mode.why)}")
    if result.smoke is not None:
        state = "[green]passed[/]" if result.smoke.ok else "[red]failed[/]" if result.smoke.ran else "not run"
        console.print(f"[bold]smoke[/]    {state}: {escape(result.smoke.detail)}")
    if not result.findings:
        console.print("\n[green]no problems found[/]")
    for finding in result.findings:
        _show_finding(console, finding)
    errors = sum(f.severity == "error" for f in result.findings)
    if result.findings:
        console.print(f"\n{errors} error(s), {len(result.findings) - errors} warning(s)/note(s). "
                      "Skip a check with --skip ID.")


def _show_finding(console: Console, finding: Finding) -> None:
    console.print(f"\n{MARKS[finding.severity]} [bold]{finding.check}[/]: {escape(finding.problem)}")
    console.print(f"  [dim]detected:[/] {escape(finding.detected)}")
    if finding.fix:
        console.print("  [dim]fix:[/]")
        for command in finding.fix:
            console.print(f"    {escape(command)}", soft_wrap=True)
    if finding.note:
        console.print(f"  [dim]note:[/] {escape(finding.note)}")
    if finding.failure_mode:
        console.print(f"  [dim]failure mode #{finding.failure_mode} in the research catalogue[/]")
