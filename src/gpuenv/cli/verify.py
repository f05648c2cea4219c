"""`gpuenv verify [ENV]`: inside the running environment, each framework imports, sees every GPU the
host gave it, computes on each GPU and on the CPU, and each GPU's compute capability is covered by the
build. Exit 1 with the likely cause (research/failure-modes.md rows) when something fails."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.cli.common import engine
from gpuenv.host.user import ids
from gpuenv.run.envs import find
from gpuenv.run.verify import table

if TYPE_CHECKING:
    from gpuenv.run.envs import Env
    from gpuenv.run.verify import Verdict


@click.command()
@click.argument("env", required=False)
@global_options
def verify(env: Optional[str], **_: Any) -> Result:
    """Check the GPU and the frameworks inside a running environment.

    \b
    gpuenv verify                  this folder's environment (or your only one)
    gpuenv verify vision --json
    """
    report, docker = engine()
    found = find(docker, env, ids("host")[0], Path.cwd())
    verdict, data = environment.verify(docker, found, report)
    return Result(data, lambda c: _show(c, found, verdict), 0 if verdict.ok else 1)


def _show(console: Console, found: Env, verdict: Verdict) -> None:
    console.print(f"[bold]{escape(found.name)}[/bold] ({escape(found.image)})")
    console.print(table(verdict))
    if verdict.cpu_only:
        console.print("no GPU: checked the CPU path")
    for cause in verdict.causes:
        console.print(f"[bold red]likely cause[/bold red] (failure-modes row {cause.row}): {escape(cause.title)}")
        console.print(f"  fix: {escape(cause.fix)}")
    console.print("[bold green]verified[/bold green]" if verdict.ok else "[bold red]verification failed[/bold red]")
