"""The verbs on a running environment: ls, status, logs, shell, exec, down, rm. ENV is an environment's
name (or project); left out, the one of this folder, or your only one (for `down` and `rm`, only this
folder's: a verb that removes never takes an environment of another folder unnamed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpuenv import environment, paths
from gpuenv.cli.cluster import down_on_slurm
from gpuenv.cli.kube import cluster_options, down_on_kubernetes
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Result
from gpuenv.cli.tunnels import state_file
from gpuenv.errors import BadInput, EngineError
from gpuenv.host.engine import clients_on_path, probe_engine
from gpuenv.run import hosts, tunnel
from gpuenv.run.docker import Docker
from gpuenv.run.hosts import HostAnswer, each_host
from gpuenv.run.envs import Env, Remains, belongs_here, environments, find, left_behind, remains_of
from gpuenv.spec import spec_path
from gpuenv.run.memory_kills import kills_text, memory_kills


def _docker() -> Docker:
    return Docker.connect(probe_engine(compose=False))


def _engine() -> tuple[Docker, bool]:
    """The docker client, and whether its engine runs on this host (cgroup counters read here)."""
    engine = probe_engine(compose=False)
    return Docker.connect(engine), not engine.remote


def _described(docker: Docker, env: Env, local: bool) -> tuple[dict[str, Any], str]:
    """An environment's data for ls and status, with its memory kills, and the kills as words ("" none)."""
    kills = memory_kills(docker, env.containers, local)
    return {**env.to_dict(), "memory_kills": kills.to_dict()}, kills_text(kills, env.limits)


def _owner() -> int:
    return environment.invoker()


def _find(docker: Docker, name: Optional[str], only_here: bool = False) -> Env:
    return find(docker, name, _owner(), Path.cwd(), only_here=only_here)


@click.command(name="ls")
@click.option("--all", "everyone", is_flag=True, help="Every user's environments, not only yours.")
@click.option("--hosts", "host_names", metavar="CTX,CTX", help="Ask these docker contexts' engines (servers), "
              "in parallel; one that does not answer is said, not an error.")
@click.option("--all-hosts", is_flag=True, help="Ask the engine of every docker context (`docker context ls`).")
@global_options
def ls(everyone: bool, host_names: Optional[str], all_hosts: bool, **_: Any) -> Result:
    """Your environments on this engine, or on several servers (--hosts, --all-hosts): state, GPUs,
    ports (read from container labels)."""
    owner = None if everyone else _owner()
    if host_names is not None or all_hosts:
        return _ls_hosts(owner, [n.strip() for n in (host_names or "").split(",") if n.strip()], all_hosts)
    docker, local = _engine()
    envs = environments(docker, owner)
    described = [_described(docker, e, local) for e in envs]
    data = {"environments": [d for d, _ in described]}
    return Result(data, lambda c: _table(c, envs, [text for _, text in described]))


def _ls_hosts(owner: Optional[int], names: list[str], every: bool) -> Result:
    """`ls` over docker contexts: {"hosts": [{host, endpoint, error, environments}]}; exit 0 while one answers."""
    if not names and not every:
        raise BadInput("--hosts names no docker context", "gpuenv ls --hosts gpu1,gpu2 (`docker context ls` lists "
                       "them), or gpuenv ls --all-hosts")
    client = next(iter(clients_on_path()), "docker")
    answers = each_host(client, hosts.chosen(client, names, every), lambda docker, _: environments(docker, owner))
    data = {"hosts": [{"host": a.host.name, "endpoint": a.host.endpoint, "error": a.error or None,
                       "environments": [e.to_dict() for e in a.value or []]} for a in answers]}
    if answers and not any(a.ok for a in answers):
        raise EngineError("no docker context's engine answered: " + "; ".join(f"{a.host.name}: {a.error}"
                                                                               for a in answers),
                          "check each with `docker --context NAME info`")
    return Result(data, lambda c: _hosts_table(c, answers))


