"""The processes that use a host's GPUs, as the observation `gpu-processes.txt` saw them (host/observe.py),
and the container each runs in, found from its /proc/PID/cgroup.

Pure: parsed from text, so it is tested on real cgroup files of this engine's containers and on lines
recorded elsewhere. Everything here came from another host's /proc: every field is checked, a line that
is not what the observation prints is left out, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# A container's id as engines write it into cgroup paths: 64 hex digits, alone in a path element or
# inside one, after a prefix (docker-, cri-containerd-, libpod-, crio-) and before a suffix (.scope).
_CONTAINER_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass(frozen=True)
class ProcessRecord:
    """One process, as the observation saw it."""

    pid: int
    uid: Optional[int]              # its real UID; None where /proc did not say
    user: str                       # that UID's name on its host; "" where it has none
    cgroup: str                     # /proc/PID/cgroup, as it was
    command: tuple[str, ...]        # /proc/PID/cmdline, split at NUL (empty for a kernel thread)

    @property
    def container_id(self) -> Optional[str]:
        return container_id(self.cgroup)


def parse_records(text: str) -> dict[int, ProcessRecord]:
    """The lines "PID UID USER CGROUP-HEX CMDLINE-HEX" of `gpu-processes.txt`, by PID."""
    found: dict[int, ProcessRecord] = {}
    for line in text.splitlines():
        record = _record(line.split(" "))
        if record is not None:
            found[record.pid] = record
    return found


def _record(fields: list[str]) -> Optional[ProcessRecord]:
    if len(fields) != 5 or not fields[0].isdigit():
        return None
    pid, uid, user, cgroup, cmdline = fields
    if not _HEX.fullmatch(cgroup) or not _HEX.fullmatch(cmdline):
        return None
    words = tuple(w for w in _text(cmdline).split("\0") if w) if cmdline else ()
    return ProcessRecord(int(pid), int(uid) if uid.isdigit() else None, "" if user == "-" else user,
                         _text(cgroup), words)


def _text(hexed: str) -> str:
    return bytes.fromhex(hexed).decode("utf-8", errors="replace")


def container_id(cgroup: str) -> Optional[str]:
    """The id of the container a process runs in, from its /proc/PID/cgroup, or None (not in one).

    Every form engines write holds the id as 64 hex digits in the path: cgroup v1
    `12:memory:/docker/<id>`, v2 `0::/system.slice/docker-<id>.scope` (systemd driver) or
    `0::/docker/<id>` (cgroupfs), Kubernetes `.../kubepods/burstable/pod<uid>/<id>` or
    `...-pod<uid>.slice/cri-containerd-<id>.scope`. A container inside a container (docker in docker)
    names both: the innermost, the last, is the one the process runs in."""
    last: Optional[str] = None
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        found = _CONTAINER_ID.findall(path)
        if found:
            last = found[-1]
    return last


def parse_passwd(text: str) -> dict[int, str]:
    """User names by UID from `passwd.txt` ("NAME:UID" lines); the first name of a UID wins."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        name, _, uid = line.strip().partition(":")
        if name and uid.isdigit():
            names.setdefault(int(uid), name)
    return names


_SECRET = re.compile(r"(?i)(token|passw(?:or)?d|secret|api[_-]?key|auth)")


def shown_command(words: tuple[str, ...], limit: int = 160) -> str:
    """A command line to show to others: the value of any argument whose name says it is a secret
    (`--token=...`, `--NotebookApp.token ...`, `PASSWORD=...`) replaced by ***; cut at `limit`."""
    shown: list[str] = []
    hide_next = False
    for word in words:
        if hide_next:
            shown.append("***")
            hide_next = False
            continue
        name, eq, _ = word.partition("=")
        if eq and _SECRET.search(name):
            shown.append(f"{name}=***")
        else:
            shown.append(word)
            hide_next = word.startswith("-") and not eq and bool(_SECRET.search(word))
    text = " ".join(shown)
    return text if len(text) <= limit else text[:limit - 1] + "…"
