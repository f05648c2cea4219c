"""The one exception tree of gpuenv.

Every error a user can cause or meet is one of these. Each carries data (what is wrong, a hint,
and for some the parts: problems in a spec, causes of an impossible request) and the exit code
the CLI returns for it. The CLI is the only place that formats them (`error: ...`, `hint: ...`,
or one JSON document under `--json`); nothing else prints or exits.

    GpuenvError                 exit 1   a failure gpuenv could not get past
    +-- BadInput                exit 2   the user's input is wrong: flags, request, files
    |   +-- SpecError           exit 2   gpuenv.toml (or flags standing for it) has problems
    |   +-- Unrepresentable     exit 2   a value a generated file's format cannot hold (a newline, NUL)
    +-- ImpossibleRequest       exit 3   the request is valid, but no stack satisfies it
    +-- EngineError             exit 1   the container engine refused or is unreachable
    |   +-- ClusterError        exit 1   a cluster (Kubernetes' API server) is not configured, unreachable, refused
    +-- StorageError            exit 1   a file or folder cannot be written: read-only, not permitted, disk
    |                                    full, quota, a file where a folder must be, a name too long
    +-- Interrupted             exit 130 Ctrl-C (SIGINT): what was started is stopped
    +-- NotAnswering            exit 1   a started container exited, restart-loops or never answered
    +-- SchedulerError          exit 1   the cluster's scheduler (Slurm) is missing or refused

This module imports nothing else from gpuenv.
"""

from __future__ import annotations

import errno
import os
import shlex
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_IMPOSSIBLE = 3
EXIT_INTERRUPTED = 130      # as a shell reports a command that SIGINT ended: 128 + 2


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


class Unrepresentable(BadInput):
    """A value that a generated file's format cannot hold safely; nothing is written."""

    def __init__(self, target: str, value: str, reason: str) -> None:
        super().__init__(f"{value!r} cannot be written into {target}: it holds {reason}",
                         "rename the folder or file, or change the spec value, so that it has no such character")
        self.target = target
        self.value = value
        self.reason = reason


class ImpossibleRequest(GpuenvError):
    """A valid request that no compatible stack satisfies; `causes` says why."""

    exit_code = EXIT_IMPOSSIBLE

    CODES = ("driver-too-old", "python-conflict", "gpu-arch-unsupported", "no-such-version", "conflict", "no-free-gpu",
             "no-gpu-partition")

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


class ClusterError(EngineError):
    """A cluster's API: no kubeconfig, a server that does not answer, a refusal (`status`: the HTTP status,
    0 when nothing answered), a Pod that cannot start."""

    def __init__(self, message: str, hint: Optional[str] = None, status: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "status": self.status}


class StorageError(GpuenvError):
    """A file or folder gpuenv needs cannot be written (or, for permissions, used): the file system said
    why, and `cause` names it by errno. Made from the OSError itself (`from_os`), so that every verb says
    the same for the same cause, whichever file it was at; `path` is that file or folder when known.
    """

    CAUSES = {      # errno -> (cause, what it means, what to do; {path} is the file or folder)
        errno.EROFS: ("read-only", "the file system is read-only",
                      "write somewhere else (--out DIR, -f FILE), or remount it read-write (findmnt -T {path})"),
        errno.EACCES: ("permission", "permission denied",
                       "see who may write there (ls -ld {path}); use a folder you may write, or run as its owner"),
        errno.EPERM: ("permission", "operation not permitted",
                      "see who may write there (ls -ld {path}); use a folder you may write, or run as its owner"),
        errno.ENOSPC: ("disk-full", "no space left on the device",
                       "free space on that file system (df -h {path}), then run again"),
        errno.EDQUOT: ("quota", "your disk quota is used up",
                       "free space within your quota (quota -s; du -sh {path}), then run again"),
        errno.ENOTDIR: ("not-a-folder", "a part of its path is a file, not a folder",
                        "give a path whose folders are folders (ls -ld {path})"),
        errno.EEXIST: ("not-a-folder", "a file of that name is in the way of a folder",
                       "give a path whose folders are folders (ls -ld {path})"),
        errno.ENAMETOOLONG: ("name-too-long", "a name in its path is too long for the file system",
                             "give a shorter path"),
    }

    def __init__(self, cause: str, message: str, hint: str, path: Optional[str] = None) -> None:
        super().__init__(message, hint)
        self.cause = cause
        self.path = path

    @classmethod
    def from_os(cls, exc: OSError, path: Optional[object] = None, doing: str = "write") -> Optional["StorageError"]:
        """The StorageError an OSError stands for; None when its errno is not one of CAUSES. `path` is
        what the caller was writing (named rather than a temporary file; a full disk names none)."""
        known = cls.CAUSES.get(exc.errno or 0)
        if known is None:
            return None
        cause, meaning, fix = known
        where = str(path if path is not None else exc.filename if exc.filename is not None else "")
        message = f"cannot {doing} {where}: {meaning}" if where else f"cannot write: {meaning}"
        return cls(cause, message, fix.format(path=shlex.quote(_existing(where or "."))), where or None)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["cause"] = self.cause
        data["path"] = self.path
        return data


class Interrupted(GpuenvError):
    """The user interrupted gpuenv (Ctrl-C); what it had started was stopped on the way out."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted")


def _existing(path: str) -> str:
    """The nearest folder that exists at or above `path` (what `ls -ld` and `df` can be asked about)."""
    path = os.path.abspath(path)
    while path != os.sep and not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


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


class SchedulerError(GpuenvError):
    """The cluster's scheduler (Slurm's commands) is missing, unreachable, or refused a request."""
