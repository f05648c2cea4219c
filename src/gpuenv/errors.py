"""The one exception tree of gpuenv.

Every error a user can cause or meet is one of these. Each carries data (what is wrong, a hint,
and for some the parts: problems in a spec, causes of an impossible request) and the exit code
the CLI returns for it. The CLI is the only place that formats them (`error: ...`, `hint: ...`,
or one JSON document under `--json`); nothing else prints or exits.

    GpuenvError                 exit 1   a failure gpuenv could not get past
    +-- BadInput                exit 2   the user's input is wrong: flags, request, files
    |   +-- SpecError           exit 2   gpuenv.toml (or flags standing for it) has problems
    +-- ImpossibleRequest       exit 3   the request is valid, but no stack satisfies it
    +-- EngineError             exit 1   the container engine refused or is unreachable
    +-- NotAnswering            exit 1   a started container exited, restart-loops or never answered

This module imports nothing else from gpuenv.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_IMPOSSIBLE = 3


class GpuenvError(Exception):
    """Base of every error gpuenv reports to a user."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class BadInput(GpuenvError):
    """The user's input (flags, a request, a file) is wrong; nothing was done."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec: where it is, what is wrong, and a valid example.

    `field` is the dotted path in gpuenv.toml (`access.jupyter.port`, `frameworks[1]`), or ""
    when the problem is the file's syntax. `where` is `FILE:LINE` for a file, or the flag that
    stood for the field (`--python`) for a spec made from the command line.
    """

    field: str
    message: str
    where: str = ""
    line: Optional[int] = None
    example: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpecError(BadInput):
    """A spec with one or more problems; all of them are reported at once."""

    def __init__(self, source: str, problems: Sequence[Problem], hint: Optional[str] = None):
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun} in the spec", hint)
        self.source = source
        self.problems = tuple(problems)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["source"] = self.source
        data["problems"] = [p.to_dict() for p in self.problems]
        return data


class ImpossibleRequest(GpuenvError):
    """A valid request that no compatible stack satisfies; `causes` says why."""

    exit_code = EXIT_IMPOSSIBLE

    CODES = ("driver-too-old", "python-conflict", "gpu-arch-unsupported", "no-such-version", "conflict")

    def __init__(
        self,
        message: str,
        causes: Sequence[str] = (),
        hint: Optional[str] = None,
        code: str = "conflict",
        alternatives: Sequence[str] = (),
    ):
        super().__init__(message, hint)
        if code not in self.CODES:
            raise ValueError(f"unknown ImpossibleRequest code {code!r}")
        self.causes = tuple(causes)
        self.code = code
        self.alternatives = tuple(alternatives)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["code"] = self.code
        data["alternatives"] = list(self.alternatives)
        data["causes"] = list(self.causes)
        return data


class EngineError(GpuenvError):
    """The container engine is unreachable or refused an operation."""


class NotAnswering(GpuenvError):
    """A container `up` started did not come to answer: it exited, restart-loops, or stayed silent.
    `log` holds its last lines, `cause` the likely reason read from them."""

    def __init__(self, message: str, container: str, log: str = "", cause: str = "", hint: Optional[str] = None):
        super().__init__(message + (f"; its last lines:\n{log}" if log else ""), hint)
        self.container = container
        self.log = log
        self.cause = cause

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "container": self.container, "log": self.log, "cause": self.cause}
