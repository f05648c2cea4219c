"""Small, cached helpers over version strings as the knowledge tables write them."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from packaging.specifiers import SpecifierSet
from packaging.version import Version


@lru_cache(maxsize=4096)
def V(text: str) -> Version:  # noqa: N802 - reads like a literal
    return Version(text)


@lru_cache(maxsize=1024)
def spec(text: str) -> SpecifierSet:
    return SpecifierSet(text)


def matches(specifier: str, version: str) -> bool:
    """Does `version` fall in `specifier` ("" matches everything); pre-releases count."""
    if not specifier:
        return True
    return spec(specifier).contains(V(version), prereleases=True)


def major_minor(text: str) -> str:
    """ "8" -> "8.0", "11.8.0" -> "11.8", "12" -> "12.0"."""
    parts = text.split(".")
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else '0'}"


def major(text: str) -> int:
    return int(text.split(".")[0])


def minor_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())





def cc_to_sm(cc: str) -> str:
    """ "9.0" -> "sm_90"."""
    a, b = cc.split(".")
    return f"sm_{a}{b}"


def sm_to_cc(sm: str) -> tuple[int, int]:
    """ "sm_86" -> (8, 6), "compute_90" -> (9, 0), "sm_100a" -> (10, 0), "sm_120" -> (12, 0)."""
    digits = "".join(ch for ch in sm.split("_", 1)[1] if ch.isdigit())
    return int(digits[:-1]), int(digits[-1])


def python_range(pythons: Iterable[str]) -> str:
    """ ["2.7", "3.4", "3.5", "3.6"] -> "2.7, 3.4-3.6" (runs of consecutive minors)."""
    items = sorted(set(pythons), key=minor_key)
    groups: list[list[str]] = []
    for item in items:
        if groups and _next(groups[-1][-1]) == item:
            groups[-1].append(item)
        else:
            groups.append([item])
    return ", ".join(g[0] if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)


def _next(python: str) -> str:
    a, b = python.split(".")
    return f"{a}.{int(b) + 1}"
