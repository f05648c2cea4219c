"""render/quote.py, one quoting function per format, and the places that use it (issue 15)."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from gpuenv.errors import Unrepresentable
from gpuenv.render import quote
from gpuenv.render.dockerfile import _apt_setup

HOSTILE = ["a b", "$HOME", "${X}", "it's", 'say "hi"', "back\\slash", "end\\", "# c", "-rf", "é日本", "x=1 y=2",
           "`id` $(id) ; && |", "$$", "%s", "*", ""]


@pytest.mark.parametrize("value", ["a\nRUN id", "a\rb", "a\0b", "a\u2028b", "a\x85b", "tab\there"])
def test_a_line_break_or_control_character_is_refused_by_every_line_format(value):
    for write in (quote.dockerfile_value, quote.shell_word, lambda v: quote.env_line("K", v),
                  lambda v: quote.dockerfile_exec([v])):
        with pytest.raises(Unrepresentable) as caught:
            write(value)
        assert caught.value.exit_code == 2 and "cannot be written into" in caught.value.message


@pytest.mark.parametrize("value", HOSTILE)
def test_shell_words_read_back_as_one_word_and_never_end_in_a_continuation(value):
    word = quote.shell_word(value)
    assert shlex.split(f"x {word} y") == ["x", value, "y"] and not word.endswith("\\")


@pytest.mark.parametrize("value", [v for v in HOSTILE if v])
def test_env_lines_read_back_with_python_dotenv_or_are_refused(value):
    try:
        line = quote.env_line("K", value)
    except Unrepresentable:
        assert "'" in value or "\\" in value or "${" in value
        return
    assert dict(dotenv_values(stream=io.StringIO(f"A=1\n{line}\nB=2\n"))) == {"A": "1", "K": value, "B": "2"}


def test_comments_stay_on_one_line():
    assert quote.comment_line("name\nRUN id\r\u2028x") == "# name\\nRUN id\\r\\u2028x"


def test_yaml_and_json_documents_read_back():
    doc = {"k": HOSTILE, "n": {"x: 1": "\u2028\n"}}
    assert yaml.safe_load(quote.yaml_document(doc)) == doc and json.loads(quote.json_document(doc)) == doc
    assert quote.compose_text("a$b${C}") == "a$$b$${C}"


def test_the_apt_mirror_reaches_sed_as_text_whatever_its_characters(tmp_path):
    """APT_MIRROR is sed's replacement text in the Dockerfile: a `#`, `&` or `\\` in the URL must not end the
    expression or add sed commands (`#w FILE`)."""
    sources = tmp_path / "sources.list"
    sources.write_text("deb http://deb.debian.org/debian bookworm main\n")
    os_sources = "/etc/apt/sources.list"
    line = _apt_setup_line().replace(os_sources, str(sources))
    mirror = "http://m.example/a#w " + str(tmp_path / "written") + "#&x\\y/"
    subprocess.run(["bash", "-c", line], env={"APT_MIRROR": mirror, "PATH": "/usr/bin:/bin"}, check=True)
    assert sources.read_text() == f"deb {mirror.rstrip('/')}/debian bookworm main\n"
    assert not (tmp_path / "written").exists()


def _apt_setup_line() -> str:
    class R:   # the one field _apt_setup reads of a recipe, for a Debian 11 base (one sources file)
        os, nvidia_base = "debian11", False

    return _apt_setup(R()).split(" \\\n && ")[0]


def test_a_host_path_with_a_newline_is_bad_input_not_a_broken_env_file(tmp_path):
    """The spec refuses such text itself; a host fact (here the spec's folder, which the key file's path
    starts from) is caught where it would be written: exit 2, the reason, nothing written."""
    spec_dir = tmp_path / "env\nGPUENV_IMAGE=evil"
    spec_dir.mkdir()
    (spec_dir / "k.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQuotingTestKey test\n")
    (spec_dir / "gpuenv.toml").write_text('name = "nl"\nframeworks = ["torch>=2.4"]\n[gpu]\ndriver = "550.54.15"\n'
                                          '[access.ssh]\nauthorized_key = "k.pub"\n')
    run = subprocess.run(["python3", "-m", "gpuenv", "generate"], cwd=spec_dir, capture_output=True, text=True,
                         timeout=120, env=_env())
    assert run.returncode == 2 and "cannot be written into .env" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (spec_dir / ".env").exists()


def _env() -> dict[str, str]:
    import os
    import sys

    return {**os.environ, "PATH": str(Path(sys.executable).parent) + ":" + os.environ["PATH"]}
