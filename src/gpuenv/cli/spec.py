"""`gpuenv spec check [FILE]`: validate a spec and print it normalized."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from gpuenv.cli.main import VerbGroup, global_options
from gpuenv.cli.output import Result
from gpuenv.kb.mirrors import report, report_lines
from gpuenv.spec import load_spec, spec_path
from gpuenv.spec.write import spec_data, to_toml


@click.group(cls=VerbGroup)
def spec() -> None:
    """Check and show environment specs (gpuenv.toml)."""


@spec.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@global_options
def check(file: Optional[Path], **_: Any) -> Result:
    """Validate FILE (default ./gpuenv.toml; a folder means its gpuenv.toml) and print it normalized.

    Every problem is listed at once with its line and a valid example; exit code 2 when any.
    """
    path = spec_path(file)
    spec = load_spec(path)
    data, preset = spec_data(spec, full=True), report(spec.network)
    result = {"file": str(path), "spec": data} | ({"network_preset": preset} if preset else {})
    return Result(result, lambda console: _show(console, path, data, preset))


def _show(console: Console, path: Path, data: dict[str, Any], preset: dict[str, Any]) -> None:
    console.print(f"[green]ok:[/green] {escape(str(path))} is a valid spec; normalized, with defaults:")
    for line in report_lines(preset):
        console.print(f"# {line}", markup=False)
    text = to_toml(data)
    if console.is_terminal:
        console.print(Syntax(text, "toml", theme="ansi_dark", background_color="default"))
    else:
        console.print(text, markup=False, end="")
