"""`gpuenv up` on an engine reached over ssh: the tunnel to its ports, opened for the wait, kept with
`--tunnel` (recorded in the state folder; `gpuenv down` closes it), else closed again and shown as the
command that opens it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from gpuenv import paths
from gpuenv.errors import BadInput
from gpuenv.host.engine import Engine
from gpuenv.run import tunnel
from gpuenv.run.tunnel import SshTarget, Tunnel

if TYPE_CHECKING:
    from gpuenv.environment import Say


def state_file(project: str) -> Path:
    return paths.tunnels() / f"{project}.json"


class Tunnels:
    """The `environment.Forwarder` of one `gpuenv up`: opens the tunnel once the ports are chosen."""

    def __init__(self, target: SshTarget, engine: Engine, project: str, keep: bool, say: Say) -> None:
        self.target, self.endpoint, self.project, self.keep, self.say = target, engine.endpoint, project, keep, say
        self.opened: Optional[Tunnel] = None

    def __call__(self, remote: list[tuple[str, int]]) -> dict[int, int]:
        state = state_file(self.project)
        tunnel.close(state)                                 # an earlier `up --tunnel` of this environment
        forwards = tunnel.local_ports(remote)
        for f in forwards:
            if f.moved:
                self.say(f"port {f.wanted} is taken on this host: the tunnel brings {f.service} to {f.local} instead")
        self.opened = tunnel.open_tunnel(self.target, forwards, self.endpoint, paths.tunnels() / f"{self.project}.log")
        if self.keep:
            tunnel.remember(self.opened, state)
        return {f.remote: f.local for f in forwards}

    def finish(self) -> Optional[dict[str, Any]]:
        """What `up` shows of the tunnel (None when none was opened); one opened only for the wait is closed."""
        if self.opened is None:
            return None
        if not self.keep:
            tunnel.stop(self.opened)
        data = self.opened.to_dict()
        return {**data, "open": self.keep, "pid": data["pid"] if self.keep else None}


def check_asked(keep: bool, endpoint: str) -> None:
    """--tunnel on an engine not reached over ssh is refused before anything is written or started."""
    if keep and tunnel.ssh_target(endpoint) is None:
        raise BadInput(f"--tunnel needs an engine reached over ssh; this one is {endpoint or 'local'}",
                       "DOCKER_HOST=ssh://USER@HOST gpuenv up --tunnel, or a docker context whose endpoint "
                       "is ssh://USER@HOST (docker context create NAME --docker host=ssh://USER@HOST)")


def for_engine(engine: Engine, project: str, keep: bool, say: Say) -> Optional[Tunnels]:
    """The tunnels of an engine reached over ssh; None for any other engine (BadInput when --tunnel
    asks for one there)."""
    check_asked(keep, engine.endpoint)
    target = tunnel.ssh_target(engine.endpoint)
    return Tunnels(target, engine, project, keep, say) if target is not None else None
