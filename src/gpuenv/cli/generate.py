"""`gpuenv generate`: a gpuenv.toml to plain files (Dockerfile, compose.yaml, .env, devcontainer.json),
then how to reach the environment: the Jupyter URL, Hydrogen's gateway settings, the ssh command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment
from gpuenv.environment import HostAndEngine, ProbeAnswer, Say
from gpuenv.cli.common import engine, show_access
from gpuenv.cli.kube import check_kube_file, kube_options, kube_settings, write_kube_file
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import BadInput, EngineError
from gpuenv.render.kubernetes import KUBERNETES_FILE
from gpuenv.run.reach import reach, spec_ports
from gpuenv.spec import spec_path

if TYPE_CHECKING:
    from gpuenv.render import Rendered


@click.command()
@click.option("-f", "--file", "file", type=click.Path(path_type=Path),
              help="The spec (default ./gpuenv.toml; a folder means its gpuenv.toml).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path),
              help="Write the files into this folder (default: the spec's folder).")
@click.option("--force", is_flag=True, help="Replace files of the same names that gpuenv did not write.")
@click.option("--pull", is_flag=True,
              help="Try the registry for the base again, even when gpuenv built one here before.")
@kube_options
@global_options
@click.pass_obj
def generate(renderer: Renderer, file: Optional[Path], out: Optional[Path], force: bool, pull: bool,
             kubernetes: bool, image: Optional[str], workspace_size: Optional[str], storage_class: Optional[str],
             host_path: Optional[str], runtime_class: Optional[str], pull_secret: Optional[str], **_: Any) -> Result:
    """Write Dockerfile, compose.yaml, .env and .devcontainer/ for a gpuenv.toml.

    \b
    gpuenv generate                        files next to ./gpuenv.toml
    gpuenv generate -f examples/torch --out /tmp/torch-env
    gpuenv generate --kubernetes --image registry.lab:5000/group/torch:v1    and kubernetes.yaml
    The files work without gpuenv: docker compose up -d (or docker-compose up -d).
    Tokens go to .env (mode 600, added to .gitignore) and are kept when you generate again.
    With a Docker engine here, the files are those `gpuenv up` runs: the base this engine has, pulls or
    builds (no registry: built from the apt mirror, remembered), and the GPU request of this host's mode.
    """
    say = renderer.say
    if out is not None and out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file", "give a folder (it is created when missing)")
    cluster = kube_settings(kubernetes, image, workspace_size, storage_class, host_path, runtime_class, pull_secret)
    spec_file = spec_path(file)
    check_kube_file(cluster, (out or spec_file.parent).resolve(), force)
    prepared = environment.prepare(spec_file, _engine_if_any(say), say, out=out, force=force, pull=pull,
                                   files_only=True)
    written = list(prepared.written) + write_kube_file(cluster, prepared.rendered, prepared.folder, force)
    data = describe(prepared.rendered, written, prepared.private_key_file, prepared.folder)
    return Result(data, lambda console: _show(console, data))


def _engine_if_any(say: Say) -> HostAndEngine:
    """The host probe and the engine, asked once; (None, None) where no engine answers (the files are
    then the plan's as made, for a host where it does)."""
    found: list[ProbeAnswer] = []

    def host() -> ProbeAnswer:
        if not found:
            found.append(_probe(say))
        return found[0]
    return host


def _probe(say: Say) -> ProbeAnswer:
    try:
        return engine()
    except EngineError as exc:
        say(f"no Docker engine answers here ({exc.message}): the files name the planned base and the plan's "
            "GPU request; `gpuenv generate` where the environment runs writes what `gpuenv up` builds there")
        return None, None


def describe(rendered: Rendered, written: list[str], private_key_file: Optional[str], out: Path) -> dict[str, Any]:
    """What `gpuenv generate --json` says; `private_key_file`: the SSH private key's path, for `ssh -i`."""
    r = rendered.recipe
    return {"out": str(out), "files": written, "plan": r.summary, "base": r.base,
            "gpu_mode": r.inputs.gpu_mode, "gpu_requested": r.gpu_request,
            "services": [s.name for s in r.services], "access": reach(r, spec_ports(r), private_key_file)}


def _show(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold]wrote[/bold]    {escape(data['out'])}/  " + escape(", ".join(data["files"])))
    console.print(f"[bold]plan[/bold]     {escape(data['plan'])}")
    console.print(f"[bold]base[/bold]     {escape(data['base'])}")
    console.print(f"[bold]start[/bold]    cd {escape(data['out'])} && docker compose up -d   "
                  "(compose v1: docker-compose up -d)")
    if KUBERNETES_FILE in data["files"]:
        console.print(f"[bold]cluster[/bold]  gpuenv up --on kubernetes   (by hand: the kubectl lines atop "
                      f"{KUBERNETES_FILE}; it holds no token)")
    show_access(console, data["access"])
    console.print("[dim].env holds the tokens: mode 600, listed in .gitignore; keep it out of git.[/dim]")

