"""Reading BuildKit's plain progress: the steps, the bytes fetched, the error, the summary.

`DOCKER_BUILDKIT=1 docker build --progress=plain` (Docker 18.09 to 22.x) and `docker buildx build
--progress=plain` print the same line format, with the differences listed in
tests/fixtures/buildkit/SOURCE.md (recorded outputs of both):

    #0 building with "default" instance using docker driver     buildx only: the builder
    #5 [system 2/3] RUN apt-get update ...       a vertex starts; a Dockerfile step when it has [stage i/n]
    #5 sha256:fcd31a...                          20.10 only: the vertex digest, right after its name
    #5 0.363 Get:1 http://deb.debian.org ...     a log line, seconds since the vertex started
    #4 sha256:529cd7... 40.89MB / 48.01MB 0.1s   a status: a layer pulled so far, of its size
    #5 DONE 14.7s | #5 CACHED | #5 CANCELED | #5 ERROR: executor failed running [...]: exit code: 1
    #6 ...                                       another vertex takes over; #6's name is printed again later
    ------ / > [3/4] RUN ...: / ------           the failed vertex (buildx adds its last log lines)
    executor failed running [...]: exit code: 1 | ERROR: failed to solve: ...     the build's error

`BuildLog.feed` takes one line at a time, keeps what it understands and ignores the rest; it never
raises on a line. Bytes are decimal, as BuildKit, apt and pip print them (kB = 1000 B).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Final, List, Literal, Optional, Tuple

# where a step is: running until its DONE, CACHED, CANCELED or ERROR line
StepStatus = Literal["running", "done", "cached", "error", "canceled"]
RUNNING: Final = "running"
DONE: Final = "done"
CACHED: Final = "cached"
ERROR: Final = "error"
CANCELED: Final = "canceled"
TAIL = 20

_UNITS = {"B": 1, "bytes": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_SIZE = r"[\d.,]+ ?(?:[kKMGT]i?B|B|bytes)"
_LINE = re.compile(r"#(\d+) ?(.*)")
_STEP = re.compile(r"\[(?:(?P<stage>[^\]]*?)\s+)?(?P<index>\d+)/(?P<total>\d+)\]\s*(?P<instruction>.*)", re.S)
_LOG = re.compile(r"(\d+\.\d*)(?: (.*))?")
_FINISH = re.compile(r"(DONE)(?: (\d+(?:\.\d+)?)s)?|(CACHED)|(CANCELED)")
_NOT_NAMES = ("ERROR: ", "WARN: ", "...")
_STATUS = re.compile(rf"(?P<id>.+?)(?: (?P<cur>{_SIZE})(?: / (?P<tot>{_SIZE}))?)?(?: [\d.]+s)?(?: done)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE = re.compile(r"(writing image|exporting manifest list|exporting manifest) (sha256:[0-9a-f]{64})")
_IMAGE_KINDS = ("writing image", "exporting manifest list", "exporting manifest")   # best first
_APT = re.compile(rf"Fetched ({_SIZE}) in ")
_PIP = re.compile(rf"\s*Downloading (\S+) \(({_SIZE})\)")
_PIP_BAR = re.compile(r"[━╸╺\s]*([\d.]+)/([\d.]+) ([kMG]B) ")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FINAL = re.compile(r"(?:ERROR|error): .*|(?:failed to |executor failed ).*")
_WRAPPER = re.compile(r"ERROR: |failed to build: |failed to solve: |rpc error: code = \w+ desc = "
                      r"|failed to solve with frontend dockerfile\.v0: |failed to create LLB definition: ")
_EXIT = re.compile(r'(?:executor failed running \[(?P<a>.*)\]|process "(?P<b>.*)" did not complete successfully)'
                   r": exit code: (?P<code>\d+)", re.S)


@dataclass
class Step:
    """One vertex of the build: a Dockerfile step (`index` set) or BuildKit's own work (`[internal] ...`)."""

    number: int                     # the #N of the progress lines (buildx and 20.10 number differently)
    name: str                       # "[system 2/3] RUN apt-get update ..."
    instruction: str = ""           # "RUN apt-get update ..."
    stage: Optional[str] = None     # "system"; None for an unnamed stage
    index: Optional[int] = None     # 2 of [system 2/3]
    total: Optional[int] = None     # 3 of [system 2/3]
    status: StepStatus = RUNNING
    duration: Optional[float] = None    # seconds, from its DONE line
    started: float = 0.0            # seconds after the build's first line, by BuildLog's clock
    finished: Optional[float] = None
    error: Optional[str] = None     # its ERROR line as printed
    active: bool = False            # it printed a log line or a status: it did work, not only a lookup
    tail: Deque[str] = field(default_factory=lambda: deque(maxlen=TAIL))

    @property
    def reused(self) -> bool:
        """Nothing to do: a cache hit, or a FROM whose image was there already (20.10 prints DONE for it)."""
        return self.status == CACHED or (self.status == DONE and not self.active and self.instruction[:5] == "FROM ")

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""


