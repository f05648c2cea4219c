"""Bytes moved by `save` and `load`, shown on stderr as they go."""

from __future__ import annotations

import time

from gpuenv.cli.output import Renderer
from gpuenv.images.progress import human_bytes


class Meter:
    """Bytes moved, on stderr: redrawn in place on a terminal, a line every 10 s elsewhere."""

    def __init__(self, renderer: Renderer, what: str, total: int) -> None:
        self.console, self.what, self.total = renderer.stderr, what, total
        self.live = self.console.is_terminal and not renderer.json_mode
        self.done, self.start = 0, time.monotonic()
        self.shown = self.start

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown >= (0.25 if self.live else 10):
            self.shown = now
            self._show(now, "\r" if self.live else "\n")

    def _show(self, now: float, end: str) -> None:
        rate = self.done / max(now - self.start, 1e-6)
        share = f" of {human_bytes(self.total)} ({100 * self.done // self.total}%)" if self.total else ""
        self.console.file.write(f"{self.what}: {human_bytes(self.done)}{share}, {human_bytes(int(rate))}/s{end}")
        self.console.file.flush()

    def end(self) -> float:
        if self.live and self.shown > self.start:
            self.console.file.write("\r\x1b[K")
        return time.monotonic() - self.start
