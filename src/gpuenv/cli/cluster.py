"""`gpuenv export`, `gpuenv submit`, `gpuenv jobs`, `gpuenv cancel`: the environment on clusters (cluster/).
`gpuenv job-config` (hidden) is the first step of a submitted job, on its node."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv.cli.main import global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.cli.save import environment_source
from gpuenv.cluster import export as exporting
from gpuenv.cluster import fit, jupyter, node, slurm
from gpuenv.cluster.others import runtimes
from gpuenv.cluster.runtime import ImageConfig, Settings, process_args
from gpuenv.errors import BadInput, ImpossibleRequest, SchedulerError
from gpuenv.host import nvidia
from gpuenv.host.engine import probe_engine
from gpuenv.host.observe import load_recording
from gpuenv.host.user import ids, run_ca_bundle, user_name
from gpuenv.render.compose import network_environment
from gpuenv.run.docker import Docker
from gpuenv.spec.load import load_spec
from gpuenv.spec.model import EnvSpec
from gpuenv.spec.values import size_bytes

NODE_FACTS_HELP = ("A recording of the target node (a folder with its nvidia-smi -q -x output as nvidia-smi-q.xml, "
                   "as scripts/record-gpu-fixtures writes): the image's labels are checked against it first.")


class _Env:
    """The environment to export: its built image and the settings its spec gives."""

    def __init__(self, docker: Docker, env: Optional[str], image: Optional[str]) -> None:
        if image and not env:           # any image, with the settings of ./gpuenv.toml (built or not)
            spec_file = Path.cwd() / "gpuenv.toml"
            if not spec_file.is_file():
                raise BadInput("no gpuenv.toml here", "run it in the folder of the environment's gpuenv.toml")
            self.folder, self.tag, info = spec_file.parent, image, docker.image(image)
        else:
            source = environment_source(docker, env)
            spec_file, self.folder, self.tag = source.spec_file, source.folder, image or source.tag
            info = docker.image(self.tag) if image else source.info
        self.spec: EnvSpec = load_spec(spec_file)
        if not info:
            raise BadInput(f"the image {self.tag} is not on this engine", "build it (gpuenv build), or name one "
                           "that `docker images` lists")
        self.image_id = str(info.get("Id") or "")
        self.image = ImageConfig.of(info)
        self.settings = settings_of(self.spec, self.folder)


def settings_of(spec: EnvSpec, folder: Path) -> Settings:
    uid, gid = ids(spec.workspace.user)
    ca = run_ca_bundle(spec.network.ca_certificates)
    workspace = (folder / Path(spec.workspace.host).expanduser()).resolve()
    return Settings(uid, gid, str(workspace), spec.workspace.mount, size_bytes(spec.run.shm_size),
                    tuple(network_environment(spec.network, bool(ca)).items()), ca)


def check_node(image: ImageConfig, facts: Optional[Path]) -> Optional[str]:
    """The image against a recorded node (`facts`): ImpossibleRequest when it cannot run it; what was checked."""
    if facts is None:
        return None
    if not facts.is_dir():
        raise BadInput(f"--node-facts {facts} is not a folder", "give the folder of a recorded node")
    driver = nvidia.from_observations(load_recording(facts))
    fit.check(image, driver, f"the node recorded in {facts}")
    return f"driver {driver.version or 'none'}, {len(driver.gpus)} GPU(s)" if fit.needs_gpu(image) else "CPU image"


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-e", "--env", "env", default=None, help="A running environment by name (default: ./gpuenv.toml's).")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="The folder to write (the OCI layout in oci/, the runtime bundle in bundle/).")
@click.option("--image", default=None, help="Export this image instead of the environment's built one.")
@click.option("--node-facts", "facts", type=click.Path(path_type=Path), default=None, help=NODE_FACTS_HELP)
@click.option("--force", is_flag=True, help="Replace the folder if an earlier export is there.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@global_options
@click.pass_obj
def export(renderer: Renderer, env: Optional[str], output: Path, image: Optional[str], facts: Optional[Path],
           force: bool, command: tuple[str, ...], **_: Any) -> Result:
    """Write the environment's image as an OCI image layout and a runtime bundle for runc, crun and Slurm.

    \b
    gpuenv export -o /shared/vision                 the environment of ./gpuenv.toml
    gpuenv export -o /shared/vision --node-facts DIR  refused (exit 3) when that node cannot run it
    gpuenv export -o DIR -- python train.py         the bundle's command (default: the image's)
    runc run -b /shared/vision/bundle ID            runs it: your UID, the workspace, shm, no GPU
    Also prints the enroot (pyxis) and Apptainer commands that take the same image.
    """
    docker = Docker.connect(probe_engine(compose=False))
    found = _Env(docker, env, image)
    checked = check_node(found.image, facts)
    out = output.expanduser().resolve()
    command = tuple(command[1:]) if command[:1] == ("--",) else command
    done = exporting.export(found.tag, found.image_id, found.image, found.settings, out, force, command)
    others = runtimes(found.tag, found.settings.workspace, found.settings.mount)
    data = {**done.to_dict(), "node_checked": checked, "others": [r.to_dict() for r in others]}
    return Result(data, lambda c: _show_export(c, data))


def _show_export(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold green]exported[/bold green] {escape(data['image'])} to {escape(data['folder'])}")
    console.print(f"  OCI layout  {escape(data['layout_ref'])}")
    console.print(f"  bundle      {escape(data['bundle'])}   (runc run -b {escape(data['bundle'])} NAME)")
    if data["node_checked"]:
        console.print(f"  node        fits: {escape(data['node_checked'])}")
    for other in data["others"]:
        state = "on PATH" if other["present"] else "not on this host; where it is, this would run"
        console.print(f"[bold]{other['tool']}[/bold] ({state}):")
        for line in other["commands"]:
            console.print(f"  {escape(line)}")
        console.print(f"  [dim]{escape(other['note'])}[/dim]")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-e", "--env", "env", default=None, help="A running environment by name (default: ./gpuenv.toml's).")
@click.option("--partition", "-p", default="", help="The partition (default: the cluster's default).")
@click.option("--gpus", type=click.IntRange(0, 64), default=None,
              help="GPUs for the job (default: from the spec's [gpu]: its count or list; 0 when devices = \"none\").")
@click.option("--time", "time_limit", default="", help="The job's time limit, as sbatch takes it (1:00:00).")
@click.option("--export-dir", "export_dir", type=click.Path(path_type=Path), default=None,
              help="Where the image is exported for the nodes (a shared folder; default .gpuenv/cluster/IMAGE "
              "beside gpuenv.toml); an export of the same image there is reused.")
@click.option("--node-facts", "facts", type=click.Path(path_type=Path), default=None, help=NODE_FACTS_HELP)
@click.option("--image", default=None, help="Run this image instead of the environment's built one.")
@click.option("--dry-run", is_flag=True, help="Print the job script; submit nothing.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@global_options
@click.pass_obj
def submit(renderer: Renderer, env: Optional[str], partition: str, gpus: Optional[int], time_limit: str,
           export_dir: Optional[Path], facts: Optional[Path], image: Optional[str], dry_run: bool,
           command: tuple[str, ...], **_: Any) -> Result:
    """Run a command as a Slurm batch job in the environment's image.

    \b
    gpuenv submit -- python train.py          on the default partition, GPUs from the spec
    gpuenv submit --gpus 2 -p a100 -- python train.py
    The job checks its node's driver and GPUs against the image before the command runs; it runs as you,
    with the workspace mounted and the spec's network settings. `gpuenv jobs` lists, `gpuenv cancel` ends.
    """
    command = tuple(command[1:]) if command[:1] == ("--",) else command
    scheduler = None if dry_run else slurm.Slurm()
    docker = Docker.connect(probe_engine(compose=False))
    found = _Env(docker, env, image)
    checked = check_node(found.image, facts)
    count = gpus if gpus is not None else spec_gpus(found.spec)
    if scheduler is not None and count > 0:
        _check_partition(scheduler, partition, count)
    where = (export_dir or found.folder / ".gpuenv" / "cluster" / found.image_id.split(":")[-1][:12]).expanduser()
    job = slurm.JobRequest(found.spec.name or found.folder.name, where.resolve(),
                           tuple(process_args(found.image, command)), count, partition, time_limit, str(found.folder))
    if scheduler is None:
        text = slurm.job_script(job)
        return Result({"script": text, "gpus": count, "node_checked": checked}, lambda c: c.print(text, markup=False))
    _exported(renderer, found, job.export)
    job_id = scheduler.submit(slurm.job_script(job))
    data = {"job": job_id, "env": job.name, "gpus": count, "partition": partition or None, "export": str(job.export),
            "command": list(job.command), "node_checked": checked,
            "log": str(found.folder / f"slurm-{job_id}.out")}
    return Result(data, lambda c: c.print(f"[bold green]submitted[/bold green] job {job_id} ({escape(job.name)}, "
                                          f"{count} GPU(s)); log: {escape(str(data['log']))}; `gpuenv jobs` lists it"))


def spec_gpus(spec: EnvSpec) -> int:
    """The GPUs a job asks for: devices = "none" -> 0, a list -> its length, "free" -> count (1), "all" -> 1
    (a scheduler hands out GPUs: --gpus N asks for more)."""
    devices = spec.gpu.devices
    if devices == "none":
        return 0
    if isinstance(devices, list):
        return len(devices)
    return spec.gpu.count or 1


def _check_partition(scheduler: slurm.Slurm, partition: str, count: int) -> None:
    gres = scheduler.partition_gres(partition)
    if slurm.has_gpus(gres):
        return
    name = partition or scheduler.default_partition() or "the default partition"
    raise ImpossibleRequest(f"partition {name} has no GPUs (its nodes' GRES: {', '.join(gres) or 'none'}); the job "
                            f"asks for {count}", code="no-gpu-partition",
                            hint="choose a partition with GPUs (sinfo -o '%P %G' lists them: -p NAME), or run on the "
                            "CPU: --gpus 0")


def _exported(renderer: Renderer, found: _Env, where: Path) -> None:
    """The image exported at `where` (an export of the same image there is reused)."""
    if (where / exporting.RECORD).is_file():
        image, _, _ = exporting.read_record(where)
        if image == found.tag and _record_id(where) == found.image_id:
            return
    renderer.say(f"exporting {found.tag} to {where}")
    where.parent.mkdir(parents=True, exist_ok=True)
    exporting.export(found.tag, found.image_id, found.image, found.settings, where, force=True)


def _record_id(where: Path) -> str:
    text = (where / exporting.RECORD).read_text()
    return str(json.loads(text).get("image_id") or "")


@click.command()
@global_options
@click.pass_obj
def jobs(renderer: Renderer, **_: Any) -> Result:
    """Your gpuenv jobs on Slurm: id, environment, state, time, node."""
    found = slurm.Slurm().jobs(user_name())
    data = {"jobs": [j.to_dict() for j in found]}

    def show(console: Console) -> None:
        if not found:
            console.print("no gpuenv jobs")
        for j in found:
            console.print(f"{j.id}  {escape(j.name)}  {j.state}  {j.elapsed}  {escape(j.node or j.reason)}")
    return Result(data, show)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@global_options
@click.pass_obj
def cancel(renderer: Renderer, targets: tuple[str, ...], **_: Any) -> Result:
    """Cancel gpuenv jobs: by job id or by environment name (all of its jobs)."""
    scheduler = slurm.Slurm()
    mine = scheduler.jobs(user_name())
    chosen = [j for j in mine if j.id in targets or j.name in targets]
    unknown = [t for t in targets if not any(t in (j.id, j.name) for j in mine)]
    if unknown:
        raise BadInput(f"no gpuenv job of yours is {', '.join(unknown)}", "`gpuenv jobs` lists them")
    scheduler.cancel([j.id for j in chosen])
    data = {"cancelled": [j.id for j in chosen]}
    return Result(data, lambda c: c.print(f"[bold]cancelled[/bold] {', '.join(data['cancelled'])}"))


@click.command(name="job-config", hidden=True,
               context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--jupyter", "jupyter_mode", type=click.Choice(jupyter.MODES), default=None,
              help="The interactive Jupyter job: the image's Jupyter on a free port of the node's 127.0.0.1.")
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@global_options
@click.pass_obj
def job_config(renderer: Renderer, jupyter_mode: Optional[str], export_dir: Path, job_dir: Path,
               command: tuple[str, ...], **_: Any) -> Result:
    """A job's first step on its node: check the node, write the job's bundle (cluster/node.py)."""
    command = tuple(command[1:]) if command[:1] == ("--",) else command
    data = node.job_config(export_dir, job_dir, dict(os.environ), command, jupyter_mode=jupyter_mode or "")
    port = f", Jupyter on 127.0.0.1:{data['port']}" if data["port"] else ""
    return Result(data, lambda c: c.print(f"gpuenv: node {data['node']}, driver {data['driver'] or 'none'}, "
                                          f"GPUs {data['gpus']}{port}"))


@click.command(name="job-ready", hidden=True)
@click.argument("job_dir", type=click.Path(path_type=Path))
@global_options
@click.pass_obj
def job_ready(renderer: Renderer, job_dir: Path, **_: Any) -> Result:
    """Beside the Jupyter job's container on its node: mark it ready once Jupyter answers its token."""
    ready = jupyter.wait_ready(job_dir, dict(os.environ), READY_SECONDS)
    if not ready:
        raise SchedulerError(f"Jupyter did not answer on this node within {READY_SECONDS} s",
                             "the job's log (slurm-JOBID.out) says why")
    return Result({"ready": True}, lambda c: c.print("gpuenv: Jupyter answers"))


