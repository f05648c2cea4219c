"""Showing a build while it runs: a live Rich display on a terminal, one line per step elsewhere.

`follow(lines, console, live)` feeds the engine's `--progress=plain` lines to a `BuildLog` and shows
them. Live (a terminal): the step running, the time, the bytes downloaded, how many steps are done
and cached, and the step's last log line, dimmed; the display goes away when the build ends, for the
caller to print the summary or the error. Plain (a pipe, a CI log): a line when a step starts to work
and a line when it ends, nothing that moves. A Ctrl-C stops the display, leaves the terminal as it
was and propagates.
"""

from __future__ import annotations

import threading
from typing import Iterable, Optional, Set

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from gpuenv.images.progress import CACHED, DONE, ERROR, RUNNING, BuildLog, Step, human_bytes

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ENDED = {DONE: "done", CACHED: "cached", ERROR: "failed"}


def follow(lines: Iterable[str], console: Console, live: bool, log: Optional[BuildLog] = None) -> BuildLog:
    """Read the build's output to its end, showing it; returns the log (`error()`, `summary()`).

    `lines`: the engine's stdout and stderr, split at "\n" only (read the pipe as bytes, or with
    newline="\n"): apt and pip move their progress with "\r", which universal newlines would turn
    into lines of their own, outside the step that printed them.
    """
    log = log if log is not None else BuildLog()
    try:
        if live:
            _follow_live(lines, console, log)
        else:
            _follow_plain(lines, console, log)
    finally:
        log.close()
    return log


def _follow_live(lines: Iterable[str], console: Console, log: BuildLog) -> None:
    lock = threading.Lock()     # Live redraws from its own thread
    with Live(BuildView(log, lock), console=console, refresh_per_second=8, transient=True):
        for line in lines:
            with lock:
                log.feed(line)


def _follow_plain(lines: Iterable[str], console: Console, log: BuildLog) -> None:
    printer = PlainPrinter(console)
    for line in lines:
        log.feed(line)
        printer.show(log)


class BuildView:
    """The live display of a `BuildLog`, redrawn by `rich.live.Live`."""

    def __init__(self, log: BuildLog, lock: Optional[threading.Lock] = None) -> None:
        self.log, self.lock = log, lock or threading.Lock()

    def __rich__(self) -> RenderableType:
        with self.lock:
            return render(self.log)


def render(log: BuildLog) -> RenderableType:
    """Three lines: the step running, the facts (time, bytes, steps), its last log line."""
    step, steps, elapsed = log.current(), log.steps(), log.elapsed()
    frame = _FRAMES[int(elapsed * 10) % len(_FRAMES)]
    doing = _one_line(step.name) if step else "finishing" if log.vertices else "starting the build"
    head = Text.assemble((frame + " ", "cyan"), (doing, "bold"))
    done = sum(s.status == DONE and not s.reused for s in steps)
    facts = (f"{_clock(elapsed)}  ·  {human_bytes(log.downloaded)} downloaded  ·  "
             f"{done} built, {sum(s.reused for s in steps)} cached of {len(steps)} steps so far")
    lines = [head, Text("  " + facts, style="dim")]
    if step and step.last_line:
        lines.append(Text("  " + step.last_line.strip(), style="dim"))
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return Group(*lines)


class PlainPrinter:
    """One line when a Dockerfile step starts to work (its first output) and one when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._started: Set[int] = set()
        self._ended: Set[int] = set()

    def show(self, log: BuildLog) -> None:
        for step in log.steps():
            if step.number not in self._started and step.active and step.status == RUNNING:
                self._started.add(step.number)
                self._line("start", "", step)
            if step.number not in self._ended and step.status != RUNNING:
                self._ended.add(step.number)
                took = f"{step.duration:.1f}s" if step.duration is not None and not step.reused else ""
                self._line("cached" if step.reused else _ENDED.get(step.status, step.status), took, step)

    def _line(self, what: str, took: str, step: Step) -> None:
        line = Text(f"{what:<8}{took:>7}  ", style="red" if what == "failed" else "")
        line.append(_one_line(step.name))
        self.console.print(line, no_wrap=True, overflow="ellipsis", crop=True)


def _one_line(name: str) -> str:
    return " ".join(name.split())


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
