"""Host ports: the spec's port when it is free on the bind address, else the next free one, said clearly.

A port counts as taken when something listens on it here (a bind() test on the address), or when a
container of this engine publishes it (even a stopped container that would take it back on restart is
not counted: `docker start` would fail, not us). Two users on one server who both ask for 8888 get
8888 and 8889, and each is told which.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Optional

from gpuenv.errors import GpuenvError

if TYPE_CHECKING:
    from gpuenv.render.recipe import PortService
    from gpuenv.run.docker import ContainerInspect


@dataclass(frozen=True)
class Port:
    wanted: int
    got: int
    taken_by: str = ""           # who holds `wanted`, when got != wanted

    @property
    def moved(self) -> bool:
        return self.got != self.wanted


class ServicePort(NamedTuple):
    """The host port one service got (`gpuenv up`)."""

    service: PortService  # jupyter, gateway, ssh; render.recipe.ACCESS_PORTS for a port of access.ports
    port: Port


def free(address: str, port: int) -> bool:
    """True when a listener could bind `address:port` now."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as servers bind: TIME_WAIT is no owner
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise GpuenvError(f"cannot test port {port} on {address}: {exc}",
                              "check access.bind in gpuenv.toml: it must be an address of this host") from None
    return True


def choose(address: str, wanted: Iterable[int], published: Callable[[], dict[int, str]],
           avoid: Iterable[int] = (), free: Callable[[str, int], bool] = free) -> list[Port]:
    """A host port for each wanted one, in order. `published()` maps ports that running containers
    publish to the container's name (asked only when a port is taken, to name its owner); `avoid` are
    ports this run already holds; `free(address, port)` says whether a port is free (a bind() test
    here; for another host's engine, what its containers publish)."""
    used = set(avoid)
    owners: Optional[dict[int, str]] = None
    chosen = []
    for port in wanted:
        before = set(used)
        got = _next_free(address, port, before, free)
        used.add(got)
        if got != port and owners is None:
            owners = published()
        if got == port:
            owner = ""
        elif owners and port in owners:
            owner = f"container {owners[port]}"
        else:
            owner = "another port of this environment" if port in before else "another program"
        chosen.append(Port(port, got, owner))
    return chosen


def _next_free(address: str, port: int, skip: set[int], free: Callable[[str, int], bool] = free) -> int:
    for candidate in range(port, min(port + 200, 65536)):
        if candidate not in skip and free(address, candidate):
            return candidate
    raise GpuenvError(f"no free port on {address} from {port} to {min(port + 199, 65535)}",
                      "free one, or set another port in gpuenv.toml")


def published_ports(containers: Iterable[ContainerInspect]) -> dict[int, str]:
    """Host ports published by running containers (from `docker inspect`), with the container's name."""
    found: dict[int, str] = {}
    for c in containers:
        if not (c.get("State") or {}).get("Running"):
            continue
        for bindings in ((c.get("NetworkSettings") or {}).get("Ports") or {}).values():
            for b in bindings or ():
                port = _int(b.get("HostPort"))
                if port:
                    found.setdefault(port, c.get("Name", "").lstrip("/"))
    return found


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text and text.isdigit() else None
