"""Which PyPI projects are deep-learning frameworks (table `frameworks.toml`)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from gpuenv.kb.tables import load_table


@dataclass(frozen=True)
class FrameworkName:
    family: str
    name: Optional[str]
    pattern: Optional[re.Pattern[str]]

    def matches(self, project: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(project) is not None
        return self.name == project


@lru_cache(maxsize=None)
def _rows() -> tuple[FrameworkName, ...]:
    rows = load_table("frameworks")["framework"]
    return tuple(
        FrameworkName(row["family"], row.get("name"), _compile(row.get("pattern"))) for row in rows
    )


def _compile(pattern: Optional[str]) -> Optional[re.Pattern[str]]:
    return re.compile(pattern) if pattern else None


def canonical(project: str) -> str:
    """A PyPI project name normalized as PEP 503 says: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", project).lower()


def family_of(project: str) -> Optional[str]:
    """The framework family of a PyPI project (`mxnet-cu90mkl` -> `mxnet`), or None."""
    name = canonical(project)
    return next((row.family for row in _rows() if row.matches(name)), None)


def misnomer(project: str) -> Optional[tuple[str, str]]:
    """For a name people type that is not the framework's project: (project to use, why)."""
    name = canonical(project)
    for row in load_table("frameworks").get("misnomer", ()):
        if row["name"] == name:
            return row["use"], row["why"]
    return None


def known_names() -> list[str]:
    """Plain project names of the frameworks (patterns stand for variants and are left out)."""
    return [row.name for row in _rows() if row.name]


def closest(project: str) -> Optional[str]:
    """The known framework project closest to a misspelt name, if any is close."""
    names = known_names() + ["mxnet", "paddlepaddle", "paddlepaddle-gpu", "cupy"]
    found = difflib.get_close_matches(canonical(project), names, n=1, cutoff=0.7)
    return found[0] if found else None
