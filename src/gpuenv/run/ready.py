"""Waiting until an environment answers: Jupyter's or the kernel gateway's HTTP API, sshd's banner.

While waiting, the container is watched: one that exits (a bad token setting, a missing library)
stops the wait at once with its last log lines, rather than after the timeout.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

from gpuenv.errors import GpuenvError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never through a proxy: it is local


def answers(kind: str, host: str, port: int, timeout: float = 1.0, token: str = "") -> bool:
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


def wait(kind: str, host: str, port: int, alive: Callable[[], Optional[str]], limit: float = 180.0,
         token: str = "") -> float:
    """Wait until it answers; seconds waited. `alive` returns None while the container runs, else why not."""
    start = time.monotonic()
    delay, checked = 0.05, start
    while True:
        if answers(kind, host, port, token=token):
            return time.monotonic() - start
        gone = None
        if time.monotonic() - checked >= 1.0:                 # the container, once a second
            checked, gone = time.monotonic(), alive()
        if gone is not None:
            raise GpuenvError(f"the container stopped before it answered: {gone}",
                              "its log above says why; `gpuenv logs` shows all of it")
        if time.monotonic() - start > limit:
            raise GpuenvError(f"nothing answered on {host}:{port} within {limit:g} s",
                              "`gpuenv logs` shows what the container is doing; `gpuenv doctor` checks the host")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

