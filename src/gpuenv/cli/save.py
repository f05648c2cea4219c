"""`gpuenv save`: an environment's image, spec and lock into one file (a bundle) for an offline server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape

import gpuenv.run
from gpuenv.bundle import signature
from gpuenv.bundle.write import LEVEL, Source, bases_of, env_name, spec_files
from gpuenv.bundle.write import save as write_bundle
from gpuenv.cli.main import global_options
from gpuenv.cli.meter import Meter
from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import BadInput
from gpuenv.host.engine import probe_engine
from gpuenv.host.user import ids
from gpuenv.images.progress import human_bytes
from gpuenv.run.docker import Docker
from gpuenv.spec.load import load_spec


@click.command()
@click.argument("env", required=False)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="The bundle to write (e.g. vision.gpuenv).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option("--level", type=click.IntRange(-7, 19), default=None,
              help="zstd level: lower is faster, higher is smaller (default 3; 19 for a slow link).")
@click.option("--sign", "key", type=click.Path(path_type=Path), default=None,
              help="Sign the bundle with this SSH key (a private key, or a .pub whose key is in ssh-agent), "
              "so that `gpuenv load --allowed-signers FILE` can check who made it.")
@global_options
@click.pass_obj
def save(renderer: Renderer, env: Optional[str], output: Path, force: bool, level: Optional[int],
         key: Optional[Path], **_: Any) -> Result:
    """Write an environment's image, spec and lock into one file for an offline server.

    \b
    gpuenv save -o vision.gpuenv          the environment of ./gpuenv.toml (its built image)
    gpuenv save vision -o /media/usb/vision.gpuenv
    gpuenv save -o vision.gpuenv --sign ~/.ssh/id_ed25519
    The image is compressed with zstd; the manifest holds every checksum and what a host needs
    (driver, CUDA, GPU architectures). `gpuenv load FILE` on the other side.
    """
    output = output.expanduser()
    _check_output(output, force)
    sign = signature.signer(key.expanduser()) if key else None
    docker = _docker()
    source = environment_source(docker, env)
    meter = Meter(renderer, f"saving {source.tag}", int(source.info.get("Size") or 0))
    saved = write_bundle(docker, source, output, meter, LEVEL if level is None else level, sign)
    seconds = meter.end()
    data = {"file": str(saved.path), "size": saved.size, "image": source.tag, "image_id": source.info["Id"],
            "signed_with": str(key) if key else None,
            "image_bytes": saved.image_bytes, "seconds": round(seconds, 2),
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in saved.members]}
    return Result(data, lambda c: _show_saved(c, data))


def _check_output(output: Path, force: bool) -> None:
    if output.is_dir():
        raise BadInput(f"{output} is a folder", f"name the file: -o {output / 'env.gpuenv'}")
    if output.exists() and not force:
        raise BadInput(f"{output} exists", "choose another name, or replace it with --force")
    if not output.parent.is_dir():
        raise BadInput(f"the folder {output.parent} does not exist", "create it first, or save elsewhere")


def _docker() -> Docker:
    return Docker.connect(probe_engine(compose=False))


def environment_source(docker: Docker, env: Optional[str]) -> Source:
    """The image to save and the files it was built from: a running environment by name, else ./gpuenv.toml's."""
    if env:
        found = gpuenv.run.envs.find(docker, env, ids("host")[0], Path.cwd())
        tag, folder = found.image, Path(found.label("files"))
        spec_file = folder / "gpuenv.toml"
    else:
        spec_file = Path.cwd() / "gpuenv.toml"
        if not spec_file.is_file():
            raise BadInput("no ENV given and no gpuenv.toml here", "name an environment (gpuenv ls), or run it in "
                           "the folder of its gpuenv.toml")
        folder, tag = spec_file.parent, _built_tag(spec_file.parent)
    info = docker.image(tag)
    if not info:
        raise BadInput(f"the image {tag} is not on this engine", "build it first: gpuenv build")
    if not spec_file.is_file():
        raise BadInput(f"the environment's files in {folder} have no gpuenv.toml", "save from the spec's folder")
    spec = load_spec(spec_file)
    gpu = spec.gpu.devices != "none"
    dockerfile = folder / "Dockerfile"
    bases = bases_of(docker, info, dockerfile.read_text()) if dockerfile.is_file() else ()
    return Source(env_name(tag), tag, info, spec_file, folder, gpu, bases, spec_files(spec, spec_file.parent))


def _built_tag(folder: Path) -> str:
    env = folder / ".env"
    lines = env.read_text().splitlines() if env.is_file() else []
    tag = next((line.split("=", 1)[1] for line in lines if line.startswith("GPUENV_IMAGE=")), "")
    if not tag:
        raise BadInput(f"the environment of {folder / 'gpuenv.toml'} is not built", "build it first: gpuenv build")
    return tag


def _show_saved(console: Console, data: dict[str, Any]) -> None:
    ratio = data["size"] / data["image_bytes"] if data["image_bytes"] else 0
    console.print(f"[bold green]saved[/bold green] {escape(data['image'])} to {escape(data['file'])}: "
                  f"{human_bytes(data['size'])} ({ratio:.0%} of the image's {human_bytes(data['image_bytes'])}) "
                  f"in {data['seconds']:.1f} s")
    if data["signed_with"]:
        console.print(f"[bold]signed[/bold] with {escape(data['signed_with'])} "
                      "(ssh-keygen -Y, namespace gpuenv-bundle)")
    console.print(f"[dim]on the other server: gpuenv load {escape(Path(data['file']).name)} --up[/dim]")
