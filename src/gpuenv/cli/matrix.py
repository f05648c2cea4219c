"""`gpuenv matrix`: which versions of a framework run on a machine, newest first, with their CUDA, cuDNN
and Python."""

from __future__ import annotations

from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpuenv import planning
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.cli.plan import python_version, target_options
from gpuenv.resolve.matrix import rows_for


@click.command()
@click.argument("framework")
@target_options
@click.option("--python", "python", metavar="X.Y", help="Only versions with wheels for this Python.")
@click.option("--all", "show_all", is_flag=True, help="List every CUDA variant, not only the best per version.")
@global_options
def matrix(framework: str, driver: Optional[str], gpu_names: tuple[str, ...], gpu_ccs: tuple[str, ...],
           python: Optional[str], show_all: bool, **_: Any) -> Result:
    """Which versions of FRAMEWORK run on a machine, newest first, with their CUDA, cuDNN and Python.

    \b
    gpuenv matrix tensorflow --driver 384.90
    gpuenv matrix torch --gpu-name "Tesla K80"
    """
    python = python_version(python)
    target = planning.target_for(planning.TargetFlags(driver, gpu_names, gpu_ccs))
    rows = rows_for(framework, target, python, show_all)
    data = {"framework": framework, "target": {"driver": target.driver, "origin": target.origin,
            "gpus": [{"name": g.name, "cc": g.cc} for g in target.gpus]}, "versions": rows}
    return Result(data, lambda console: _show_matrix(console, data))


def _show_matrix(console: Console, data: dict[str, Any]) -> None:
    target = data["target"]
    gpus = ", ".join(g["name"] for g in target["gpus"]) or "any GPU"
    console.print(f"{escape(data['framework'])} on driver {target['driver'] or 'any'}, {escape(gpus)}:")
    table = Table(box=None, pad_edge=False)
    for column in ("version", "install", "cuda", "cudnn", "python", "min driver", "cuda from"):
        table.add_column(column, overflow="fold", no_wrap=column != "install")
    for row in data["versions"]:
        table.add_row(row["version"], escape(row["requirement"]), row["cuda"] or "-", row["cudnn"] or "-",
                      row["python"], row["min_driver"] or "-", row["cuda_source"])
    console.print(table)
    if not data["versions"]:
        console.print("no version runs there")
