"""`gpuenv build` and `gpuenv up`: a gpuenv.toml (or a short request) to an image, then to a running
environment that answers, with how to reach it."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment, paths
from gpuenv.cli.cluster import up_on_slurm
from gpuenv.cli.common import engine, show_access, warn
from gpuenv.cli.kube import cluster_options, up_on_kubernetes
from gpuenv.cli.init import _HEADER, _write_atomically, spec_from_request, spec_options
from gpuenv.cli.main import F, global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.cli.tunnels import check_asked, for_engine
from gpuenv.errors import BadInput
from gpuenv.host.engine import endpoint_from_config, remote_endpoint
from gpuenv.spec import spec_path
from gpuenv.spec.values import gpu_devices, name_from_folder
from gpuenv.spec.write import spec_data, to_toml

if TYPE_CHECKING:
    from gpuenv.cli.tunnels import Tunnels
    from gpuenv.environment import Say
    from gpuenv.host.access import Devices
    from gpuenv.host.probe import HostReport
    from gpuenv.images.progress import BuildLog


def source_options(fn: F) -> F:
    fn = click.option("--pull", is_flag=True, help="Try the registry for the base again, even when gpuenv "
                      "built one here before.")(fn)
    fn = click.option("--force", is_flag=True, help="Replace files of the same names that gpuenv did not write.")(fn)
    fn = click.option("-o", "--out", "out", type=click.Path(path_type=Path),
                      help="Write the files into this folder (default: the spec's folder).")(fn)
    fn = click.option("-f", "--file", "file", type=click.Path(path_type=Path),
                      help="The spec (default ./gpuenv.toml; a folder means its gpuenv.toml).")(fn)
    return click.argument("request", nargs=-1)(fn)


def locked_option(fn: F) -> F:
    return click.option("--locked", is_flag=True, help="No planning: build exactly gpuenv.lock (its plan, base "
                        "digest and every package's version and hashes); refused without a lock of this spec.")(fn)


@click.command()
@source_options
@click.option("--no-cache", is_flag=True, help="Build every step again.")
@locked_option
@spec_options
@global_options
@click.pass_obj
def build(renderer: Renderer, request: tuple[str, ...], file: Optional[Path], out: Optional[Path], force: bool,
          pull: bool, no_cache: bool, locked: bool, **flags: Any) -> Result:
    """Build the environment's image (BuildKit), unless an identical one is there.

    \b
    gpuenv build                          the image of ./gpuenv.toml
    gpuenv build torch --jupyter          a short request (files kept in ~/.local/state/gpuenv)
    The image is tagged by content: an unchanged spec never rebuilds. Behind a TLS-inspecting proxy the
    host's CA bundle goes to the build as a secret, never into a layer.
    """
    spec_file = spec_source(request, file, flags)
    say = renderer.say
    with environment.folder_lock(spec_file, say):           # one `up` or `build` of a folder at a time
        with ThreadPoolExecutor(max_workers=1) as pool:
            probing = pool.submit(engine)
            prepared = environment.prepare(spec_file, probing.result, say, out=out, force=force, pull=pull,
                                           locked=locked)
            report, docker = probing.result()
        log = environment.build(prepared, docker, renderer.stderr, renderer.live, no_cache)
    image, summary = prepared.image, _summary(log)
    data = {"image": image, "built": log is not None, "folder": str(prepared.folder),
            "plan": prepared.rendered.recipe.summary, "base": prepared.rendered.recipe.base, "summary": summary}
    return Result(data, lambda c: c.print(
        f"[bold]image[/bold]  {escape(image)}  "
        + ("(built: " + escape(summary) + ")" if log is not None else "(up to date: nothing to build)")))


@click.command()
@source_options
@click.option("--no-wait", is_flag=True, help="Return once started, without waiting for it to answer.")
@click.option("--gpus", "gpus_text", metavar="GPUS", help="The GPUs to give, instead of gpu.devices: indexes or UUIDs "
              "separated by commas (0,1), all, or free.")
@click.option("--tunnel", is_flag=True, help="On an engine reached over ssh (DOCKER_HOST=ssh://USER@HOST, a docker "
              "context): keep an ssh tunnel from this host's 127.0.0.1 to the environment's ports open in the "
              "background; `gpuenv down` closes it.")
@locked_option
@cluster_options
@click.option("--partition", "partition", metavar="NAME", help="With --on slurm: the partition (default: the "
              "cluster's default).")
@click.option("--time", "time_limit", metavar="LIMIT", help="With --on slurm: the job's time limit, as sbatch takes "
              "it (8:00:00).")
@spec_options
@global_options
@click.pass_obj
def up(renderer: Renderer, request: tuple[str, ...], file: Optional[Path], out: Optional[Path], force: bool,
       pull: bool, no_wait: bool, gpus_text: Optional[str], tunnel: bool, locked: bool, target: str,
       namespace: Optional[str], kube_context: Optional[str], partition: Optional[str], time_limit: Optional[str],
       **flags: Any) -> Result:
    """Plan, write, build when needed, start, and wait until the environment answers.

    \b
    gpuenv up                             ./gpuenv.toml
    gpuenv up torch                       a short request: JupyterLab unless it asks another way in
    gpuenv up tensorflow==1.2.1 --python 3.6 --gateway
    Ports listen on 127.0.0.1; a port that is taken moves to the next free one, and you are told.
    On an engine reached over ssh they listen on that host's 127.0.0.1, and an ssh tunnel brings them
    here: for the wait, and with --tunnel until `gpuenv down` (else its command is shown).
    gpuenv up --on kubernetes             kubernetes.yaml (gpuenv generate --kubernetes) on your kubeconfig's cluster
    gpuenv up --on slurm                  Jupyter as a Slurm job: its node, port, token URL and ssh tunnel
    """
    if target == "kubernetes":
        return up_on_kubernetes(spec_source(request, file, flags), out, namespace, kube_context, wait=not no_wait)
    if namespace or kube_context:
        raise BadInput("--namespace and --context go with --on kubernetes", "add --on kubernetes, or leave them out")
    if target == "slurm":
        if request or file or out or gpus_text or tunnel or locked:
            raise BadInput("`up --on slurm` runs the Jupyter of ./gpuenv.toml's built image, with no other options "
                           "than --partition, --time and --no-wait", "run it in the environment's folder after "
                           "`gpuenv build`")
        return up_on_slurm(renderer, wait=not no_wait, partition=partition or "", time_limit=time_limit or "")
    if partition is not None or time_limit is not None:
        raise BadInput("--partition and --time go with --on slurm", "add --on slurm, or leave them out")
    gpus = given_gpus(gpus_text)
    check_asked(tunnel, endpoint_from_config()[0])
    spec_file = spec_source(request, file, flags)
    say = renderer.say
    with environment.folder_lock(spec_file, say), ThreadPoolExecutor(max_workers=1) as pool:
        probing = pool.submit(engine)                 # the probe runs while the spec is planned
        prepared = environment.prepare(spec_file, probing.result, say, out=out, force=force, pull=pull,
                                       locked=locked)
        report, docker = probing.result()
        warn(prepared, say)
        environment.limits(prepared.spec, report)     # more CPUs than the host has: refused before the build
        tunnels = for_engine(report.engine, prepared.rendered.recipe.project, tunnel, say)
        log = environment.build(prepared, docker, renderer.stderr, renderer.live)
        started = environment.up(prepared, docker, report, say, wait=not no_wait and _can_wait(report, tunnels, say),
                                 gpus=gpus, forward=tunnels)
        shown = tunnels.finish() if tunnels is not None else None
    data = {"name": prepared.rendered.recipe.name, "project": started.project, "image": prepared.image,
            "built": log is not None, "folder": str(prepared.folder), "gpu_mode": started.gpu_mode,
            "gpus": started.gpus,
            "containers": list(started.containers), "reused": started.reused,
            "ports": [{"service": s, "wanted": p.wanted, "port": p.got, "taken_by": p.taken_by or None}
                      for s, p in started.ports], "access": started.access,
            "plan": prepared.rendered.recipe.summary,
            "limits": {**started.limits.limits.to_dict(), "defaults": list(started.limits.defaults)},
            "limits_text": started.limits.describe(), "engine": report.engine.endpoint, "tunnel": shown}
    return Result(data, lambda c: _show_up(c, data))


def given_gpus(text: Optional[str]) -> Optional[Devices]:
    """`--gpus`: "all", "free", or indexes and UUIDs separated by commas (None: the spec's gpu.devices)."""
    if text is None:
        return None
    if text.strip() == "none":
        raise BadInput("--gpus none gives no GPU, and the image was planned for one",
                       'for a CPU-only environment set gpu.devices = "none" in gpuenv.toml (or give a request --cpu)')
    items: Any = text.strip() if text.strip() in ("all", "free") else \
        [int(i) if i.strip().isdigit() else i.strip() for i in text.split(",") if i.strip()]
    try:
        return gpu_devices(items)
    except ValueError as exc:
        raise BadInput(f"--gpus {text}: {exc}", "give --gpus 0,1 (indexes), --gpus GPU-<uuid>, --gpus all or "
                       "--gpus free (gpuenv gpus lists them)") from None


def _can_wait(report: HostReport, tunnels: Optional[Tunnels], say: Say) -> bool:
    """Whether `up` can see its services answer: on this host, or through an ssh tunnel. Another host's
    engine reached otherwise (tcp://) publishes on that host's 127.0.0.1, out of reach from here."""
    if tunnels is not None or not report.engine.remote or not remote_endpoint(report.engine.endpoint):
        return True
    say(f"the engine at {report.engine.endpoint} is on another host and not reached over ssh: its ports listen "
        "there, so gpuenv does not wait for them to answer (an ssh:// endpoint gets a tunnel)")
    return False


def spec_source(request: tuple[str, ...], file: Optional[Path], flags: dict[str, Any]) -> Path:
    """The spec file a build or up means: -f, a request (written to the state folder), ./gpuenv.toml."""
    flags = {k: v for k, v in flags.items() if k not in ("json_mode", "debug")}
    given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v not in (None, False, (), [])]
    if request:
        if file is not None:
            raise BadInput("give a REQUEST or --file, not both", "gpuenv up torch, or gpuenv up -f gpuenv.toml")
        return _request_spec(request, flags)
    if given:
        raise BadInput(f"{', '.join(given)} describe a request, and none was given",
                       "give the request too (gpuenv up torch --jupyter), or edit gpuenv.toml")
    path = spec_path(file)
    if not path.is_file():
        raise BadInput(f"{path} does not exist", "write one with `gpuenv init torch --jupyter`, or give a request: "
                       "gpuenv up torch")
    return path