@dataclass(frozen=True)
class BuildFailure:
    """Why a build failed, for a user: the step, what it printed last, and the engine's error, cleaned."""

    step: Optional[str]             # the failing vertex's name; None when the Dockerfile never became steps
    logs: Tuple[str, ...]           # its last log lines (up to TAIL)
    message: str                    # "command failed with exit code 1: apt-get install ..."
    exit_code: Optional[int]        # the command's exit code, for a RUN that failed
    raw: str                        # the error as the engine printed it


@dataclass(frozen=True)
class BuildSummary:
    steps: int                      # Dockerfile steps seen
    cached: int                     # of them, nothing to do (`Step.reused`)
    built: int
    downloaded: int                 # bytes: layers pulled, apt's and pip's downloads
    context: int                    # bytes of build context sent to the builder
    elapsed: float                  # seconds
    image_id: Optional[str]         # "sha256:...", when the engine printed it
    names: Tuple[str, ...]          # the names it was tagged with

    def describe(self) -> str:
        """One line for after a build: `8 steps (1 cached, 7 built) in 27.1s, 38.8 MB downloaded, image sha256:...`."""
        image = f", image {self.image_id[:19]}" if self.image_id else ""
        return (f"{self.steps} steps ({self.cached} cached, {self.built} built) in {self.elapsed:.1f}s, "
                f"{human_bytes(self.downloaded)} downloaded{image}")


