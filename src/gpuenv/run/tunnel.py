"""SSH tunnels to an environment on a remote engine reached over ssh (DOCKER_HOST=ssh://..., or a docker
context whose endpoint is ssh://): its ports are published on that host's 127.0.0.1, and `ssh -N -L`
brings each to this host's 127.0.0.1.

The tunnel runs the same `ssh` the docker CLI runs for that endpoint, with the same user, port and host
(docker's connhelper: `ssh [-l USER] [-p PORT] -- HOST`), so the user's ~/.ssh/config (identity,
ProxyJump, options) holds for both. `gpuenv up --tunnel` starts it in the background and records it in
the state folder (tunnels/PROJECT.json); `gpuenv down` closes it. A local port already taken moves to the
next free one, and the caller says so.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlparse

from gpuenv.errors import EngineError
from gpuenv.run import ports as host_ports

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SshTarget:
    """Where docker's ssh goes: ssh://[USER@]HOST[:PORT]."""

    host: str
    user: str = ""
    port: Optional[int] = None

    def args(self) -> list[str]:
        """ssh's arguments that name the target, as docker's connhelper gives them."""
        out = ["-l", self.user] if self.user else []
        out += ["-p", str(self.port)] if self.port else []
        return out + ["--", self.host]


def ssh_target(endpoint: str) -> Optional[SshTarget]:
    """The target of an ssh:// engine endpoint; None for any other endpoint (unix, tcp, npipe, none)."""
    try:
        url = urlparse(endpoint)
        port = url.port
    except ValueError:
        return None
    if url.scheme != "ssh" or not url.hostname:
        return None
    return SshTarget(url.hostname, url.username or "", port)


@dataclass(frozen=True)
class Forward:
    service: str                    # jupyter, gateway, ssh, or a port of access.ports
    remote: int                     # the port published on the engine's host (its 127.0.0.1)
    local: int                      # the port on this host's 127.0.0.1
    wanted: int = 0                 # the local port first tried (the remote one), when `local` moved

    @property
    def moved(self) -> bool:
        return bool(self.wanted) and self.wanted != self.local


def command(target: SshTarget, forwards: Sequence[Forward]) -> list[str]:
    """`ssh -N -L LOCAL:127.0.0.1:REMOTE ... HOST`: no remote command; it exits when a forward fails."""
    argv = ["ssh", "-N", "-T", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
            "-o", "ConnectTimeout=30"]
    for f in forwards:
        argv += ["-L", f"{LOOPBACK}:{f.local}:{LOOPBACK}:{f.remote}"]
    return argv + target.args()


def shown(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def local_ports(remote: Sequence[tuple[str, int]]) -> list[Forward]:
    """A local port per remote one: the same number when it is free here, else the next free one."""
    picked = host_ports.choose(LOOPBACK, [port for _, port in remote], lambda: {})
    return [Forward(service, port, p.got, p.wanted) for (service, port), p in zip(remote, picked)]


@dataclass(frozen=True)
class Tunnel:
    """A running `ssh -N -L` (its process group is its own) and what it forwards."""

    pid: int
    argv: tuple[str, ...]
    forwards: tuple[Forward, ...]
    endpoint: str

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "command": shown(self.argv), "endpoint": self.endpoint,
                "forwards": [asdict(f) for f in self.forwards]}


def open_tunnel(target: SshTarget, forwards: Sequence[Forward], endpoint: str, log: Path,
                timeout: float = 45) -> Tunnel:
    """Start the tunnel and wait until every local port listens; EngineError (with ssh's words) when ssh
    exits first or nothing listens within `timeout` seconds (then it is stopped: nothing is left)."""
    argv = command(target, forwards)
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            raise EngineError(f"cannot run ssh for the tunnel: {exc}",
                              "install the OpenSSH client (Debian/Ubuntu: apt-get install openssh-client)") from None
    deadline = time.monotonic() + timeout
    while any(host_ports.free(LOOPBACK, f.local) for f in forwards):
        if proc.poll() is not None or time.monotonic() > deadline:
            _end(proc.pid)
            said = log.read_text(errors="replace").strip()[-600:] or "no output"
            why = f"exited with code {proc.returncode}" if proc.returncode is not None else \
                f"did not listen within {timeout:g} s"
            raise EngineError(f"the ssh tunnel to {target.host} {why}: {said}",
                              f"run it yourself to see why: {shown(argv)}")
        time.sleep(0.1)
    return Tunnel(proc.pid, tuple(argv), tuple(forwards), endpoint)


def remember(tunnel: Tunnel, state: Path) -> None:
    state.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(tunnel.to_dict() | {"argv": list(tunnel.argv)}, indent=2) + "\n")
    tmp.replace(state)


def recorded(state: Path) -> Optional[Tunnel]:
    """The tunnel recorded in `state` while its process still runs that command; None otherwise."""
    try:
        data = json.loads(state.read_text())
        argv = tuple(str(a) for a in data["argv"])
        forwards = tuple(Forward(str(f["service"]), int(f["remote"]), int(f["local"]), int(f.get("wanted") or 0))
                         for f in data["forwards"])
        tunnel = Tunnel(int(data["pid"]), argv, forwards, str(data.get("endpoint") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tunnel if _runs(tunnel.pid, argv) else None


def close(state: Path) -> Optional[Tunnel]:
    """Stop the tunnel recorded in `state` (only when its pid still runs the recorded ssh) and forget it;
    the tunnel stopped, or None when none ran."""
    tunnel = recorded(state)
    if tunnel is not None:
        _end(tunnel.pid)
    state.unlink(missing_ok=True)
    return tunnel


def stop(tunnel: Tunnel) -> None:
    """Stop a tunnel this process opened."""
    _end(tunnel.pid)


def _runs(pid: int, argv: Sequence[str]) -> bool:
    """Whether process `pid` runs the ssh of `argv` (a recycled pid runs something else): an ssh whose
    arguments end with argv's (an `ssh` wrapper on PATH may exec it with options of its own first)."""
    try:
        found = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return False
    tail = list(argv[1:])
    return bool(found) and Path(found[0]).name == "ssh" and found[len(found) - len(tail):] == tail


def _end(pid: int, timeout: float = 5) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)       # our child: reap it
        except ChildProcessError:
            done = 0 if Path(f"/proc/{pid}").exists() else pid
        if done == pid:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
