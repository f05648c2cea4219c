"""Region presets of mirrors (kb/data/mirrors.toml): what `[network] preset = "cn"` fills in.

A preset only fills settings the spec leaves unset; spec/model.py applies it. A row whose url is ""
says the preset deliberately sets nothing there (its `note` says why: no reliable public mirror).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from gpuenv.kb.tables import KbError, load_table

SETTINGS = ("pip_index", "apt_mirror", "pytorch_wheels", "registry_mirror")
PYTORCH_WHEELS = "https://download.pytorch.org/whl"    # what a pytorch_wheels mirror stands in for


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    values: tuple[tuple[str, str], ...]       # (setting, url) it fills; url "" = deliberately none
    notes: tuple[tuple[str, str], ...]        # (setting, why), for the settings that have a note
    sources: tuple[tuple[str, str], ...]      # (setting, the page it was read from)

    def fills(self) -> dict[str, str]:
        """The settings this preset gives a value, by name."""
        return {k: v for k, v in self.values if v}


@lru_cache(maxsize=None)
def presets() -> dict[str, Preset]:
    table = load_table("mirrors")
    found = {}
    for row in table["preset"]:
        mine = [m for m in table["mirror"] if m["preset"] == row["name"]]
        found[row["name"]] = Preset(
            row["name"], row["description"],
            tuple((m["setting"], m["url"]) for m in mine),
            tuple((m["setting"], m["note"]) for m in mine if m.get("note")),
            tuple((m["setting"], m["source"]) for m in mine))
    _check(table, found)
    return found


def _check(table: dict, found: dict[str, Preset]) -> None:
    for row in table["mirror"]:
        if row["preset"] not in found or row["setting"] not in SETTINGS:
            raise KbError(f"knowledge table mirrors: row {row['preset']}/{row['setting']} names an unknown "
                          f"preset or setting (settings: {', '.join(SETTINGS)})", "reinstall gpuenv")


def preset(name: str) -> Preset:
    """The preset called `name`; ValueError naming the known ones otherwise."""
    known = presets()
    if name not in known:
        listed = "; ".join(f'"{p.name}" ({p.description})' for p in known.values())
        raise ValueError(f"is not a preset gpuenv knows; known presets: {listed}")
    return known[name]


def mirrored_wheel_url(url: str, mirror: str, others: Sequence[tuple[str, str]] = ()) -> str:
    """A download.pytorch.org/whl URL (index, find-links page or wheel) on the mirror instead; any other
    URL under an upstream prefix of `others` ((upstream, mirror) pairs: network.wheel_mirrors, e.g. PyG's
    data.pyg.org/whl) on that mirror."""
    if mirror and url.startswith(PYTORCH_WHEELS + "/"):
        return mirror.rstrip("/") + url[len(PYTORCH_WHEELS):]
    for upstream, copy in others:
        upstream = upstream.rstrip("/")
        if url == upstream or url.startswith(upstream + "/"):
            return copy.rstrip("/") + url[len(upstream):]
    return url


def report(network: object) -> dict:
    """What a spec's preset did, for `spec check` and `plan`: {} without a preset, else its name, the
    settings it filled, and those it deliberately left unset with the reason."""
    name = getattr(network, "preset", None)
    if not name:
        return {}
    chosen = presets()[name]
    notes = dict(chosen.notes)
    left = {k: notes.get(k, "") for k, v in chosen.values if not v and getattr(network, k, None) is None}
    return {"preset": name, "description": chosen.description, "filled": dict(getattr(network, "filled", {})),
            "not_set": left}


def report_lines(found: dict) -> list[str]:
    """The same, as lines for people."""
    if not found:
        return []
    lines = [f"network preset \"{found['preset']}\" ({found['description']}):"]
    lines += [f"  filled {k} = {v}" for k, v in found["filled"].items()]
    lines += [f"  left {k} unset: {why}" for k, why in found["not_set"].items()]
    if not found["filled"]:
        lines.append("  filled nothing: the spec sets every mirror itself")
    return lines
