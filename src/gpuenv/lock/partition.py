"""Which distributions each pip step of the Dockerfile installed, from the finished image alone.

Step by step in Dockerfile order, a step owns the dependency closure of what it asks for (Requires-Dist
with their markers, following extras), less what the base and earlier steps already had. What no step
owns came with the base image or an OS package (python3-pip's setuptools): the `system` step.

A distribution an earlier step installed and a later one upgraded is owned by the earlier step, at
its final version; a locked build installs it there at that version, so the image ends the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gpuenv.lock.lockfile import SYSTEM_STEP

if TYPE_CHECKING:
    from gpuenv.resolve.resolved import StepRequires

INSTALLERS = ("pip", "uv")         # what gpuenv's pip steps write in INSTALLER


@dataclass(frozen=True)
class Dist:
    name: str                      # as its metadata spells it
    version: str
    requires: tuple[str, ...] = ()  # Requires-Dist lines
    installer: str = ""             # its INSTALLER file: "pip", "uv", or "" (an OS package's, the base's)

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


def partition(dists: Iterable[Dist], steps: Sequence[StepRequires], already: Iterable[str],
              env: Mapping[str, str], trimmed: str = "tools") -> list[tuple[str, list[Dist]]]:
    """[(step id, the distributions it installed)] in step order, then ("system", the rest).

    A distribution pip installed that no closure reaches was left behind by one that step `trimmed`
    uninstalled after installing (the tools step drops rfc3987-syntax, keeping its lark): it goes
    to that step (the last step when there is none of that name)."""
    by_key = {d.key: d for d in dists}
    seen: set[str] = {canonicalize_name(n) for n in already}
    owned: dict[str, list[str]] = {}
    for step_id, requires in steps:
        owned[step_id] = [k for k in closure(by_key, requires, env) if k not in seen]
        seen.update(owned[step_id])
    left = [k for k, d in by_key.items() if k not in seen and d.installer in INSTALLERS]
    if left and steps:
        owned[trimmed if trimmed in owned else steps[-1][0]] += left
        seen.update(left)
    out = [(step_id, sorted((by_key[k] for k in owned[step_id]), key=lambda d: d.key)) for step_id, _ in steps]
    out.append((SYSTEM_STEP, sorted((d for k, d in by_key.items() if k not in seen), key=lambda d: d.key)))
    return out


def closure(by_key: Mapping[str, Dist], requires: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """The installed distributions `requires` pulls in, in the order they were reached."""
    extras_done: dict[str, set[str]] = {}
    order: list[str] = []
    todo = [(r, "") for r in requires]
    while todo:
        text, extra = todo.pop(0)
        req = _requirement(text)
        if req is None or not _applies(req, env, extra):
            continue
        key = canonicalize_name(req.name)
        dist = by_key.get(key)
        if dist is None:
            continue                  # not installed (an uninstalled one, or another platform's)
        wanted = {""} | {canonicalize_name(e) for e in req.extras}
        new = wanted - extras_done.setdefault(key, set())
        if key not in order:
            order.append(key)
        extras_done[key] |= new
        todo += [(dep, e) for dep in dist.requires for e in sorted(new)]
    return order


def _requirement(text: str) -> Optional[Requirement]:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _applies(req: Requirement, env: Mapping[str, str], extra: str) -> bool:
    """Whether `req` holds here; `extra` is the extra of its dependent being followed ("" for none)."""
    if req.marker is None:
        return True
    try:
        return req.marker.evaluate({**env, "extra": extra})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True                   # a marker this Python cannot judge: kept, as pip would rather install
