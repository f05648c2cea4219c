"""The one renderer: a command's Result as human text on a terminal, or one JSON document.

Errors go to stderr as `error: ...` and `hint: ...`; under `--json` the same error is also the
JSON document on stdout, so that a script reads one document whatever happened.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from rich.console import Console

from gpuenv.errors import GpuenvError, SpecError

Human = Callable[[Console], None]

# Control characters that reach a terminal from outside text (a spec, a bundle, an engine's answer) could
# move the cursor, retitle the window or hide what follows: every text printed shows them as \x.. escapes.
# Line breaks and tabs stay; the styles rich adds itself are not in the text and are unaffected.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character but newline and tab written as a visible escape (`\\x1b`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeConsole(Console):
    """A rich Console whose printed strings never carry raw control characters (see `visible`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(visible(o) if isinstance(o, str) else o for o in objects), **kwargs)


@dataclass
class Result:
    """What a command did: data for `--json`, and how to show it to a person."""

    data: dict[str, Any]
    human: Optional[Human] = None
    exit_code: int = 0


@dataclass
class Renderer:
    json_mode: bool = False
    debug: bool = False
    stdout: Console = field(default_factory=lambda: SafeConsole(highlight=False, soft_wrap=True, emoji=False))
    stderr: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True, emoji=False))

    def result(self, result: Result) -> int:
        if self.json_mode:
            self._json({"ok": result.exit_code == 0, **result.data})
        elif result.human is not None:
            result.human(self.stdout)
        return result.exit_code

    def error(self, exc: GpuenvError) -> int:
        self._label("error", exc.message)
        if isinstance(exc, SpecError):
            self._problems(exc)
        if exc.hint:
            self._label("hint", exc.hint)
        if self.json_mode:
            self._json({"ok": False, "error": exc.to_dict()})
        return exc.exit_code

    def _problems(self, exc: SpecError) -> None:
        for problem in exc.problems:
            where = f"{problem.where}: " if problem.where else ""
            self.stderr.print(f"  {where}{problem.field}: {problem.message}", markup=False)
            if problem.example:
                self.stderr.print(f"      e.g. {problem.example}", markup=False)

    def say(self, text: str) -> None:
        """One line of progress on stderr (`gpuenv: ...`); the stages take it as their `Say`."""
        self.stderr.print("[bold cyan]gpuenv:[/bold cyan] ", end="")
        self.stderr.print(text, markup=False)

    @property
    def live(self) -> bool:
        """Whether a build may draw its live progress (a terminal, and not --json)."""
        return self.stderr.is_terminal and not self.json_mode

    def _label(self, label: str, text: str) -> None:
        style = "bold red" if label == "error" else "yellow"
        self.stderr.print(f"[{style}]{label}:[/{style}] ", end="")
        self.stderr.print(text, markup=False)

    def _json(self, document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()
