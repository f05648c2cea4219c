"""Writing a spec back as gpuenv.toml text: short arrays on one line, tables after plain keys."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gpuenv.spec.model import Added, EnvSpec
from gpuenv.spec.problems import toml_inline

_WIDTH = 88


def spec_data(spec: EnvSpec, full: bool = True) -> dict[str, Any]:
    """The spec as plain data: every field (`full`, with what a network preset filled), or only what
    differs from the defaults (and the preset's name, not its mirrors).

    Without `full`, an enabled Jupyter, gateway or SSH table is still written whole, so that the file
    shows its mode, port and authentication.
    """
    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=not full)
    if not full:                      # a network preset's mirrors come from the preset, not the file
        for name in spec.network.filled:
            data.get("network", {}).pop(name, None)
        _leave_in_requirements(data.get("network", {}), spec.network.from_requirements)
    access = spec.access.model_dump(mode="json", exclude_none=True)
    for switch in ("jupyter", "gateway", "ssh"):
        if switch in access:
            data.setdefault("access", {})[switch] = access[switch]
    return data


def to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _table(lines, (), data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: dict[str, Any]) -> None:
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (plain or not tables):
        lines += ["", f"[{'.'.join(path)}]"]
    for key, value in plain.items():
        lines.append(_key_value(key, value))
    for key, value in tables.items():
        _table(lines, path + (key,), value)


def _key_value(key: str, value: Any) -> str:
    line = f"{key} = {toml_inline(value)}"
    if len(line) <= _WIDTH or not isinstance(value, list):
        return line
    items = "".join(f"    {toml_inline(item)},\n" for item in value)
    return f"{key} = [\n{items}]"


def _leave_in_requirements(network: dict[str, Any], added: dict[str, Added]) -> None:
    """What the requirements file put into [network] stays there, out of the written spec."""
    for key, value in added.items():
        kept = [item for item in network.get(key, []) if item not in value] if isinstance(value, list) else None
        if kept:
            network[key] = kept
        else:
            network.pop(key, None)


def spec_hash(spec: EnvSpec) -> str:
    """sha256 of the spec's normal form: two files that mean the same thing hash the same. Values left at
    their defaults are out of it, so a key a later gpuenv adds (with a default that keeps today's meaning)
    changes no spec's hash, its image tag or its lock."""
    text = json.dumps(spec.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
