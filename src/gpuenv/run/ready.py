"""Waiting until an environment answers: Jupyter's or the kernel gateway's HTTP API, sshd's banner.

While waiting, the container is watched: one that exits (a bad token setting, a missing library) or
restart-loops (the engine restarts it: State.Restarting, a growing RestartCount, while State.Running
stays true) stops the wait at once with its last log lines and the likely cause read from them,
rather than after the timeout.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from gpuenv.errors import NotAnswering

if TYPE_CHECKING:
    from gpuenv.render.recipe import HealthKind
    from gpuenv.run.docker import Docker

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never through a proxy: it is local


def answers(kind: HealthKind, host: str, port: int, timeout: float = 1.0, token: str = "") -> bool:
    """One try: an HTTP server that answers /api (Jupyter, the kernel gateway), or an SSH banner. With
    the service's token (the gateway asks for it even on /api): no refusal in its log."""
    if kind == "ssh":
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False
    request = urllib.request.Request(f"http://{_host(host)}:{port}/api")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with _OPENER.open(request, timeout=timeout) as reply:
            return reply.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)          # it answers; the token is another matter
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Watch:
    """A container being waited on. `restarts`: its RestartCount when the wait began (0 for one
    created now: any restart since is a crash)."""

    docker: Docker
    name: str
    restarts: int = 0

    def trouble(self) -> Optional[str]:
        """Why it cannot answer (it exited, restart-loops, is gone); None while it runs."""
        found = self.docker.inspect("container", self.name)
        if not found:
            return f"{self.name} was removed"
        state, count = found[0].get("State") or {}, int(found[0].get("RestartCount") or 0)
        if state.get("Restarting") or count > self.restarts:
            return (f"{self.name} is restart-looping: it exited with code {state.get('ExitCode')} and the engine "
                    f"restarted it {count - self.restarts} time(s)")
        if not state.get("Running"):
            return f"{self.name} exited with code {state.get('ExitCode')}"
        return None

    def log(self, lines: int = 25) -> str:
        tail = self.docker.run("logs", "--tail", str(lines), self.name, check=False)
        return (tail.stdout + tail.stderr).strip()


# What a container's last lines most often mean, most specific first.
CAUSES = (
    (r"privilege separation directory", "sshd runs as root and its privilege-separation folder /run/sshd is "
     "missing: an image written by an older gpuenv (gpuenv build --no-cache writes a new one)"),
    (r"ssh-host.*belongs to UID|ssh-host.*Permission denied", "the ssh host keys volume belongs to another UID "
     "(the environment's user changed): `gpuenv up` repairs it; `gpuenv down --volumes` makes new keys"),
    (r"no public key at /etc/gpuenv/authorized_keys", "sshd has no public key to accept: "
     "access.ssh.authorized_key names an empty or missing file"),
    (r"no hostkeys available|Could not load host key", "sshd found no usable host key in the ssh-host-keys "
     "volume: `gpuenv down --volumes` then `gpuenv up` makes a new one"),
    (r"Address already in use", "a port inside the container is taken by another process of it"),
    (r"No module named|ModuleNotFoundError|ImportError", "a Python module the service needs is missing or "
     "broken in the image: `gpuenv build --no-cache`"),
    (r"Permission denied|Operation not permitted", "a file or folder the service needs belongs to another user "
     "(workspace.user, or the host folder's owner)"),
    (r"exec format error|not found|No such file", "the service's command or a file it needs is not in the image"),
)


def likely_cause(log: str) -> str:
    for pattern, cause in CAUSES:
        if re.search(pattern, log, re.IGNORECASE):
            return cause
    return "the service's command fails as it starts: its last lines above say why"


def wait(kind: HealthKind, host: str, port: int, watch: Watch, limit: float = 180.0, token: str = "") -> float:
    """Wait until it answers; seconds waited. NotAnswering as soon as the container exits or
    restart-loops, or after `limit` seconds of silence."""
    start = time.monotonic()
    delay, checked = 0.05, start
    while True:
        if answers(kind, host, port, token=token):
            return time.monotonic() - start
        if time.monotonic() - checked >= 0.5:                 # the container, twice a second
            checked = time.monotonic()
            gone = watch.trouble()
            if gone is not None:
                raise _failed(watch, gone)
        if time.monotonic() - start > limit:
            raise _failed(watch, f"nothing answered on {host}:{port} within {limit:g} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _failed(watch: Watch, what: str) -> NotAnswering:
    log = watch.log()
    cause = likely_cause(log) if log else "the container wrote no log"
    return NotAnswering(what, watch.name, log, cause,
                        f"likely cause: {cause}. `gpuenv logs` shows its whole log; `gpuenv doctor` checks the host")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

