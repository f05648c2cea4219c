"""The driver's user-space files and device nodes: what a container needs to use the GPU without the
NVIDIA Container Toolkit (the way nvidia-docker 1.0 did it).

Libraries are found through the linker cache, not a list of names: every library whose real file is
named `*.so.<driver version>` (libcuda.so.1 -> libcuda.so.580.159.04) belongs to the driver, whatever
it is called, so a new library in a new driver is found too. Each is offered under every name the
linker cache knows it by (its soname and its link name) plus its real name. Tools are the `nvidia-*`
programs next to nvidia-smi, less those of the Container Toolkit, the installer and X.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Optional

from gpuenv.host.observe import Observations

LIB_DIR = "/usr/local/nvidia/lib64"   # where a container finds them (the nvidia/cuda images' LD_LIBRARY_PATH)
BIN_DIR = "/usr/local/nvidia/bin"

_NOT_DRIVER_TOOLS = re.compile(r"nvidia-(container-.*|ctk|cdi-hook|docker.*|installer|uninstall|settings|xconfig|"
                               r"bug-report\.sh|sleep\.sh|detector|powerd)$")


@dataclass(frozen=True)
class Library:
    host_path: str              # the real file on the host
    names: tuple[str, ...]      # the names a program loads it by


@dataclass(frozen=True)
class DeviceNode:
    path: str
    major: int
    minor: int


@dataclass(frozen=True)
class DriverFiles:
    libraries: tuple[Library, ...] = ()
    tools: tuple[str, ...] = ()
    devices: tuple[DeviceNode, ...] = ()
    char_links: tuple[str, ...] = ()    # "195:0" for each /dev/char/MAJ:MIN link to an nvidia node
    ml_version: Optional[str] = None    # the version libnvidia-ml.so.1 really is (a mismatch shows here)
    libcuda: Optional[str] = None       # where the linker cache finds libcuda.so.1, really

    def library(self, name: str) -> Optional[Library]:
        return next((lib for lib in self.libraries if name in lib.names), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CacheEntry:
    name: str
    flags: str
    path: str


def parse_ldconfig(text: str) -> list[CacheEntry]:
    """`ldconfig -p`: `\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1`."""
    pattern = re.compile(r"^\s+(\S+) \(([^)]*)\)(?: OS ABI: [^=]*)? => (.+)$")
    return [CacheEntry(m.group(1), m.group(2), m.group(3).strip())
            for m in map(pattern.match, text.splitlines()) if m]


def native_flags(entries: list[CacheEntry]) -> Optional[str]:
    """The flags of this machine's own libraries: those of the first libc.so.6 (not a 32-bit one)."""
    libcs = [e.flags for e in entries if e.name == "libc.so.6"]
    wide = [f for f in libcs if "," in f]
    found = wide or libcs
    return found[0] if found else None


def find_libraries(entries: list[CacheEntry], resolved: dict[str, str], version: str) -> tuple[Library, ...]:
    """The driver's libraries: entries whose real file ends in `.so.<version>`, first in search order."""
    flags = native_flags(entries)
    suffix = f".so.{version}"
    names: dict[str, list[str]] = {}
    taken: set[str] = set()
    for entry in entries:
        real = resolved.get(entry.path, entry.path)
        if (flags and entry.flags != flags) or not real.endswith(suffix) or entry.name in taken:
            continue
        taken.add(entry.name)
        names.setdefault(real, []).append(entry.name)
    return tuple(Library(real, tuple(dict.fromkeys(found + [PurePosixPath(real).name])))
                 for real, found in names.items())


def resolved_paths(obs: Observations, entries: list[CacheEntry]) -> dict[str, str]:
    """Each cache entry's real file, from `realpath -m` run over the entries in the same order."""
    lines = (obs.text("ldconfig-resolved.txt") or "").splitlines()
    if len(lines) != len(entries):
        return {}
    return {e.path: real for e, real in zip(entries, lines)}


_LS_DEVICE = re.compile(r"^c\S*\s+\d+\s+\S+\s+\S+\s+(\d+),\s*(\d+)\s+.*?(/dev/\S+)$")
_LS_CHAR = re.compile(r"(\d+:\d+) -> \S*nvidia")


def parse_devices(text: str) -> tuple[tuple[DeviceNode, ...], tuple[str, ...]]:
    """`ls -l /dev/nvidia* ...` (character devices) and the /dev/char links that point at them."""
    devices, links = [], []
    for line in text.splitlines():
        device = _LS_DEVICE.match(line.strip())
        if device:
            devices.append(DeviceNode(device.group(3), int(device.group(1)), int(device.group(2))))
        link = _LS_CHAR.search(line)
        if link:
            links.append(link.group(1))
    unique = {d.path: d for d in devices}
    return tuple(unique.values()), tuple(links)


def find_tools(obs: Observations) -> tuple[str, ...]:
    listed = (obs.text("nvidia-tools.txt") or "").split()
    return tuple(p for p in listed if not _NOT_DRIVER_TOOLS.search(PurePosixPath(p).name))


def driver_files(obs: Observations, version: Optional[str]) -> DriverFiles:
    entries = parse_ldconfig(obs.text("ldconfig-p.txt") or "")
    resolved = resolved_paths(obs, entries)
    libraries = find_libraries(entries, resolved, version) if version else ()
    devices, links = parse_devices(obs.raw("dev-nvidia.txt"))
    return DriverFiles(libraries, find_tools(obs), devices, links,
                       _real_version(entries, resolved, "libnvidia-ml.so.1"), _first(entries, resolved, "libcuda.so.1"))


def _first(entries: list[CacheEntry], resolved: dict[str, str], name: str) -> Optional[str]:
    flags = native_flags(entries)
    for entry in entries:
        if entry.name == name and (not flags or entry.flags == flags):
            return resolved.get(entry.path, entry.path)
    return None


def _real_version(entries: list[CacheEntry], resolved: dict[str, str], name: str) -> Optional[str]:
    real = _first(entries, resolved, name)
    match = re.search(r"\.so\.(\d+\.\d+(?:\.\d+)?)$", real or "")
    return match.group(1) if match else None
