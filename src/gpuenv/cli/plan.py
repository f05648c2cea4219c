"""`gpuenv plan`: a request (words, or a gpuenv.toml) to a plan for a target, with its reasons."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click
from rich.console import Console
from rich.markup import escape

import gpuenv.kb as kb             # the face: kb.mirrors loads for a spec with a network preset
import gpuenv.spec as specs          # the face: its model (pydantic) loads when a gpuenv.toml is read
from gpuenv import planning
from gpuenv.cli.main import F, global_options
from gpuenv.cli.output import Result
from gpuenv.errors import BadInput

if TYPE_CHECKING:
    from gpuenv.resolve import Request
    from gpuenv.spec.model import EnvSpec


def target_options(fn: F) -> F:
    fn = click.option("--gpu", "gpu_ccs", multiple=True, metavar="CC",
                      help="Plan for a GPU of this compute capability (7.0); repeatable.")(fn)
    fn = click.option("--gpu-name", "gpu_names", multiple=True, metavar="NAME",
                      help="Plan for this GPU model (\"Tesla V100\", \"RTX 3090\"); repeatable.")(fn)
    return click.option("--driver", metavar="VER",
                        help="Plan for this NVIDIA driver (384.90) instead of this host's.")(fn)


def python_version(value: Optional[str]) -> Optional[str]:
    if value is not None and not re.fullmatch(r"[23](\.\d{1,2})?", value):
        raise BadInput(f"--python: '{value}' is not a Python version", "write it as 3.6, 3.10 or 3")
    return value


@click.command()
@click.argument("requirements", nargs=-1, metavar="[REQUIREMENT...]")
@click.option("-f", "--file", "file", type=click.Path(path_type=Path),
              help="Plan for this gpuenv.toml (default ./gpuenv.toml when no REQUIREMENT is given).")
@target_options
@click.option("--python", "python", metavar="X.Y", help="Plan for this Python.")
@click.option("--cuda", metavar="X.Y", help="Plan for this CUDA version (the request word cu90 is --cuda 9.0).")
@click.option("--cpu", is_flag=True, help="Plan without a GPU: CPU builds, no CUDA, no driver.")
@click.option("--offline", is_flag=True,
              help="Plan from the knowledge base alone: no package index is asked (also GPUENV_OFFLINE=1).")
@global_options
def plan(requirements: tuple[str, ...], file: Optional[Path], driver: Optional[str], gpu_names: tuple[str, ...],
         gpu_ccs: tuple[str, ...], python: Optional[str], cuda: Optional[str], cpu: bool, offline: bool,
         **_: Any) -> Result:
    """Resolve frameworks to Python, CUDA, cuDNN, base image, packages and minimum driver.

    \b
    gpuenv plan tensorflow==1.2.1
    gpuenv plan torch torchvision --driver 470.82.01 --gpu-name "Tesla V100"
    gpuenv plan --file examples/mxnet-cu90/gpuenv.toml --json
    Exit code 3, with the reason and what would work instead, when nothing fits.
    """
    python = python_version(python)
    flags = planning.TargetFlags(driver, gpu_names, gpu_ccs)
    spec: Optional[EnvSpec] = None
    if file is not None or not requirements:
        request, spec = planning.request_from_spec(specs.spec_path(file), python)
        if requirements:
            raise BadInput("give either REQUIREMENTs or --file, not both", "put the requirements in the spec")
    else:
        request = planning.request_from_words(list(requirements), python)
    spec_dir = specs.spec_path(file).parent.resolve() if spec is not None else None
    request = _with_flags(request, cuda, cpu)
    result = planning.plan_whole(request, planning.target_for(flags, spec), spec, spec_dir, offline)
    data = result.to_dict()
    if spec is not None and spec.network.preset:
        data["network_preset"] = kb.mirrors.report(spec.network)
    return Result(data, lambda console: _show_plan(console, data))


def _with_flags(request: Request, cuda: Optional[str], cpu: bool) -> Request:
    """The request with --cuda and --cpu, which say what the words cu90 and cpu say (refused when both
    say it differently)."""
    if cuda is not None and not re.fullmatch(r"\d{1,2}(\.\d)?", cuda):
        raise BadInput(f"--cuda: '{cuda}' is not a CUDA version", "write it as 9.0, 12.1 or 12")
    if cuda is not None and request.cuda not in (None, cuda):
        raise BadInput(f"--cuda {cuda} and the request's CUDA {request.cuda} differ", "give it once")
    return replace(request, cuda=cuda or request.cuda, cpu=request.cpu or cpu)


def _show_plan(console: Console, data: dict[str, Any]) -> None:
    def line(key: str, value: object) -> None:
        console.print(f"[bold]{key:<12}[/bold]{escape(str(value))}")

    line("python", data["python"])
    line("cuda", f"{data['cuda'] or 'none'} ({data['cuda_source']})")
    line("cudnn", data["cudnn"] or "none")
    line("base", data["base_image"] + (f"  [{data['base']['build']}]" if data["base"]["build"] else ""))
    line("min driver", data["min_driver"] or "none")
    line("packages", " ".join(data["packages"]) or ("(no framework: CUDA alone)" if data["cuda"]
                                                   else "(no framework: a CPU-only environment)"))
    if data.get("user_packages"):
        resolved = (data.get("resolved") or {}).get("status") == "resolved"
        line("also", " ".join(data["user_packages"]) + ("" if resolved else "   (installed as written)"))
    _show_resolved(console, data.get("resolved"))
    if data["pip_options"]:
        line("pip options", " ".join(data["pip_options"]))
    if data["gpu_archs"]:
        line("gpu archs", " ".join(data["gpu_archs"]))
    console.print("[bold]why[/bold]")
    for reason in data["reasons"]:
        console.print(f"  - {escape(reason)}")
    if data.get("network_preset"):
        for text in kb.mirrors.report_lines(data["network_preset"]):
            console.print(escape(text))


def _show_resolved(console: Console, resolved: Optional[dict[str, Any]]) -> None:
    """One line: how many distributions the resolver pinned, or why the packages were not resolved."""
    if not resolved:
        return
    if resolved["status"] != "resolved":
        console.print(f"[bold]{'resolved':<12}[/bold]no: {escape(resolved['why'])}")
        return
    pins = [p for s in resolved["steps"] for p in s["packages"]]
    steps = {s["id"] for s in resolved["steps"]}
    shown = ", ".join(f"{p['name']} {p['version']}" for p in pins if steps & set(p["via"]))
    console.print(f"[bold]{'resolved':<12}[/bold]{len(pins)} distributions, hashed (`--json` lists them): "
                  f"{escape(shown)}")
