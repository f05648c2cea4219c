"""The command line's rough edges: verb typos, which --json is gpuenv's, how a refusing file system is said."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gpuenv.cli.main import LazyGroup, cli, own_options
from gpuenv.errors import EXIT_FAILURE, StorageError


def gpuenv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def _typo(verb: str) -> str:
    """Two neighbouring letters swapped (status -> sattus), or a letter doubled for a short verb."""
    return verb[0] + verb[2] + verb[1] + verb[3:] if len(verb) > 3 else verb + verb[-1]


def _groups() -> list[tuple[tuple[str, ...], click.Group]]:
    found: list[tuple[tuple[str, ...], click.Group]] = [((), cli)]
    for verb in LazyGroup.VERBS:
        command = cli.get_command(click.Context(cli), verb)
        if isinstance(command, click.Group):
            found.append(((verb,), command))
    return found


@pytest.mark.parametrize("path,group", _groups(), ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_verb_misspelt_gets_the_verb_suggested(path, group):
    for verb in group.list_commands(click.Context(group)):
        run = gpuenv(*path, _typo(verb))
        command = " ".join(("gpuenv", *path, verb))
        assert run.returncode == 2, run.stderr
        assert f"did you mean `{command}`" in run.stderr, (verb, run.stderr)
        assert "Traceback" not in run.stderr


def test_the_typo_of_the_issue_and_its_json_document():
    run = gpuenv("stauts")
    assert run.stderr.splitlines()[1].startswith("hint: did you mean `gpuenv status`?")
    data = json.loads(gpuenv("stauts", "--json").stdout)
    assert data["ok"] is False and data["error"]["exit_code"] == 2 and "gpuenv status" in data["error"]["hint"]


def test_a_word_like_no_verb_gets_the_list_not_a_guess():
    run = gpuenv("xyzzy")
    assert run.returncode == 2 and "did you mean" not in run.stderr and "`gpuenv --help` lists them" in run.stderr


@pytest.mark.parametrize("argv,own", [
    (["--json", "exec", "ls"], ["--json"]),
    (["exec", "--json", "ls"], ["--json"]),
    (["exec", "python", "x.py", "--json", "--debug"], []),
    (["exec", "-e", "vision", "python", "--json"], ["-e"]),
    (["exec", "-e", "--json", "ls"], ["-e"]),                   # --json is the value of -e here
    (["exec", "--env=vision", "--debug", "ls", "--json"], ["--env", "--debug"]),
    (["spec", "check", "--json"], ["--json"]),
    (["spec", "check", "--", "--json"], []),
    (["init", "--name", "--json", "torch"], ["--name"]),        # the value of --name, not the flag
    (["init", "torch", "--json"], ["--json"]),                  # interspersed: still the verb's own
    (["stauts", "--json"], ["--json"]),                         # a typo: its error is still JSON
])
def test_own_options_stop_where_the_command_that_exec_passes_on_begins(argv, own):
    assert own_options(argv) == own


@pytest.mark.parametrize("code,cause,words", [
    (errno.EROFS, "read-only", "read-only"),
    (errno.EACCES, "permission", "permission denied"),
    (errno.EPERM, "permission", "not permitted"),
    (errno.ENOSPC, "disk-full", "no space left"),
    (errno.EDQUOT, "quota", "quota"),
])
def test_a_refusing_file_system_is_a_storage_error_naming_the_cause(code, cause, words, tmp_path):
    error = StorageError.from_os(OSError(code, "said by the kernel", str(tmp_path / "a" / "b")), tmp_path / "out")
    assert error is not None and error.cause == cause and error.exit_code == EXIT_FAILURE
    assert words in error.message and str(tmp_path / "out") in error.message
    assert str(tmp_path) in error.hint           # the nearest folder that exists, for ls -ld / df
    assert error.to_dict()["cause"] == cause


def test_other_os_errors_are_not_storage_errors():
    assert StorageError.from_os(OSError(errno.ENOENT, "No such file or directory", "x")) is None
