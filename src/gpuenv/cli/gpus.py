"""`gpuenv gpus`: every GPU of the engine's host, and who holds it (share/holders.py)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.host.engine import probe_engine
from gpuenv.run.docker import Docker
from gpuenv.share.holders import GpuUse, Survey, held_by
from gpuenv.share.look import look


@click.command()
@global_options
def gpus(**_: Any) -> Result:
    """Every GPU of the engine's host, and who holds it.

    \b
    Index, UUID, model, memory used / total, utilization; for each GPU the gpuenv environments on it
    (name, owner, container), other containers by name, processes outside containers by user and
    command. FREE: what `gpu.devices = "free"` would take. A host without GPUs says so (exit 0).
    """
    engine = probe_engine(compose=False)
    found = look(engine, Docker.connect(engine))
    return Result(found.to_dict(), lambda c: show(c, found))


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