def _request_spec(request: tuple[str, ...], flags: dict[str, Any]) -> Path:
    """A request's spec, kept in the state folder of this working folder; the workspace is this folder."""
    cwd = Path.cwd().resolve()
    name = flags.get("name") or name_from_folder(cwd.name) or "env"
    folder = paths.request_specs() / f"{name}-{hashlib.sha256(str(cwd).encode()).hexdigest()[:6]}"
    flags = {**flags, "name": name, "workspace": flags.get("workspace") or str(cwd)}
    spec = spec_from_request(request, flags, folder)
    if not (spec.access.jupyter or spec.access.gateway or spec.access.ssh):
        spec = spec_from_request(request, {**flags, "jupyter": "lab"}, folder)
    _write_atomically(folder / "gpuenv.toml", _HEADER + to_toml(spec_data(spec, full=False)))
    return folder / "gpuenv.toml"


def _summary(log: Optional[BuildLog]) -> str:
    if log is None:
        return ""
    return log.summary().describe()


def _show_up(console: Console, data: dict[str, Any]) -> None:
    state = "already running" if data["reused"] else "running"
    console.print(f"[bold green]{escape(data['name'])}[/bold green] {state}: {escape(data['plan'])}")
    console.print(f"[bold]image[/bold]    {escape(data['image'])}" + ("  (built now)" if data["built"] else ""))
    gpus = "" if data["gpus"] in ("", "all", "none") else f", GPUs {data['gpus']}"
    console.print(f"[bold]gpu[/bold]      mode {escape(data['gpu_mode'])}{escape(gpus)}")
    console.print(f"[bold]limits[/bold]   each container: {escape(data['limits_text'])}")
    console.print(f"[bold]files[/bold]    {escape(data['folder'])}")
    tunnel = data.get("tunnel")
    if tunnel:
        state = (f"open (pid {tunnel['pid']}); gpuenv down closes it" if tunnel["open"]
                 else "not left open: run it, or `gpuenv up --tunnel`, to reach the ports below")
        console.print(f"[bold]tunnel[/bold]   {escape(tunnel['command'])}")
        console.print(f"         [dim]{escape(state)}[/dim]")
    show_access(console, data["access"])
    console.print(f"[dim]gpuenv verify {escape(data['name'])} checks it; gpuenv down {escape(data['name'])} "
                  "stops it.[/dim]")

