"""The knowledge tables' parse cache (kb/tables.py): the same rows as parsing, a changed text or schema
parses again, and only the user's own file, writable by nobody else, is ever read."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from gpuenv.kb import tables

NAME = "bases"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "gpuenv" / "kb-tables"


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = tables._parse_checked
    monkeypatch.setattr(tables, "_parse_checked", lambda name, text: calls.append(name) or real(name, text))
    return calls


def test_a_second_start_reads_the_rows_from_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = tables._read(NAME)
    calls = _parses(monkeypatch)
    first = tables.parse_table(NAME, text)
    assert calls == [NAME] and [p.name.split("-")[0] for p in cache.iterdir()] == [NAME]
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    again = tables.parse_table(NAME, text)
    assert calls == [NAME] and again == first and again["python_image"]


def test_a_changed_text_parses_again_and_replaces_the_old_entry(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, kind = tables._read(NAME)
    calls = _parses(monkeypatch)
    tables.parse_table(NAME, (text, kind))
    changed = text + "\n# a comment: the same rows, another text\n"
    assert tables.parse_table(NAME, (changed, kind)) == tables.parse_table(NAME, (text, kind))
    assert calls == [NAME, NAME, NAME]                 # each text's first parse, then the first text again
    assert len(list(cache.glob(f"{NAME}-*.pickle"))) == 1


def test_a_cache_file_others_may_write_is_never_loaded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = tables._read(NAME)
    tables.parse_table(NAME, text)
    (entry,) = cache.glob(f"{NAME}-*.pickle")
    entry.write_bytes(pickle.dumps({"base": ["forged"]}))
    entry.chmod(0o666)
    calls = _parses(monkeypatch)
    assert tables.parse_table(NAME, text)["python_image"] != ["forged"] and calls == [NAME]
    entry.chmod(0o600)
    entry.write_bytes(b"not a pickle")
    assert tables.parse_table(NAME, text)["python_image"] and calls == [NAME, NAME]


def test_an_unwritable_cache_folder_only_means_parsing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the folder would be")
    calls = _parses(monkeypatch)
    text = tables._read(NAME)
    assert tables.parse_table(NAME, text)["python_image"] and tables.parse_table(NAME, text)["python_image"]
    assert calls == [NAME, NAME]




def test_other_checking_code_parses_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade of gpuenv that changes the checks makes the cached rows stale (the key holds the code)."""
    text = tables._read(NAME)
    calls = _parses(monkeypatch)
    tables.parse_table(NAME, text)
    monkeypatch.setattr(tables, "_checks_code", lambda: "the checks of another gpuenv")
    tables.parse_table(NAME, text)
    assert calls == [NAME, NAME]