# --- up --on slurm / down --on slurm ---------------------------------------------------------------------------

READY_SECONDS = 900


def up_on_slurm(renderer: Renderer, wait: bool, partition: str = "", time_limit: str = "",
                timeout: float = READY_SECONDS) -> Result:
    """The environment's Jupyter as a Slurm job: exported, submitted with a fresh token in the job's
    environment, waited for until it answers on its node; the node, port, URL and tunnel reported. A job
    that does not come up is cancelled (nothing left half-started)."""
    scheduler = slurm.Slurm()
    docker = Docker.connect(probe_engine(compose=False))
    found = _Env(docker, None, None)
    access = found.spec.access.jupyter
    if access is None:
        raise BadInput(f"{found.folder / 'gpuenv.toml'} has no Jupyter: `up --on slurm` runs it as a job",
                       "add [access.jupyter] (mode = \"lab\") to gpuenv.toml and build again, or run a command "
                       "as a batch job: gpuenv submit -- CMD")
    count = spec_gpus(found.spec)
    if count > 0:
        _check_partition(scheduler, partition, count)
    where = (found.folder / ".gpuenv" / "cluster" / found.image_id.split(":")[-1][:12]).resolve()
    job = slurm.JobRequest(found.spec.name or found.folder.name, where, (), count, partition, time_limit,
                           str(found.folder), jupyter=access.mode)
    _exported(renderer, found, job.export)
    token = secrets.token_hex(24)
    job_id = scheduler.submit(slurm.job_script(job), env={jupyter.TOKEN_VARIABLE: token})
    log = found.folder / f"slurm-{job_id}.out"
    data: dict[str, Any] = {"job": job_id, "env": job.name, "gpus": count, "export": str(job.export), "log": str(log),
                            "ready": False}
    if not wait:
        return Result(data, lambda c: c.print(f"[bold green]submitted[/bold green] job {job_id} (Jupyter of "
                                              f"{escape(job.name)}); `gpuenv jobs` shows when it runs"))
    renderer.say(f"submitted job {job_id}; waiting until it runs and Jupyter answers on its node")
    try:
        node_name, port = _wait_for_jupyter(scheduler, job_id, job.export / "jobs" / job_id, log, timeout)
    except BaseException:
        try:
            scheduler.cancel([job_id])           # a job that ended already: scancel says so, nothing to end
        except SchedulerError:
            pass
        raise
    path = "lab" if access.mode == "lab" else "tree"
    data.update({"ready": True, "node": node_name, "port": port,
                 "jupyter_url": f"http://127.0.0.1:{port}/{path}?token={token}",
                 "tunnel": f"ssh -N -L {port}:127.0.0.1:{port} {node_name}"})
    return Result(data, lambda c: _show_jupyter_job(c, data))