def human_bytes(count: float) -> str:
    """Decimal, as BuildKit, apt and pip print sizes: `38.8 MB`."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} B"


def size_of(text: str) -> int:
    """`48.01MB`, `6258 kB`, `16.3 MB`, `2B` -> bytes; 0 for anything else."""
    match = re.match(r"([\d.,]+) ?(\S+)", text.strip())
    try:
        return int(float(match.group(1).replace(",", "")) * _UNITS[match.group(2)]) if match else 0
    except (KeyError, ValueError):
        return 0


def clean_error(raw: str) -> Tuple[str, Optional[int]]:
    """The engine's error without BuildKit's wrappers; a failed RUN as its command and exit code."""
    message = raw.strip()
    while (wrapper := _WRAPPER.match(message)):
        message = message[wrapper.end():]
    failed = _EXIT.search(message)
    if not failed:
        return message, None
    command = re.sub(r"^/bin/sh -c ", "", failed.group("a") or failed.group("b"))
    return f"command failed with exit code {failed.group('code')}: {command}", int(failed.group("code"))


class BuildLog:
    """What a build printed so far, fed one line at a time (`feed`); `close` when the stream ends."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.vertices: Dict[int, Step] = {}     # by #N, in the order they appeared
        self.builder: Optional[str] = None      # buildx's '"default" instance using docker driver'
        self.warnings: List[str] = []           # WARN lines (buildx's Dockerfile checks)
        self.context_bytes = 0
        self.names: List[str] = []
        self._images: Dict[str, str] = {}       # "writing image" | "exporting manifest list" | ... -> digest
        self._layers: Dict[str, int] = {}       # digest -> bytes pulled
        self._fetched = 0                       # apt's and pip's finished downloads
        self._pip: Dict[int, List[int]] = {}    # vertex -> [bytes so far by its bar or -1, size] of pip's download
        self._activity: Dict[int, None] = {}    # vertices by their latest line, oldest first
        self._block: Optional[List[str]] = None     # the lines inside ------ ... ------
        self._failed_name: Optional[str] = None
        self._final: Optional[str] = None
        self._start: Optional[float] = None
        self._end: Optional[float] = None

    def feed(self, line: str) -> None:
        now = self.clock()
        self._start = now if self._start is None else self._start
        text = line.rstrip("\r\n")
        match = _LINE.fullmatch(text)
        if match:
            self._vertex_line(int(match.group(1)), match.group(2), now - self._start)
        else:
            self._bare_line(text.strip())

    def close(self) -> None:
        self._end = self.clock()
        for number in list(self._pip):
            self._end_pip(number, complete=self.vertices[number].status == DONE)

    def _vertex_line(self, number: int, rest: str, at: float) -> None:
        step = self.vertices.get(number)
        if number == 0 and rest.startswith("building with "):
            self.builder = rest[len("building with "):]
        elif step is None:
            if rest and not (_FINISH.fullmatch(rest) or _LOG.fullmatch(rest) or rest.startswith(_NOT_NAMES)):
                self.vertices[number] = _new_step(number, rest, at)
                self._touch(number)
        elif rest not in (step.name, "...") and not _DIGEST.fullmatch(rest):
            self._touch(number)
            self._known_vertex_line(step, rest, at)

    def _known_vertex_line(self, step: Step, rest: str, at: float) -> None:
        finish, log = _FINISH.fullmatch(rest), _LOG.fullmatch(rest)
        if finish:
            duration = float(finish.group(2)) if finish.group(2) else None
            self._finish(step, DONE if finish.group(1) else CACHED if finish.group(3) else CANCELED, at, duration)
        elif rest.startswith("ERROR: "):
            step.error = rest[len("ERROR: "):]
            self._finish(step, ERROR, at, None)
        elif rest.startswith("WARN: "):
            self.warnings.append(rest[len("WARN: "):])
        elif log:
            self._log_line(step, _display(log.group(2) or ""))
        else:
            self._status(step, rest)

    def _finish(self, step: Step, status: StepStatus, at: float, duration: Optional[float]) -> None:
        step.status, step.finished, step.duration = status, at, duration
        if step.number in self._pip:
            self._end_pip(step.number, complete=status == DONE)

    def _log_line(self, step: Step, text: str) -> None:
        step.active = True
        step.tail.append(text)
        bar, pip, apt = _PIP_BAR.match(text + " "), _PIP.match(text), _APT.match(text)
        if bar and step.number in self._pip:
            self._pip[step.number][0] = size_of(bar.group(1) + bar.group(3))
            return
        if step.number in self._pip:    # pip printed on: its download is over
            self._end_pip(step.number, complete=True)
        if pip:
            self._pip[step.number] = [-1, size_of(pip.group(2))]
        elif apt:
            self._fetched += size_of(apt.group(1))

    def _end_pip(self, number: int, complete: bool) -> None:
        """A download ends at its bar's last count, else (no bar: older pip) at its size if it went well."""
        current, size = self._pip.pop(number)
        self._fetched += current if current >= 0 else size if complete else 0

    def _status(self, step: Step, rest: str) -> None:
        step.active = True
        status, image = _STATUS.fullmatch(rest), _IMAGE.match(rest)
        if image:
            self._images.setdefault(image.group(1), image.group(2))
        if rest.startswith("naming to ") and rest.split()[2] not in self.names:
            self.names.append(rest.split()[2])
        if not status or not status.group("cur"):
            return
        what, size = status.group("id"), size_of(status.group("cur"))
        if _DIGEST.fullmatch(what) and status.group("tot"):
            self._layers[what] = max(self._layers.get(what, 0), size)
        elif what == "transferring context:" and step.name.endswith("load build context"):
            self.context_bytes = size

    def _bare_line(self, text: str) -> None:
        if text == "------":
            self._block = [] if self._block is None else None
        elif self._block is not None and text.startswith("> ") and text.endswith(":") and not self._failed_name:
            self._failed_name = text[2:-1]
        elif self._block is not None:
            self._block.append(_display(re.sub(r"^\d+\.\d+ ", "", text)))
        elif _FINAL.fullmatch(text) and self.current() is None:     # not a \r-split piece of a step's output
            self._final = text

    def _touch(self, number: int) -> None:
        self._activity.pop(number, None)
        self._activity[number] = None

    def steps(self) -> List[Step]:
        """The Dockerfile's steps seen so far, in the order they started."""
        return [step for step in self.vertices.values() if step.index is not None]

    def current(self) -> Optional[Step]:
        """The running vertex that printed last (a Dockerfile step, or BuildKit's own work)."""
        running = [number for number in self._activity if self.vertices[number].status == RUNNING]
        return self.vertices[running[-1]] if running else None

    @property
    def image_id(self) -> Optional[str]:
        """The image's id: its config digest (Docker's image store), else its index or manifest (containerd)."""
        return next((self._images[kind] for kind in _IMAGE_KINDS if kind in self._images), None)

    @property
    def downloaded(self) -> int:
        return sum(self._layers.values()) + self._fetched + sum(max(current, 0) for current, _ in self._pip.values())

    def elapsed(self) -> float:
        if self._start is None:
            return 0.0
        return (self._end if self._end is not None else self.clock()) - self._start

    def error(self) -> Optional[BuildFailure]:
        """Why the build failed, once it printed an error; None while it has not."""
        named = [step for step in self.vertices.values() if step.name == self._failed_name]
        failed = next(iter(named or [step for step in self.vertices.values() if step.status == ERROR]), None)
        raw = self._final or (failed.error if failed else None)
        if raw is None:
            return None
        message, code = clean_error(raw)
        logs = tuple(failed.tail) if failed and failed.tail else tuple(self._block or ())
        return BuildFailure(failed.name if failed else self._failed_name, logs, message, code, raw)

    def summary(self) -> BuildSummary:
        steps = self.steps()
        cached = sum(step.reused for step in steps)
        built = sum(step.status == DONE and not step.reused for step in steps)
        return BuildSummary(len(steps), cached, built, self.downloaded, self.context_bytes, self.elapsed(),
                            self.image_id, tuple(self.names))


def _new_step(number: int, name: str, at: float) -> Step:
    step = _STEP.match(name)
    if not step:
        return Step(number, name, name, started=at)
    return Step(number, name, step.group("instruction"), step.group("stage"), int(step.group("index")),
                int(step.group("total")), started=at)


def _display(text: str) -> str:
    """A log line as a terminal would have left it: no colour codes, only what follows the last \\r."""
    parts = [part for part in _ANSI.sub("", text).split("\r") if part.strip()]
    return parts[-1] if parts else ""
