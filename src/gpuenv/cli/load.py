"""`gpuenv load`: a bundle checked (checksums, signer, this host's driver and GPUs), its image loaded (made
the user's own when the UIDs differ), its spec written; with --up, started."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment
from gpuenv.bundle import read, signature
from gpuenv.bundle.verify import verify
from gpuenv.cli.common import engine, show_access, warn
from gpuenv.cli.main import global_options
from gpuenv.cli.meter import Meter
from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import GpuenvError
from gpuenv.host.user import ids
from gpuenv.run.docker import Docker

if TYPE_CHECKING:
    from gpuenv.bundle.read import Loading
    from gpuenv.bundle.verify import Verified
    from gpuenv.environment import Prepared, Say
    from gpuenv.host.probe import HostReport
    from gpuenv.spec.model import EnvSpec


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--into", "into", type=click.Path(path_type=Path),
              help="Where to write gpuenv.toml (and gpuenv.lock); default ./NAME.")
@click.option("--up", "start", is_flag=True, help="Start the environment once loaded, as `gpuenv up` does.")
@click.option("--force", is_flag=True, help="Load on a host that does not meet the bundle's requirements, and "
              "replace a different gpuenv.toml in the folder.")
@click.option("--allowed-signers", "allowed", type=click.Path(path_type=Path), default=None,
              help="Load only a bundle signed by a key this file lists (ssh-keygen's allowed_signers format: "
              "`NAME ssh-ed25519 AAAA...` a line). Default: $GPUENV_ALLOWED_SIGNERS, else "
              "~/.config/gpuenv/allowed_signers when it exists.")
@global_options
@click.pass_obj
def load(renderer: Renderer, file: Path, into: Optional[Path], start: bool, force: bool, allowed: Optional[Path],
         **_: Any) -> Result:
    """Check a bundle, load its image, write its spec; with --up, start it.

    \b
    gpuenv load vision.gpuenv                 every checksum, this host's driver and GPUs, then the image
    gpuenv load vision.gpuenv --into ~/vision --up
    gpuenv load vision.gpuenv --allowed-signers ~/.ssh/allowed_signers    only if a listed key signed it
    A damaged, truncated or forged bundle is refused before anything reaches the engine; a load never
    moves a tag this engine already has. When your UID/GID differ from the bundle's, an image whose
    user is you is derived from it (no network needed).
    """
    file = file.expanduser()
    size = file.stat().st_size if file.is_file() else 0
    meter = Meter(renderer, f"checking {file.name}", size)
    verified = verify(file, meter)
    meter.end()
    signer = _signer(verified, allowed)
    folder = read.target_folder(verified, into)
    spec = read.parsed_spec(verified)
    read.check_folder(verified, folder, force)
    uid, gid = _user_ids(spec)
    report, docker = engine()
    forced = read.check_host(verified, report.driver, force)
    meter = Meter(renderer, f"loading {verified.manifest.tag}", verified.image.size)
    loading = read.load_image(docker, verified, meter)
    seconds = meter.end()
    tag, image_id, retargeted, written = _place(docker, verified, loading, (uid, gid), folder)
    data = {"name": verified.manifest.name, "image": tag, "image_id": image_id, "loaded": loading.loaded,
            "bundle_image": verified.manifest.tag, "retargeted": list(retargeted) if retargeted else None,
            "folder": str(folder), "written": list(written), "seconds": round(seconds, 2),
            "signed": verified.signature is not None, "signer": signer,
            "kept_tags": [k.to_dict() for k in loading.kept], "kept": [k.message for k in loading.kept],
            "forced": [m.to_dict() for m in forced], "requires": verified.manifest.requires.to_dict()}
    if start:
        data["up"] = _up(renderer, folder / "gpuenv.toml", tag, report, docker)
    return Result(data, lambda c: _show_loaded(c, data))


def _place(docker: Docker, verified: Verified, loading: Loading, user: tuple[int, int],
           folder: Path) -> tuple[str, str, Optional[tuple[int, int]], tuple[str, ...]]:
    """The image for this user and the files in the folder; when either fails, what the load put on the
    engine is taken away again."""
    try:
        tag, image_id, retargeted = read.for_user(docker, verified, user[0], user[1], loading.placed)
        return tag, image_id, retargeted, read.write_files(verified, folder)
    except BaseException:
        loading.placed.undo(docker)
        raise


def _signer(verified: Verified, allowed: Optional[Path]) -> Optional[str]:
    """Who signed the bundle, when allowed signers are given (or configured): checked before anything is
    written or loaded; None when no check was asked for."""
    allowed = allowed.expanduser() if allowed else signature.default_allowed()
    if allowed is None:
        return None
    return signature.verify(verified.path, verified.manifest_bytes, verified.signature, allowed)


def _user_ids(spec: EnvSpec) -> tuple[int, int]:
    return ids(spec.workspace.user)


def prepare_for_up(spec_file: Path, host: Callable[[], tuple[HostReport, Docker]], say: Say, tag: str) -> Prepared:
    """The loaded environment's files for `up`, rendered the way that gives the image the bundle brought
    (`tag`), so nothing is built: from gpuenv.lock's plan when there is one that gives it
    (environment.prepare_matching), else a plan for this host, which gives the same image where this
    host is like the maker's."""
    found = environment.prepare_matching(spec_file, host()[1], lambda p: p.image == tag and bool(p.image_info))
    return found or environment.prepare(spec_file, host, say)


def _up(renderer: Renderer, spec_file: Path, tag: str, report: HostReport, docker: Docker) -> dict[str, Any]:
    prepared = prepare_for_up(spec_file, lambda: (report, docker), renderer.say, tag)
    if prepared.image != tag or not prepared.image_info:
        raise GpuenvError(f"the image was loaded ({tag}), but on this host gpuenv plans {prepared.image} for the "
                          "spec, which would have to be built", "start the loaded image with the bundle's plan: "
                          "gpuenv build --locked, then gpuenv up (a lock pins the plan)")
    warn(prepared, renderer.say)              # a bundle's spec was written by someone else
    started = environment.up(prepared, docker, report, renderer.say)
    return {"project": started.project, "containers": list(started.containers), "gpu_mode": started.gpu_mode,
            "access": started.access, "reused": started.reused}


def _show_loaded(console: Console, data: dict[str, Any]) -> None:
    how = "loaded" if data["loaded"] else "already on this engine"
    console.print(f"[bold green]{escape(data['name'])}[/bold green]: {escape(data['bundle_image'])} {how}")
    if data["signer"]:
        console.print(f"[bold]signed[/bold] by {escape(data['signer'])} (a key your allowed signers list)")
    elif data["signed"]:
        console.print("[dim]signed, but not checked: --allowed-signers FILE checks who signed it[/dim]")
    for line in data["kept"]:
        console.print(f"[bold yellow]kept[/bold yellow] {escape(line)}")
    if data["retargeted"]:
        uid, gid = data["retargeted"]
        console.print(f"[bold]image[/bold]  {escape(data['image'])}  (its user made UID {uid} / GID {gid}: yours)")
    for m in data["forced"]:
        console.print(f"[bold yellow]loaded anyway[/bold yellow] (--force): {escape(m['message'])}")
    console.print(f"[bold]files[/bold]  {escape(data['folder'])}")
    if "up" in data:
        console.print(f"[bold]running[/bold] in GPU mode {escape(data['up']['gpu_mode'])}")
        show_access(console, data["up"]["access"])
    else:
        console.print(f"[dim]cd {escape(data['folder'])} && gpuenv up[/dim]")