def _wait_for_jupyter(scheduler: slurm.Slurm, job_id: str, job_dir: Path, log: Path,
                      timeout: float) -> tuple[str, int]:
    """The node and port once the job runs and its jupyter.json says ready; SchedulerError when the job
    ends first or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((j for j in scheduler.jobs(user_name()) if j.id == job_id), None)
        if found is None or found.state not in ("PENDING", "CONFIGURING", "RUNNING"):
            raise SchedulerError(f"job {job_id} ended before Jupyter answered"
                                 + (f" ({found.state})" if found else "") + _log_tail(log),
                                 f"the job's log {log} says why; `gpuenv submit -- jupyter --version` tries the image")
        ready = jupyter.read_record(job_dir) if found.state == "RUNNING" else None
        if ready is not None and ready.ready:
            return found.node or ready.node, ready.port
        time.sleep(1)
    raise SchedulerError(f"job {job_id} did not have Jupyter answering within {timeout:.0f} s (it is cancelled)",
                         "`gpuenv jobs` shows whether it waited for a node (its reason); the log " + str(log))


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()[-5:]
    except OSError:
        return ""
    return (": " + " / ".join(lines)) if lines else ""


def _show_jupyter_job(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold green]running[/bold green] job {data['job']} ({escape(data['env'])}) on node "
                  f"{escape(data['node'])}, Jupyter on its 127.0.0.1:{data['port']}")
    console.print(f"[bold]tunnel[/bold]   {escape(data['tunnel'])}   (from your machine, through the login node "
                  "if needed: add -J LOGIN)")
    console.print(f"[bold]jupyter[/bold]  {escape(data['jupyter_url'])}")
    console.print(f"[bold]end[/bold]      gpuenv cancel {data['job']}   (or gpuenv down --on slurm)")


def down_on_slurm(spec_file: Path) -> Result:
    """Cancel this folder's environment's gpuenv jobs (by its name)."""
    spec = load_spec(spec_file)
    name = spec.name or spec_file.parent.name
    scheduler = slurm.Slurm()
    chosen = [j.id for j in scheduler.jobs(user_name()) if j.name == name]
    if chosen:
        scheduler.cancel(chosen)
    data = {"name": name, "cancelled": chosen}
    return Result(data, lambda c: c.print(f"[bold]{escape(name)}[/bold]: " + (
        f"cancelled {', '.join(chosen)}" if chosen else "no gpuenv job of yours was running")))
