"""`gpuenv kb refresh`: re-read the framework releases from the package index into the "pypi" table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv.cli.main import VerbGroup, global_options
from gpuenv.cli.output import Result
from gpuenv.kb.index import network_settings
from gpuenv.kb.refresh import refresh as run_refresh
from gpuenv.spec import SPEC_FILE, load_spec, spec_path


@click.group(cls=VerbGroup)
def kb() -> None:
    """The knowledge base gpuenv resolves from."""


@kb.command()
@click.option("--index", metavar="URL", help="The simple index to read (default: network.pip_index of the spec, "
              "else PIP_INDEX_URL, else https://pypi.org/simple).")
@click.option("-f", "--file", "file", type=click.Path(path_type=Path),
              help="The spec whose [network] settings to use (default: ./gpuenv.toml when there is one).")
@click.option("-o", "--out", type=click.Path(path_type=Path),
              help="Where to write the table (default: the user's data folder, which gpuenv then reads).")
@click.option("--project", "projects", multiple=True, metavar="NAME",
              help="Read only this project (repeatable); the other projects' rows are kept.")
@global_options
def refresh(index: Optional[str], file: Optional[Path], out: Optional[Path], projects: tuple[str, ...],
            **_: Any) -> Result:
    """Read the framework projects from the package index into the "pypi" table.

    \b
    One row per release with a Linux x86_64 or pure wheel: its Pythons, Requires-Python, and for
    torch >= 1.13 (and tensorflow[and-cuda] >= 2.14) the CUDA and cuDNN its wheels pin.
    Proxies, CAs and trusted plain-http hosts come from the spec's [network] table, else from the
    environment (HTTPS_PROXY, NO_PROXY, PIP_CERT, ...). A failed refresh leaves the old table.
    """
    spec = None
    base_dir = None
    if file is not None or Path(SPEC_FILE).is_file():
        path = spec_path(file)
        spec, base_dir = load_spec(path), path.parent
    net = network_settings(spec.network if spec is not None else None, index=index, base_dir=base_dir,
                           env=os.environ)
    report = run_refresh(net, out=out, projects=projects or None)
    data = report.to_dict()
    return Result(data, lambda console: _show(console, data))


def _show(console: Console, data: dict[str, Any]) -> None:
    read = data["read"]
    console.print(f"[green]ok:[/green] wrote {data['rows']} releases to {escape(data['file'])}")
    console.print(f"  index:     {escape(data['index'])} ({data['index_origin']})", markup=True)
    pages = f"{read['pages_json']} JSON, {read['pages_html']} HTML" if read["pages_html"] else "JSON"
    console.print(f"  projects:  {len(data['projects'])} read ({pages}): {', '.join(data['projects'])}", markup=False)
    if data["missing"]:
        console.print(f"  not there: {', '.join(data['missing'])}", markup=False)
    if data["kept"]:
        kept = data["kept"]
        names = ", ".join(kept) if len(kept) <= 5 else f"{', '.join(kept[:5])} and {len(kept) - 5} more"
        console.print(f"  kept:      {names} (rows from the table before)", markup=False)
    metadata = read["metadata_pep658"] + read["metadata_range"]
    console.print(f"  pins:      {data['pinned']} releases with cuda/cudnn, from {metadata} wheel METADATA files "
                  f"({read['metadata_pep658']} by PEP 658, {read['metadata_range']} by range requests)", markup=False)
    console.print(f"  snapshot:  {data['retrieved']}", markup=False)
    for warning in data["warnings"]:
        console.print("[yellow]warning:[/yellow] ", end="")
        console.print(warning, markup=False)
