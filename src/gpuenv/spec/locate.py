"""Where each key and array item of a TOML document stands: its line number.

tomllib gives values without positions. `key_lines` walks a document that tomllib has already
accepted and records, for every key path (`("access", "jupyter", "port")`) and array item
(`("frameworks", 1)`), the line it starts on. `line_of` gives the line of the deepest part of a
path that is written in the file (a default that the file does not write has no line of its own,
so its table's line stands for it).
"""

from __future__ import annotations

import re
from typing import Optional, Union

FieldPath = tuple[Union[str, int], ...]      # table keys and array indexes: ("frameworks", 1)

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[FieldPath, int] = {}
        self.table_counts: dict[FieldPath, int] = {}

    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            else:
                return

    def record(self, path: FieldPath) -> None:
        self.lines.setdefault(path, self.line())

    def document(self) -> dict[FieldPath, int]:
        table: FieldPath = ()
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)

    def header(self) -> FieldPath:
        many = self.peek(2) == "[["
        self.pos += 2 if many else 1
        path = self.key()
        self.pos += 2 if many else 1
        if many:
            index = self.table_counts.get(path, 0)
            self.table_counts[path] = index + 1
            self.record(path)
            path = path + (index,)
        self.record(path)
        return path

    def key(self) -> FieldPath:
        parts = []
        while True:
            self.skip_space(newlines=False)
            parts.append(self.key_part())
            self.skip_space(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    def key_part(self) -> str:
        if self.peek() in ('"', "'"):
            start = self.pos
            self.string()
            return _unquote(self.text[start : self.pos])
        match = _BARE.match(self.text, self.pos)
        end = match.end() if match else self.pos + 1
        part, self.pos = self.text[self.pos : end], end
        return part

    def key_value(self, table: FieldPath) -> None:
        start_line = self.line()
        path = table + self.key()
        for depth in range(len(table) + 1, len(path) + 1):
            self.lines.setdefault(path[:depth], start_line)
        self.skip_space(newlines=False)
        self.pos += 1  # '='
        self.skip_space(newlines=False)
        self.value(path)

    def value(self, path: FieldPath) -> None:
        ch = self.peek()
        if ch == "[":
            self.array(path)
        elif ch == "{":
            self.inline_table(path)
        elif ch in ('"', "'"):
            self.string()
        else:
            match = _SCALAR_END.search(self.text, self.pos)
            self.pos = match.start() if match else len(self.text)

    def array(self, path: FieldPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_space(newlines=True)
            if self.peek() == "]":
                self.pos += 1
                return
            self.record(path + (index,))
            self.value(path + (index,))
            self.skip_space(newlines=True)
            if self.peek() == ",":
                self.pos += 1
            index += 1

    def inline_table(self, path: FieldPath) -> None:
        self.pos += 1
        while True:
            self.skip_space(newlines=False)
            if self.peek() == "}":
                self.pos += 1
                return
            self.key_value(path)
            self.skip_space(newlines=False)
            if self.peek() == ",":
                self.pos += 1

    def string(self) -> None:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            while quote == '"' and end > 0 and _escaped(self.text, end):
                end = self.text.find(quote * 3, end + 1)
            if end < 0:
                raise ValueError("unterminated string")
            end += 3
            while self.text[end : end + 1] == quote:  # up to two quotes may close the content
                end += 1
            self.pos = end
            return
        end = self.pos + 1
        while self.text[end] != quote or (quote == '"' and _escaped(self.text, end)):
            end += 1
        self.pos = end + 1


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _unquote(token: str) -> str:
    if token.startswith("'"):
        return token[1:-1]
    return token[1:-1].encode("utf-8").decode("unicode_escape", errors="replace")


def key_lines(text: str) -> dict[FieldPath, int]:
    """Line of every key path and array item in a valid TOML document; {} if it cannot be read."""
    try:
        return _Scanner(text).document()
    except (IndexError, ValueError):
        return {}


def line_of(lines: dict[FieldPath, int], path: FieldPath) -> Optional[int]:
    """Line of the deepest written prefix of `path`, or None when no part of it is written."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return None
