"""Loading and schema-checking the knowledge tables in `kb/data/` (the one place that opens them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import stat
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gpuenv import paths
from gpuenv.errors import GpuenvError
from gpuenv.kb.schema import SCHEMAS
from gpuenv.tomlcompat import tomllib

Row = dict[str, Any]                 # one row of a table, as its file gives it
Table = dict[str, tuple[Row, ...]]   # a table file: its arrays of rows, by name


class KbError(GpuenvError):
    """A knowledge table shipped with gpuenv is missing or malformed."""


_REINSTALL = "reinstall gpuenv (or run `gpuenv kb refresh`); if it persists, report it with `gpuenv --version`"
_COMMON = {"source": "str", "retrieved": "date", "note": "str?"}


@lru_cache(maxsize=None)
def load_table(name: str) -> Table:
    """Rows of `kb/data/<name>.toml` (or `.json`), by array name, every row checked against its schema."""
    data = parse_table(name, _read(name))
    return {key: tuple(rows) for key, rows in data.items()}


def parse_table(name: str, text_and_kind: tuple[str, str]) -> dict[str, list[Row]]:
    """The table's rows, checked; from the parse cache when this exact text was parsed and checked before
    (TOML parsing and the checks are most of `gpuenv plan`'s own start-up: ~45 ms for all tables)."""
    key = _cache_key(name, text_and_kind)
    found = _cached(name, key)
    if found is not None:
        return found
    rows = _parse_checked(name, text_and_kind)
    _keep(name, key, rows)
    return rows


def _parse_checked(name: str, text_and_kind: tuple[str, str]) -> dict[str, list[Row]]:
    text, kind = text_and_kind
    try:
        if kind == "json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are both ValueErrors
        raise KbError(f"knowledge table {name}.{kind} is not valid {kind.upper()}: {exc}", _REINSTALL) from exc
    schema = SCHEMAS.get(name)
    if schema is None:
        raise KbError(f"knowledge table {name} has no schema in kb/schema.py", _REINSTALL)
    data.pop("meta", None)
    for key in data:
        if key not in schema:
            raise KbError(f"knowledge table {name}: unknown array '{key}' (known: {', '.join(schema)})", _REINSTALL)
    return {key: _checked_rows(name, key, data.get(key, [])) for key in schema}


# The parse cache: each table's checked rows, pickled under a key of its exact text, its schema and this
# module's own code, in the user's cache folder. Only a file of this user's, writable by nobody else, is
# read (a pickle runs code when loaded); any trouble with the cache means parsing the text, never an error.
_CACHE_FORMAT = "1"


@lru_cache(maxsize=1)
def _checks_code() -> str:
    """This module's source: a change to the checks (an upgrade of gpuenv) makes every entry stale."""
    try:
        return Path(__file__).read_text("utf-8")
    except OSError:
        return _CACHE_FORMAT


def _cache_dir() -> Path:
    return paths.cache_dir() / "kb-tables"


def _cache_key(name: str, text_and_kind: tuple[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (_checks_code(), name, text_and_kind[1], repr(SCHEMAS.get(name)), repr(_COMMON), text_and_kind[0]):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:32]


def _cached(name: str, key: str) -> "dict[str, list[Row]] | None":
    path = _cache_dir() / f"{name}-{key}.pickle"
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            found = pickle.load(f)
    except Exception:  # none yet, unreadable, or written by another version: parse the text instead
        return None
    return found if isinstance(found, dict) else None


def _keep(name: str, key: str, rows: dict[str, list[Row]]) -> None:
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in folder.glob(f"{name}-*.pickle"):      # an older text's rows are of no further use
            old.unlink(missing_ok=True)
        tmp = folder / f".{name}-{key}-{os.getpid()}.tmp"       # this process's own, then renamed into place
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "wb") as f:
            pickle.dump(rows, f, protocol=4)
        os.replace(tmp, folder / f"{name}-{key}.pickle")
    except OSError:
        pass  # a read-only or full home: the next start parses again


# Derived tables a user may refresh (`gpuenv kb refresh`): a valid copy in user_kb_dir() wins.
_USER_TABLES = ("pypi",)


def user_kb_dir() -> Path:
    """$GPUENV_KB_DIR, else ${XDG_DATA_HOME:-~/.local/share}/gpuenv/kb."""
    if os.environ.get("GPUENV_KB_DIR"):
        return Path(os.environ["GPUENV_KB_DIR"]).expanduser()
    return paths.data_dir() / "kb"


def _read(name: str) -> tuple[str, str]:
    if name in _USER_TABLES:
        try:
            text = (user_kb_dir() / f"{name}.json").read_text("utf-8")
            parse_table(name, (text, "json"))
            return text, "json"
        except (OSError, UnicodeDecodeError, KbError):
            pass  # none, or unusable: the shipped table
    folder = resources.files("gpuenv.kb").joinpath("data")
    for kind in ("toml", "json"):
        try:
            return folder.joinpath(f"{name}.{kind}").read_text("utf-8"), kind
        except FileNotFoundError:
            continue
    raise KbError(f"knowledge table {name} is missing from the package", _REINSTALL)


def _checked_rows(name: str, key: str, rows: Any) -> list[Row]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise KbError(f"knowledge table {name}: '{key}' must be an array of tables", _REINSTALL)
    fields = {**SCHEMAS.get(name, {}).get(key, {}), **_COMMON}
    kinds = [(field, kind.rstrip("?"), kind.endswith("?")) for field, kind in fields.items()]
    for index, row in enumerate(rows):
        _check_provenance(name, key, index, row)
        for field, kind, optional in kinds:
            if field in row:
                if not _good(row[field], kind):
                    raise KbError(f"knowledge table {name} {key}[{index}]: field `{field}` must be {kind}, not "
                                  f"{row[field]!r}", _REINSTALL)
            elif not optional:
                raise KbError(f"knowledge table {name} {key}[{index}]: missing field `{field}` ({kind})", _REINSTALL)
        if len(row) > len(fields) or not fields.keys() >= row.keys():
            extra = ", ".join(sorted(set(row) - set(fields)))
            raise KbError(f"knowledge table {name} {key}[{index}]: unknown field(s) {extra}", _REINSTALL)
    return rows


def _check_provenance(name: str, key: str, index: int, row: Row) -> None:
    source = row.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        raise KbError(f"knowledge table {name} {key}[{index}]: row has no https `source`", _REINSTALL)
    retrieved = row.get("retrieved")
    if isinstance(retrieved, str):  # JSON tables write dates as strings
        try:
            row["retrieved"] = retrieved = dt.date.fromisoformat(retrieved)
        except ValueError:
            pass
    if not isinstance(retrieved, dt.date):
        raise KbError(f"knowledge table {name} {key}[{index}]: row has no `retrieved` date", _REINSTALL)


_TYPES = {"str": str, "bool": bool, "int": int, "date": dt.date}


def _good(value: Any, kind: str) -> bool:
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "table[str]":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, _TYPES[kind]) and not (kind == "int" and isinstance(value, bool))
