"""What in a spec opens this host or its environment wider than gpuenv's defaults do: the warnings
`up` gives before it starts anything. Pure: the caller gives the container's UID and this host's
addresses (host/addresses.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuenv.spec.model import EnvSpec

ALL_ADDRESSES = ("0.0.0.0", "::")


def warnings(spec: EnvSpec, uid: int, addresses: list[str]) -> list[str]:
    """Sentences to warn with; [] for a spec that keeps the defaults' safety."""
    found = [_root(spec.workspace.user)] if uid == 0 else []
    if spec.access.bind in ALL_ADDRESSES and _publishes(spec):
        found.append(_open(spec.access.bind, addresses))
    return found


def _root(user: str) -> str:
    why = (f'workspace.user = "{user}" runs the container as root' if user != "host" else
           'gpuenv runs as root here, so the container does too (workspace.user = "host" is root\'s UID)')
    fix = ('workspace.user = "host" runs it as you' if user != "host" else
           "run gpuenv as yourself (in the docker group), or through sudo, which keeps your UID")
    return (f"{why}: what it writes in the workspace belongs to root, and whoever gets in (a token, an SSH key) "
            f"is root in a container that has this host's folders mounted; {fix}")


def _open(bind: str, addresses: list[str]) -> str:
    shown = [a for a in addresses if bind == "::" or ":" not in a]
    where = ", ".join(shown) if shown else "every address of this host"
    return (f'access.bind = "{bind}": the ports are open to other machines, at {where} (Docker\'s published '
            "ports pass the host's firewall, ufw included), and anyone with the token gets in; bind = "
            '"127.0.0.1" with an SSH tunnel keeps them to this host')


def _publishes(spec: EnvSpec) -> bool:
    access = spec.access
    return bool(access.jupyter or access.gateway or access.ssh or access.ports)
