"""Text from outside (a spec, a bundle, an engine's answer) reaches the terminal with its control
characters made visible: an escape sequence in a bundle's name must not retitle the window or clear it."""

from __future__ import annotations

import io

from gpuenv.cli.output import Renderer, Result, SafeConsole, visible
from gpuenv.errors import BadInput

HOSTILE = "name\x1b]0;owned\x07\x1b[2J\rtail\x9b31m"


def _console() -> SafeConsole:
    return SafeConsole(file=io.StringIO(), force_terminal=True, highlight=False, emoji=False)


def test_visible_escapes_controls_but_keeps_lines_and_tabs() -> None:
    assert visible(HOSTILE) == "name\\x1b]0;owned\\x07\\x1b[2J\\x0dtail\\x9b31m"
    assert visible("a\tb\nc") == "a\tb\nc"


def test_an_error_message_and_hint_print_no_raw_escape() -> None:
    renderer = Renderer(stdout=_console(), stderr=_console())
    assert renderer.error(BadInput(f"bad bundle {HOSTILE}", f"rename {HOSTILE}")) == 2
    text = renderer.stderr.file.getvalue()
    assert "\x07" not in text and "\x1b]" not in text and "\x1b[2J" not in text and "\r" not in text
    assert "\\x1b]0;owned" in text


def test_a_result_printed_by_a_verb_prints_no_raw_escape() -> None:
    renderer = Renderer(stdout=_console(), stderr=_console())
    renderer.result(Result({}, human=lambda c: c.print(f"[bold]env[/bold] {HOSTILE}")))
    text = renderer.stdout.file.getvalue()
    assert "\x1b[1m" in text                    # rich's own style still reaches a terminal
    assert "\x1b]0;" not in text and "\x07" not in text
