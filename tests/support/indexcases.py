"""The cases the recorded index was made for (tests/fixtures/index/cases.toml) and their answers:
scripts/record-index writes each live answer under answers/, the tests replay them offline."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from tests.support.uvrun import pins, uv_compile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "index"


@dataclass(frozen=True)
class Case:
    id: str
    requirements: tuple[str, ...]
    pythons: tuple[str, ...]
    variants: tuple[str, ...] = ()   # variant index tokens, given as --extra-index-url

    def answer_path(self, python: str, root: Path = FIXTURES) -> Path:
        return root / "answers" / f"{self.id}-py{python}.txt"


def load_cases(path: Path = FIXTURES / "cases.toml") -> list[Case]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Case(c["id"], tuple(c["requirements"]), tuple(c["pythons"]), tuple(c.get("variants", ())))
            for c in data["case"]]


def answer(case: Case, python: str, main: str, variant_url: Callable[[str], str],
           env: Mapping[str, str], base: str) -> str:
    """The resolver's answer to `case` on `python` as answers/ stores it (index URLs shown as <index>)."""
    done = uv_compile(case.requirements, python, main, env, extra_index_urls=[variant_url(t) for t in case.variants])
    lines = [f"# {case.id} on Python {python}: {' '.join(case.requirements)}", f"exit {done.returncode}"]
    lines += [f"{name}=={version}" for name, version in sorted(pins(done.stdout).items())]
    lines += ["--- stderr"] + [line.replace(base, "<index>") for line in done.stderr.splitlines() if _stable(line)]
    return "\n".join(lines) + "\n"


def _stable(line: str) -> bool:
    """Not a line that depends on the machine or the clock (the Pythons installed, the time taken)."""
    return not line.startswith(("Resolved ", "warning: The requested Python version"))