def _hosts_table(console: Console, answers: list[HostAnswer[list[Env]]]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("HOST", "NAME", "STATE", "GPU", "LIMITS", "PORTS", "IMAGE"):
        table.add_column(column)
    for a in answers:
        if a.ok and not a.value:
            table.add_row(escape(a.host.name), "-", "none", "", "", "", "")
        for e in a.value or []:
            table.add_row(escape(a.host.name), *_row(e)[:6])
    console.print(table)
    for a in answers:
        if not a.ok:
            console.print(f"[bold]{escape(a.host.name)}[/bold] ({escape(a.host.endpoint)}): [red]no answer[/red]: "
                          f"{escape(a.error)}", soft_wrap=True)


def _table(console: Console, envs: list[Env], kills: list[str]) -> None:
    if not envs:
        console.print("no environments here (gpuenv up starts one)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "GPU", "LIMITS", "PORTS", "IMAGE", "WORKSPACE"):
        table.add_column(column)
    for e in envs:
        table.add_row(*_row(e))
    console.print(table)
    for e, text in zip(envs, kills):
        if text:
            console.print(f"[yellow]{escape(e.name)}: {escape(text)}[/yellow]")


def _row(e: Env) -> tuple[str, str, str, str, str, str, str]:
    """NAME, STATE, GPU, LIMITS, PORTS, IMAGE, WORKSPACE of one environment, escaped for the table."""
    ports = ", ".join(f"{s} {h}:{p}" for s, h, p, _ in e.ports())
    gpu = e.label("gpu-mode") + ("" if e.label("gpus") in ("", "none") else f" ({e.label('gpus')})")
    return (escape(e.name), e.state, gpu, e.limits.describe(), escape(ports), escape(e.image),
            escape(e.label("workspace")))


@click.command()
@click.argument("env", required=False)
@global_options
def status(env: Optional[str], **_: Any) -> Result:
    """One environment in detail: containers, health, ports, GPU mode, files."""
    docker, local = _engine()
    found = _find(docker, env)
    data, kills = _described(docker, found, local)

    def show(c: Console) -> None:
        health = f" ({found.health()})" if found.health() else ""
        c.print(f"[bold]{escape(found.name)}[/bold]  {found.state}{health}")
        for key in ("project", "image", "gpu_mode", "gpus", "files", "workspace"):
            c.print(f"  {key:<10} {escape(str(data[key]))}")
        c.print(f"  limits     each container: {found.limits.describe()}")
        if kills:
            c.print(f"  [yellow]memory     {escape(kills)}[/yellow]")
        for p in data["ports"]:
            c.print(f"  port       {p['service']}: {p['host']}:{p['port']} -> {p['container_port']}")
        c.print(f"  containers {escape(', '.join(data['containers']))}")
    return Result(data, show)


@click.command()
@click.argument("env", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default="200", show_default=True, help="Lines from the end ('all' for every line).")
@click.option("--service", help="Another service's log (jupyter, gateway, ssh).")
def logs(env: Optional[str], follow: bool, tail: str, service: Optional[str]) -> int:
    """The environment's log (its main service, or --service)."""
    docker = _docker()
    found = _find(docker, env)
    name = _container(found, service)
    return docker.interactive("logs", "--tail", tail, *(["--follow"] if follow else []), name)


@click.command()
@click.argument("env", required=False)
@click.option("--service", help="Another service's container.")
def shell(env: Optional[str], service: Optional[str]) -> int:
    """A bash shell inside the environment, as your user, in the workspace."""
    docker = _docker()
    found = _find(docker, env)
    tty = ["-it"] if sys.stdin.isatty() and sys.stdout.isatty() else ["-i"]
    return docker.interactive("exec", *tty, _container(found, service), "bash", "-l")


@click.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-e", "--env", "env", help="The environment (default: this folder's, or your only one).")
@click.option("--service", help="Another service's container.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@global_options
def exec_(env: Optional[str], service: Optional[str], command: tuple[str, ...], **_: Any) -> int:
    """Run COMMAND inside the environment; its exit code is gpuenv's.

    \b
    gpuenv exec python train.py --epochs 3
    gpuenv exec -e vision -- nvidia-smi
    Options after COMMAND's first word are COMMAND's (`gpuenv exec python x.py --json`); --json and
    --debug before it are gpuenv's own (its errors as one JSON document).
    """
    docker = _docker()
    found = _find(docker, env)
    tty = ["-it"] if sys.stdin.isatty() and sys.stdout.isatty() else ["-i"]
    return docker.interactive("exec", *tty, _container(found, service), *command)


@click.command()
@click.argument("env", required=False)
@click.option("--volumes", is_flag=True, help="Also remove its volumes (sshd's host keys; on Kubernetes its claims, "
              "the workspace's too).")
@cluster_options
@global_options
def down(env: Optional[str], volumes: bool, target: str, namespace: Optional[str], kube_context: Optional[str],
         **_: Any) -> Result:
    """Stop and remove the environment's containers (the image and your files stay).

    \b
    gpuenv down --on kubernetes     this folder's kubernetes.yaml: its StatefulSet, Service and Secret deleted
                                    (its claims only with --volumes), the port-forward ended
    gpuenv down --on slurm          this folder's environment's Slurm jobs cancelled
    """
    if target == "kubernetes":
        if env:
            raise BadInput("`down --on kubernetes` takes no name: it deletes what this folder's kubernetes.yaml names",
                           "run it in the environment's folder")
        return down_on_kubernetes(spec_path(None), namespace, kube_context, volumes)
    if namespace or kube_context:
        raise BadInput("--namespace and --context go with --on kubernetes", "add --on kubernetes, or leave them out")
    if target == "slurm":
        if env:
            raise BadInput("`down --on slurm` takes no name: it cancels the jobs of this folder's environment",
                           "run it in the environment's folder, or cancel by id: gpuenv cancel JOBID")
        return down_on_slurm(spec_path(None))
    docker = _docker()
    found = _find(docker, env, only_here=True)       # never "your only one" from another folder
    removed = environment.down(docker, found, volumes) + _close_tunnel(found.project)
    data = {"name": found.name, "removed": removed}
    return Result(data, lambda c: c.print(f"[bold]{escape(found.name)}[/bold] is down: removed "
                                          + escape(", ".join(removed))))


@click.command()
@click.argument("env", required=False)
@global_options
def rm(env: Optional[str], **_: Any) -> Result:
    """Remove the environment: its containers, volumes, images and build log, and a request's files in
    the state folder (your gpuenv.toml, its files and your workspace stay). Also after `down`."""

    docker = _docker()
    found, remains = _running_or_left(docker, env, paths.request_specs())
    removed = environment.rm(docker, found, remains, paths.request_specs()) + _close_tunnel(remains.project)
    name = found.name if found is not None else remains.project
    data = {"name": name, "project": remains.project, "removed": removed}
    return Result(data, lambda c: c.print(f"[bold]{escape(name)}[/bold] removed: "
                                          + escape(", ".join(removed) or "nothing was left")))


def _close_tunnel(project: str) -> list[str]:
    """The ssh tunnel `up --tunnel` left open for the environment, closed (as removed: "ssh tunnel (pid N)")."""
    closed = tunnel.close(state_file(project))
    return [f"ssh tunnel (pid {closed.pid})"] if closed is not None else []


def _running_or_left(docker: Docker, name: Optional[str], state: Path) -> tuple[Optional[Env], Remains]:
    """(Env or None, Remains): the environment by its containers, else by the files it left (after
    down). With no name, only this folder's: rm never takes "your only environment" from elsewhere."""
    try:
        found = _find(docker, name)
    except BadInput:
        remains = left_behind(name, Path.cwd(), state)
        if remains is None:
            raise
        return None, remains
    if name or belongs_here(found, Path.cwd()):
        return found, remains_of(found)
    remains = left_behind(name, Path.cwd(), state)
    if remains is not None:
        return None, remains
    raise BadInput(f"no environment belongs to this folder ({Path.cwd()}); {found.name} is elsewhere",
                   f"name the one to remove: gpuenv rm {found.name}")


def _container(found: Env, service: Optional[str]) -> str:
    if service is None:
        return found.main_name
    for c in found.containers:
        if found.label("service", c) == service:
            return c.get("Name", "").lstrip("/")
    names = ", ".join(found.label("service", c) for c in found.containers)
    raise BadInput(f"{found.name} has no service '{service}'", f"its services: {names}")


