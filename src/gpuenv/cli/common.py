"""What several verbs share: the engine they connect to, the warnings about a spec that opens the host
wider, and how the ways into an environment are shown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from gpuenv.host.addresses import reachable
from gpuenv.host.probe import HostReport, probe
from gpuenv.run.docker import Docker
from gpuenv.run.exposure import warnings
from gpuenv.run.reach import Access

if TYPE_CHECKING:
    from gpuenv.environment import Prepared, Say


def engine() -> tuple[HostReport, Docker]:
    """This host, probed without the network, and the docker client (EngineError when unusable)."""
    report = probe(network=False, compose=False)
    return report, Docker.connect(report.engine)


def warn(prepared: Prepared, say: Say) -> None:
    """What in the spec opens the host or the environment wider than the defaults (run/exposure.py)."""
    for text in warnings(prepared.spec, prepared.rendered.recipe.inputs.uid, reachable()):
        say(f"warning: {text}")


def show_access(console: Console, access: Access) -> None:
    """The ways in (run/reach.py's `reach`): Jupyter's URL, Hydrogen's gateway settings, ssh."""
    if "jupyter_url" in access:
        console.print(f"[bold]jupyter[/bold]  {escape(access['jupyter_url'])}")
    if "hydrogen_gateways" in access:
        console.print("[bold]hydrogen[/bold] paste into Hydrogen's settings, \"Kernel Gateways\":")
        console.print(escape(json.dumps(access["hydrogen_gateways"], indent=2)), soft_wrap=True)
    if "ssh_command" in access:
        console.print(f"[bold]ssh[/bold]      {escape(access['ssh_command'])}")
        console.print("[bold]~/.ssh/config[/bold] entry (for an IDE's remote interpreter):")
        console.print(escape(access["ssh_config"]), end="", soft_wrap=True)
