"""Checks of the Docker engine and its clients (failure-modes.md rows 1, 3, 4, 15, 40)."""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from gpuenv.host.engine import Engine, check_commands, chosen_elsewhere, engine_words, leave_command, loose_version
from gpuenv.doctor.finding import Context, Finding, check

MIN_FREE_GIB = 20       # a CUDA image and a framework wheel layer take 10-20 GB


def _docker_repo(ctx: Context) -> str:
    distro = ctx.report.system.distro.id
    folder = distro if distro in ("centos", "fedora", "rhel") else "rhel"
    return f"https://download.docker.com/linux/{folder}/docker-ce.repo"


def _restart(ctx: Context) -> str:
    return ctx.sudo("systemctl restart docker")


@check("engine-installed", "a Docker engine is installed")
def engine_installed(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if engine.status != "not-installed":
        return None
    return Finding(
        "engine-installed", "error", "no Docker engine is installed", engine.reason,
        ctx.by_family([ctx.sudo("apt-get update"), ctx.sudo("apt-get install -y docker.io"),
                       ctx.sudo("systemctl enable --now docker")],
                      [ctx.sudo("dnf -y install dnf-plugins-core"),
                       ctx.sudo(f"dnf config-manager --add-repo {_docker_repo(ctx)}"),
                       ctx.sudo("dnf install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin "
                                "docker-compose-plugin"),
                       ctx.sudo("systemctl enable --now docker")]),
        "gpuenv builds and runs environments with Docker.")


@check("engine-running", "the Docker engine answers")
def engine_running(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if engine.status not in ("not-running", "error"):
        return None
    if chosen_elsewhere(engine.endpoint, engine.context):
        return _elsewhere_down(engine)
    systemd = ctx.report.system.services.get("docker", "unknown") != "unknown"
    fix = (ctx.sudo("systemctl start docker"), "docker info") if systemd else (
        ctx.sudo("sh -c 'dockerd >/var/log/dockerd.log 2>&1 &'"), "docker info")
    return Finding("engine-running", "error", "the Docker engine is not running",
                   f"`docker info` said: {engine.reason}", fix,
                   "to start it at boot: " + ctx.sudo("systemctl enable docker") if systemd else "")


def _elsewhere_down(engine: Engine) -> Finding:
    """An engine the user chose (DOCKER_HOST, a context) that does not answer: check it there; starting
    an engine here would not be the one the docker CLI asks."""
    chosen = "DOCKER_HOST" if engine.context == "DOCKER_HOST" else f"the docker context {engine.context}"
    return Finding("engine-running", "error", f"{engine_words(engine.endpoint, engine.context)} does not answer",
                   f"`docker info` ({chosen}) said: {engine.reason}",
                   check_commands(engine.endpoint, engine.context) + (leave_command(engine.context),),
                   f"start the engine at {engine.endpoint or 'that endpoint'} on its host, or point {chosen} at one "
                   f"that runs; `{leave_command(engine.context)}` uses this host's own engine instead.")


@check("docker-permission", "this user may use the Docker engine")
def docker_permission(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if engine.status != "permission":
        return None
    return Finding("docker-permission", "error", "this user may not use the Docker engine's socket",
                   f"`docker info` said: {engine.reason}",
                   ("sudo usermod -aG docker $USER", "newgrp docker   # or log out and in again", "docker info"),
                   "membership of the docker group is as good as root on this host; a rootless engine "
                   "(dockerd-rootless-setuptool.sh install) is the alternative.", 40)


@check("engine-snap", "Docker is not the snap package")
def engine_snap(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if not engine.ok or "/snap/" not in engine.root_dir:
        return None
    return Finding("engine-snap", "error" if ctx.gpu_host else "warning",
                   "Docker is the snap package: its confinement hides the NVIDIA driver's libraries from containers",
                   f"the engine's root directory is {engine.root_dir}",
                   (ctx.sudo("snap remove docker"), ctx.sudo("apt-get install -y docker.io"),
                    ctx.sudo("systemctl enable --now docker")), failure_mode=5)


@check("engine-rootless", "GPUs and a rootless engine")
def engine_rootless(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if not engine.ok or not engine.rootless or not ctx.report.driver.ok:
        return None
    return Finding("engine-rootless", "warning",
                   "the engine is rootless: it cannot set device cgroups, so the NVIDIA runtime fails with "
                   "'devices.allow: permission denied' unless told not to use cgroups",
                   "`docker info` lists name=rootless among its security options",
                   (ctx.sudo("nvidia-ctk config --set nvidia-container-cli.no-cgroups --in-place"),
                    "nvidia-ctk runtime configure --runtime=docker --config=$HOME/.config/docker/daemon.json",
                    "systemctl --user restart docker"),
                   "CDI (nvidia-ctk cdi generate) also works with rootless engines.", 15)


@check("docker-cli-old", "the docker CLI knows --gpus")
def docker_cli_old(ctx: Context) -> Optional[Finding]:
    clients = ctx.report.engine.clients
    if not clients or not clients[0].version or loose_version(clients[0].version) >= Version("19.3"):
        return None
    return Finding("docker-cli-old", "warning",
                   f"the docker CLI {clients[0].version} is older than 19.03: `docker run --gpus` is an unknown flag",
                   f"`{clients[0].path} version` says {clients[0].version}",
                   ctx.by_family([ctx.sudo("apt-get install -y docker.io")],
                                 [ctx.sudo("dnf upgrade -y docker-ce-cli")]),
                   "the legacy form still works: --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all.", 3)


@check("compose", "docker compose can start GPU services")
def compose(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if not engine.ok or not engine.clients:     # compose is looked for next to the clients
        return None
    fix = ctx.by_family([ctx.sudo("apt-get install -y docker-compose-plugin   # Docker's apt repository"),
                         ctx.sudo("apt-get install -y docker-compose          # or Debian/Ubuntu's own (v1.29)")],
                        [ctx.sudo("dnf install -y docker-compose-plugin")])
    if not engine.compose:
        return Finding("compose", "warning", "neither `docker compose` (v2) nor `docker-compose` is installed",
                       "`docker compose version` and `docker-compose version` both failed", fix,
                       "the compose.yaml gpuenv writes (and PyCharm's Docker Compose interpreter) needs one.", 4)
    best = max(engine.compose, key=lambda c: loose_version(c.version))
    if best.generation == "v1" and loose_version(best.version) < Version("1.28"):
        return Finding("compose", "warning",
                       f"docker-compose {best.version} cannot reserve GPUs (device reservations need 1.28 or later)",
                       f"`docker-compose version --short` says {best.version}", fix, "", 4)
    return None


@check("buildkit", "a docker client builds with BuildKit")
def buildkit(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if not engine.ok or engine.buildkit is not None or not engine.clients:
        return None
    listed = ", ".join(f"{c.path} {c.version}" for c in engine.clients)
    return Finding("buildkit", "warning",
                   "no docker client here builds with BuildKit: cache and secret mounts (pip through a TLS proxy "
                   "without leaving the CA in the image) are not available",
                   f"clients on PATH: {listed}; none has the buildx plugin, and clients from 23.0 on need it",
                   ctx.by_family([ctx.sudo("apt-get install -y docker-buildx   # Ubuntu; "
                                           "docker-buildx-plugin from Docker's repository")],
                                 [ctx.sudo("dnf install -y docker-buildx-plugin")]))


@check("disk-space", "room for images under the Docker root")
def disk_space(ctx: Context) -> Optional[Finding]:
    free = ctx.report.system.docker_root_free_bytes
    engine = ctx.report.engine
    if not engine.ok or free is None or free >= MIN_FREE_GIB * 2**30:
        return None
    return Finding("disk-space", "warning",
                   f"only {free / 2**30:.1f} GiB free under {engine.root_dir}: CUDA images and framework wheels "
                   f"need 10-20 GB each",
                   f"free space of the file system that holds {engine.root_dir}",
                   ("docker image prune", "docker builder prune"),
                   "or move the engine's data-root (daemon.json) to a larger disk.")


@check("daemon-json", "the engine's daemon.json is valid")
def daemon_json(ctx: Context) -> Optional[Finding]:
    error = ctx.report.system.daemon_json_error
    if error is None:
        return None
    return Finding("daemon-json", "error", error + ": the engine will not start again after a restart",
                   "read /etc/docker/daemon.json", ("python3 -m json.tool /etc/docker/daemon.json",))

