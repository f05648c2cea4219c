"""Loading and schema-checking the knowledge tables in `kb/data/`."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import Any

from gpuenv.errors import GpuenvError
from gpuenv.tomlcompat import tomllib

Row = dict[str, Any]


class KbError(GpuenvError):
    """A knowledge table shipped with gpuenv is missing or malformed."""


@lru_cache(maxsize=None)
def load_table(name: str) -> dict[str, tuple[Row, ...]]:
    """Rows of `kb/data/<name>.toml`, by array name; every row checked for its source and date."""
    text = _read(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KbError(f"knowledge table {name}.toml is not valid TOML: {exc}", _REINSTALL) from exc
    return {key: tuple(_checked_rows(name, key, rows)) for key, rows in data.items()}


_REINSTALL = "reinstall gpuenv; if it persists, report it with the output of `gpuenv --version`"


def _read(name: str) -> str:
    try:
        return resources.files("gpuenv.kb").joinpath("data", f"{name}.toml").read_text("utf-8")
    except FileNotFoundError as exc:
        raise KbError(f"knowledge table {name}.toml is missing from the package", _REINSTALL) from exc


def _checked_rows(name: str, key: str, rows: Any) -> list[Row]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise KbError(f"knowledge table {name}.toml: '{key}' must be an array of tables", _REINSTALL)
    for index, row in enumerate(rows):
        _check_provenance(f"{name}.toml {key}[{index}]", row)
    return rows


def _check_provenance(where: str, row: Row) -> None:
    source = row.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        raise KbError(f"knowledge table {where}: row has no https `source`", _REINSTALL)
    if not isinstance(row.get("retrieved"), dt.date):
        raise KbError(f"knowledge table {where}: row has no `retrieved` date", _REINSTALL)
