"""The gpuenv.lock file: TOML next to gpuenv.toml, written whole or not at all.

    version = 1
    spec_sha256 = "..."          the image label io.gpuenv.spec-sha256 of the spec it was made from
    made = "2026-11-22"          gpuenv = "0.7.0"
    [plan]                       the resolver's decisions (gpuenv.resolve.Plan as data): the files are
                                 rendered from it with no planning, so another host renders the same
    [base]   image, digest ("REGISTRY/REPO@sha256:..." or ""), id
    [image]  tag, id, repo_digests: id "" until the image is built (a lock made from the resolution,
             with no build: the first build of it fills in the image, the base and the apt packages)
    [[step]] id, requires (what the Dockerfile step asks for), then [[step.package]] name, version,
             hashes ("sha256:..." of every file of that version on the index; [] with `note` when none),
             index (the index the resolver found it on; absent in locks collected from a built image)
    [[apt]]  name, version: the OS packages the build added to the base
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from gpuenv.errors import BadInput, StorageError
from gpuenv.resolve.plan import Plan
from gpuenv.spec.problems import toml_inline
from gpuenv.tomlcompat import tomllib

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

VERSION = 1
SYSTEM_STEP = "system"     # distributions no pip step installed: the base's, or an OS package's


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    hashes: tuple[str, ...] = ()
    note: str = ""           # why there are no hashes
    index: str = ""          # the index it comes from ("" when the lock was collected from an image)

    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Step:
    id: str                          # "python", "frameworks", "tools", "packages-1", ..., "system"
    requires: tuple[str, ...]        # what the Dockerfile's step names
    packages: tuple[Package, ...]

    @property
    def hashed(self) -> bool:
        return bool(self.packages) and all(p.hashes for p in self.packages)


@dataclass(frozen=True)
class BaseRef:
    image: str
    digest: str = ""                 # "REGISTRY/REPO@sha256:...", "" when no registry knows it
    id: str = ""


@dataclass(frozen=True)
class ImageRef:
    tag: str
    id: str = ""
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lock:
    spec_sha256: str
    made: str
    gpuenv: str
    plan: dict[str, Any]
    base: BaseRef
    image: ImageRef
    steps: tuple[Step, ...]
    apt: tuple[tuple[str, str], ...] = ()
    version: int = VERSION

    def step(self, step_id: str) -> Optional[Step]:
        return next((s for s in self.steps if s.id == step_id), None)

    def distributions(self) -> dict[str, str]:
        """Every distribution of the image, name -> version."""
        return {p.name: p.version for s in self.steps for p in s.packages}


# --- writing --------------------------------------------------------------------------------------

def to_text(lock: Lock) -> str:
    lines = ["# gpuenv.lock: written by `gpuenv lock`; `gpuenv build --locked` builds exactly this, and",
             "# `gpuenv lock --check` says what drifted. Keep it in version control next to gpuenv.toml.",
             f"version = {lock.version}", f"spec_sha256 = {toml_inline(lock.spec_sha256)}",
             f"made = {toml_inline(lock.made)}", f"gpuenv = {toml_inline(lock.gpuenv)}"]
    _table(lines, "plan", lock.plan)
    _table(lines, "base", dataclasses.asdict(lock.base))
    _table(lines, "image", dataclasses.asdict(lock.image))
    for step in lock.steps:
        lines += ["", "[[step]]", f"id = {toml_inline(step.id)}", _array("requires", step.requires)]
        for p in step.packages:
            lines += ["", "[[step.package]]", f"name = {toml_inline(p.name)}", f"version = {toml_inline(p.version)}",
                      _array("hashes", p.hashes)]
            lines += [f"{key} = {toml_inline(value)}" for key, value in (("note", p.note), ("index", p.index)) if value]
    for name, version in lock.apt:
        lines += ["", "[[apt]]", f"name = {toml_inline(name)}", f"version = {toml_inline(version)}"]
    return "\n".join(lines) + "\n"


def _table(lines: list[str], name: str, data: dict[str, Any]) -> None:
    plain = {k: v for k, v in data.items() if not isinstance(v, dict) and not _tables(v)}
    lines += ["", f"[{name}]"] + [_array(k, v) if isinstance(v, (list, tuple)) else f"{k} = {toml_inline(v)}"
                                  for k, v in plain.items() if v is not None]
    for key, value in data.items():
        if isinstance(value, dict):
            _table(lines, f"{name}.{key}", value)
        elif key not in plain:
            for item in value:
                lines.append("")
                lines.append(f"[[{name}.{key}]]")
                lines += [f"{k} = {toml_inline(v)}" for k, v in item.items() if v is not None]


def _tables(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)


def _array(key: str, values: Any) -> str:
    line = f"{key} = {toml_inline(list(values))}"
    if len(line) <= 100:
        return line
    return f"{key} = [\n" + "".join(f"    {toml_inline(v)},\n" for v in values) + "]"


def write(lock: Lock, path: Path) -> None:
    """Write `path` atomically: a reader sees the old lock or the new one, never half of one."""
    text = to_text(lock)
    try:
        handle, temp = tempfile.mkstemp(prefix=".gpuenv.lock.", dir=path.parent)
    except OSError as exc:
        raise StorageError.from_os(exc, path) or exc from None
    try:
        with os.fdopen(handle, "w") as f:
            f.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        storage = StorageError.from_os(exc, path) if isinstance(exc, OSError) else None
        if storage is None:
            raise
        raise storage from None


# --- reading --------------------------------------------------------------------------------------

def read(path: Path) -> Lock:
    """The lock at `path`; BadInput naming the file and the fix when it is missing or malformed."""
    if not path.is_file():
        raise BadInput(f"there is no lock: {path} does not exist",
                       f"make one with `gpuenv lock -f {path.parent / 'gpuenv.toml'}`")
    try:
        return from_data(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "make it again with `gpuenv lock`") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path} is not a gpuenv lock this gpuenv reads: {type(exc).__name__}: {exc}",
                       "make it again with `gpuenv lock`") from None


def from_data(data: dict[str, Any]) -> Lock:
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r}, this gpuenv reads version {VERSION}")
    steps = tuple(Step(s["id"], tuple(s.get("requires", ())),
                       tuple(Package(p["name"], p["version"], tuple(p.get("hashes", ())), p.get("note", ""),
                                     str(p.get("index", "")))
                             for p in s.get("package", ())))
                  for s in data.get("step", ()))
    _check_steps(steps)
    base, image = data["base"], data["image"]
    return Lock(data["spec_sha256"], str(data["made"]), data["gpuenv"], data["plan"],
                BaseRef(base["image"], base.get("digest", ""), base.get("id", "")),
                ImageRef(image["tag"], image.get("id", ""), tuple(image.get("repo_digests", ()))),
                steps, tuple((a["name"], a["version"]) for a in data.get("apt", ())), data["version"])


_STEP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")
_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")
_HASH = re.compile(r"sha(256|384|512):[0-9a-f]+")
_INDEX = re.compile(r"https?://[^\s\"'\\]+")


def _check_steps(steps: tuple[Step, ...]) -> None:
    """A lock's step ids become file names and its pins lines of pip requirements files (issue 15): each
    must be what gpuenv writes, so a lock from elsewhere (a bundle) can add no path, option or line."""
    for step in steps:
        if not _STEP_ID.fullmatch(step.id):
            raise ValueError(f"step id {step.id!r} is not one gpuenv writes")
        for p in step.packages:
            bad = [text for text, form in ((p.name, _NAME), (p.version, _VERSION), *((h, _HASH) for h in p.hashes))
                   if not (isinstance(text, str) and form.fullmatch(text))]
            if p.index and not _INDEX.fullmatch(p.index):
                bad.append(p.index)
            if bad:
                raise ValueError(f"step {step.id}: {bad[0]!r} is not a distribution name, version, hash or index")


# --- the plan as data and back --------------------------------------------------------------------

def plan_data(plan: DataclassInstance) -> dict[str, Any]:
    """A Plan (or any of its dataclasses) as TOML-able data: tuples as lists, None left out."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(plan):
        value = _data(getattr(plan, f.name))
        if value is not None:
            out[f.name] = value
    return out


def lock_plan(plan: Plan) -> dict[str, Any]:
    """The plan as the lock keeps it: its resolution without the pins (the lock's steps hold them)."""
    resolved = plan.resolved
    if resolved is not None:
        plan = dataclasses.replace(plan, resolved=dataclasses.replace(resolved, steps=()))
    return plan_data(plan)


def _data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plan_data(value)
    if isinstance(value, (list, tuple)):
        return [_data(v) for v in value]
    return value


def plan_from_data(data: dict[str, Any]) -> Plan:
    return _build(Plan, data)


D = TypeVar("D", bound="DataclassInstance")


def _build(cls: type[D], data: dict[str, Any]) -> D:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _value(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is getattr(types, "UnionType", typing.Union):
        return _value(args[0], value)
    if origin is tuple:
        return tuple(_value(args[0], v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    return value
