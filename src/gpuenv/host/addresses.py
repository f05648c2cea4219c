"""This host's own addresses other machines may reach it at: what a port published on 0.0.0.0 or :: is
open on. Loopback, link-local and the engine's own bridges (docker0, br-*, veth*) are left out."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915                      # the IPv4 address of an interface (Linux)
ENGINE_INTERFACES = ("docker", "br-", "veth", "lo")


def reachable(ipv6: bool = True) -> list[str]:
    """The addresses, IPv4 first; [] when none is found (or /proc is not Linux's)."""
    found = [*_ipv4(), *(_ipv6() if ipv6 else [])]
    return [a for a in dict.fromkeys(found) if _routable(a)]


def _ipv4() -> list[str]:
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name.startswith(ENGINE_INTERFACES):
                continue
            try:
                packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:                 # an interface without an IPv4 address
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def _ipv6() -> list[str]:
    """From /proc/net/if_inet6: one line per address, `HEX32 INDEX PREFIX SCOPE FLAGS NAME`."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return []
    rows = [line.split() for line in lines]
    return [str(ipaddress.IPv6Address(bytes.fromhex(r[0]))) for r in rows
            if len(r) == 6 and not r[5].startswith(ENGINE_INTERFACES)]


def _routable(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)
