"""The GPUs gpuenv's environments hold, read from their containers' labels (run/container.py writes
them): `io.gpuenv.gpus` is "all", "none", or the GPUs the environment was given ("0,1", or UUIDs when
`devices = "free"` chose them). Containers of every user count: on a shared engine another user's
environment holds its GPUs as much as yours.

A claim is an environment that was given named GPUs. One that was given "all" sees every GPU but holds
none in particular: which it uses, its processes tell (holders.py). Only containers that are alive
(created, running, restarting, paused) hold anything.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from gpuenv.host.nvidia import Gpu
from gpuenv.run.docker import ContainerInspect

LABEL = "io.gpuenv"           # run/container.py's; repeated here so that share/ loads no run/container
ALIVE = ("created", "running", "restarting", "paused")


@dataclass(frozen=True)
class Claim:
    """One environment's hold on GPUs, as its earliest container says it."""

    project: str
    env: str                      # the environment's name
    owner: Optional[int]          # the UID of who ran `up`; None where the label is missing or bad
    container: str                # the container's name (its main one, where it has several)
    container_id: str
    created: int                  # when the engine created that container: nanoseconds since 1970 (UTC)
    gpus: tuple[str, ...]         # as the label says them: "all", or indexes and UUIDs

    @property
    def everything(self) -> bool:
        return self.gpus == ("all",)

    def uuids(self, gpus: Sequence[Gpu]) -> frozenset[str]:
        """The UUIDs of the GPUs it names (an index through this host's GPUs; a UUID as it is)."""
        by_index = {str(g.index): g.uuid for g in gpus}
        return frozenset(by_index.get(item, item) for item in self.gpus if item != "all")

    @property
    def order(self) -> tuple[int, str]:
        """Who claimed first: the earlier created container, ties by id."""
        return self.created, self.container_id


def claims(containers: Iterable[ContainerInspect]) -> list[Claim]:
    """The claims of the alive containers among `containers`, one per environment (project)."""
    found: dict[str, Claim] = {}
    for c in containers:
        claim = _claim(c)
        if claim is not None and (claim.project not in found or claim.order < found[claim.project].order):
            found[claim.project] = claim
    return sorted(found.values(), key=lambda c: c.order)


def _claim(c: ContainerInspect) -> Optional[Claim]:
    labels = (c.get("Config") or {}).get("Labels") or {}
    text = labels.get(f"{LABEL}.gpus", "")
    status = (c.get("State") or {}).get("Status", "")
    project = labels.get(f"{LABEL}.project", "")
    if not project or status not in ALIVE or text in ("", "none"):
        return None
    items = tuple(i.strip() for i in text.split(",") if i.strip())
    owner = labels.get(f"{LABEL}.owner", "")
    return Claim(project, labels.get(f"{LABEL}.env", "") or project, int(owner) if owner.isdigit() else None,
                 str(c.get("Name", "")).lstrip("/"), str(c.get("Id", "")), created_ns(str(c.get("Created", ""))),
                 ("all",) if "all" in items else items)


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def created_ns(text: str) -> int:
    """An engine's RFC 3339 time ("2026-12-08T10:11:12.1234Z": Go trims the fraction's trailing zeros, so
    the text does not sort) as nanoseconds since 1970; an unreadable one is the latest possible."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        return 10**30
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 10**9 + int(fraction.ljust(9, "0") or 0)
