"""`gpuenv gpus`: every GPU of the engine's host, and who holds it (share/holders.py)."""

from __future__ import annotations

from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.errors import BadInput, EngineError
from gpuenv.host.engine import clients_on_path, probe_engine
from gpuenv.run import hosts
from gpuenv.run.docker import Docker
from gpuenv.run.hosts import HostAnswer, each_host
from gpuenv.share.holders import GpuUse, Survey, held_by
from gpuenv.share.look import look, look_at


@click.command()
@click.option("--hosts", "host_names", metavar="CTX,CTX", help="Ask these docker contexts' engines (servers): "
              "which server has a free GPU now.")
@click.option("--all-hosts", is_flag=True, help="Ask the engine of every docker context (`docker context ls`).")
@global_options
def gpus(host_names: Optional[str], all_hosts: bool, **_: Any) -> Result:
    """Every GPU of the engine's host, and who holds it.

    \b
    Index, UUID, model, memory used / total, utilization; for each GPU the gpuenv environments on it
    (name, owner, container), other containers by name, processes outside containers by user and
    command. FREE: what `gpu.devices = "free"` would take. A host without GPUs says so (exit 0).
    With --hosts or --all-hosts, every server asked in parallel; one that does not answer is a line.
    """
    if host_names is not None or all_hosts:
        return _on_hosts([n.strip() for n in (host_names or "").split(",") if n.strip()], all_hosts)
    engine = probe_engine(compose=False)
    found = look(engine, Docker.connect(engine))
    return Result(found.to_dict(), lambda c: show(c, found))


def _on_hosts(names: list[str], every: bool) -> Result:
    """`gpus` over docker contexts: {"hosts": [{host, endpoint, error (no answer), survey (what a host's
    `gpus --json` says, null without an answer)}]}; exit 0 while one answers."""
    if not names and not every:
        raise BadInput("--hosts names no docker context", "gpuenv gpus --hosts gpu1,gpu2 (`docker context ls` "
                       "lists them), or gpuenv gpus --all-hosts")
    client = next(iter(clients_on_path()), "docker")
    answers = each_host(client, hosts.chosen(client, names, every), look_at, timeout=90)
    data = {"hosts": [{"host": a.host.name, "endpoint": a.host.endpoint, "error": a.error or None,
                       "survey": a.value.to_dict() if a.value is not None else None} for a in answers]}
    if answers and not any(a.ok for a in answers):
        raise EngineError("no docker context's engine answered: " + "; ".join(f"{a.host.name}: {a.error}"
                                                                               for a in answers),
                          "check each with `docker --context NAME info`")
    return Result(data, lambda c: _show_hosts(c, answers))


def _show_hosts(console: Console, answers: list[HostAnswer[Survey]]) -> None:
    for a in answers:
        console.print(f"[bold]{escape(a.host.name)}[/bold] ({escape(a.host.endpoint)})")
        if a.value is None:
            console.print(f"  [red]no answer[/red]: {escape(a.error)}", soft_wrap=True)
            continue
        show(console, a.value)
        console.print()


def show(console: Console, found: Survey) -> None:
    if found.error:
        console.print(f"no GPU on {escape(found.where)}: {escape(found.error)}")
        return
    table = Table(box=None, header_style="bold")
    for column in ("GPU", "UUID", "MODEL", "MEMORY", "UTIL", "FREE", "HELD BY"):
        table.add_column(column)
    for use in found.gpus:
        table.add_row(*(escape(cell) for cell in _row(use)))
    console.print(table)
    for holder in found.sharing:
        console.print(f"sees every GPU: {escape(holder.describe())}")
    console.print(f"[dim]seen on {escape(found.where)}[/dim]")


def _row(use: GpuUse) -> list[str]:
    g = use.gpu
    memory = f"{_mib(g.memory_used_mib)} / {_mib(g.memory_total_mib)} MiB"
    util = f"{g.utilization_pct}%" if g.utilization_pct is not None else "?"
    return [str(g.index), g.uuid, g.name, memory, util, "yes" if use.free else "no", held_by(use)]


def _mib(value: Any) -> str:
    return "?" if value is None else str(value)
