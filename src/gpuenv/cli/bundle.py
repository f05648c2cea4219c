"""`gpuenv save` and `gpuenv load`: an environment to one file and back, for servers with no registry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import click
from rich.console import Console
from rich.markup import escape

import gpuenv.run
from gpuenv.bundle import signature
from gpuenv.bundle.write import LEVEL, Source, bases_of, env_name, spec_files
from gpuenv.bundle.write import save as write_bundle
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import BadInput, GpuenvError
from gpuenv.host.engine import probe_engine
from gpuenv.host.user import ids
from gpuenv.images.progress import human_bytes
from gpuenv.run.docker import Docker
from gpuenv.spec.load import load_spec

if TYPE_CHECKING:
    from gpuenv.bundle.read import Loading
    from gpuenv.bundle.verify import Verified
    from gpuenv.environment import Prepared, Say
    from gpuenv.host.probe import HostReport
    from gpuenv.spec.model import EnvSpec


class Meter:
    """Bytes moved, on stderr: redrawn in place on a terminal, a line every 10 s elsewhere."""

    def __init__(self, renderer: Renderer, what: str, total: int) -> None:
        self.console, self.what, self.total = renderer.stderr, what, total
        self.live = self.console.is_terminal and not renderer.json_mode
        self.done, self.start = 0, time.monotonic()
        self.shown = self.start

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown >= (0.25 if self.live else 10):
            self.shown = now
            self._show(now, "\r" if self.live else "\n")

    def _show(self, now: float, end: str) -> None:
        rate = self.done / max(now - self.start, 1e-6)
        share = f" of {human_bytes(self.total)} ({100 * self.done // self.total}%)" if self.total else ""
        self.console.file.write(f"{self.what}: {human_bytes(self.done)}{share}, {human_bytes(int(rate))}/s{end}")
        self.console.file.flush()

    def end(self) -> float:
        if self.live and self.shown > self.start:
            self.console.file.write("\r\x1b[K")
        return time.monotonic() - self.start


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
    source = _source(docker, env)
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


def _source(docker: Docker, env: Optional[str]) -> Source:
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
    # late, as in the functions below that only `load` runs: cli.bundle also serves `save`, which loads neither
    # the bundle's reader (verify, fits, tags, the image archive) nor the engine's probe and the stages (cli.up)
    from gpuenv.bundle import read
    from gpuenv.bundle.verify import verify

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
    report, docker = _engine()
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
    from gpuenv.bundle import read

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


def _engine() -> tuple[HostReport, Docker]:
    from gpuenv.cli.up import engine

    return engine()


def _user_ids(spec: EnvSpec) -> tuple[int, int]:
    return ids(spec.workspace.user)


def prepare_for_up(spec_file: Path, host: Callable[[], tuple[HostReport, Docker]], say: Say, tag: str) -> Prepared:
    """The loaded environment's files for `up`, rendered the way that gives the image the bundle brought
    (`tag`), so nothing is built: from gpuenv.lock's plan when there is one that gives it
    (environment.prepare_matching), else a plan for this host, which gives the same image where this
    host is like the maker's."""
    from gpuenv import environment

    found = environment.prepare_matching(spec_file, host()[1], lambda p: p.image == tag and bool(p.image_info))
    return found or environment.prepare(spec_file, host, say)


def _up(renderer: Renderer, spec_file: Path, tag: str, report: HostReport, docker: Docker) -> dict[str, Any]:
    from gpuenv import environment
    from gpuenv.cli.up import _say, warn

    prepared = prepare_for_up(spec_file, lambda: (report, docker), _say(renderer), tag)
    if prepared.image != tag or not prepared.image_info:
        raise GpuenvError(f"the image was loaded ({tag}), but on this host gpuenv plans {prepared.image} for the "
                          "spec, which would have to be built", "start the loaded image with the bundle's plan: "
                          "gpuenv build --locked, then gpuenv up (a lock pins the plan)")
    warn(prepared, _say(renderer))              # a bundle's spec was written by someone else
    started = environment.up(prepared, docker, report, _say(renderer))
    return {"project": started.project, "containers": list(started.containers), "gpu_mode": started.gpu_mode,
            "access": started.access, "reused": started.reused}


def _show_loaded(console: Console, data: dict[str, Any]) -> None:
    from gpuenv.cli.generate import show_access

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
