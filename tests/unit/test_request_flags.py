"""Every word of a short request has a flag that says the same: `gpuenv init torch cpu` is
`gpuenv init torch --cpu`, for init and up (their spec flags) and, for the words a plan reads, plan."""

from __future__ import annotations

import json

import click
import pytest

from gpuenv.cli.main import cli, run
from gpuenv.spec import request as request_words

WORDS = sorted(request_words.FLAGS_OF_WORDS)


def _json(capsys, *argv: str) -> dict:
    code = run(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_every_fixed_word_the_request_reads_has_its_flag():
    fixed = set(request_words._ACCESS) | set(request_words._DEVICES) | {"tensorboard", "latest"}
    assert fixed <= set(request_words.FLAGS_OF_WORDS), fixed - set(request_words.FLAGS_OF_WORDS)


@pytest.mark.parametrize("verb", ["init", "up"])
def test_every_flag_of_a_word_is_a_flag_of_the_verb(verb):
    command = cli.get_command(click.Context(cli), verb)
    names = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word, flags in request_words.FLAGS_OF_WORDS.items():
        assert all(f in names for f in flags if f.startswith("--")), (verb, word, flags)


@pytest.mark.parametrize("word", WORDS)
def test_a_word_and_its_flag_make_the_same_spec(word, capsys):
    by_word = _json(capsys, "init", "torch", word, "-f", "-", "--json")["spec"]
    by_flag = _json(capsys, "init", "torch", *request_words.FLAGS_OF_WORDS[word], "-f", "-", "--json")["spec"]
    assert by_word == by_flag


@pytest.mark.parametrize("words,flags", [(["torch", "cpu"], ["torch", "--cpu"]),
                                         (["mxnet", "cu90"], ["mxnet", "--cuda", "9.0"]),
                                         (["tensorflow", "py36"], ["tensorflow", "--python", "3.6"])])
def test_plan_reads_the_flag_as_the_word(words, flags, capsys):
    assert _json(capsys, "plan", *words, "--json") == _json(capsys, "plan", *flags, "--json")


def test_cpu_contradicting_the_devices_is_bad_input(capsys):
    assert run(["init", "torch", "--cpu", "--devices", "0", "-f", "-"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert run(["init", "torch", "cpu", "gpu", "-f", "-"]) == 2


@pytest.mark.parametrize("verb", ["init", "up"])
def test_the_toolkit_level_is_a_flag_of_the_verbs_that_write_a_spec(verb, capsys):
    command = cli.get_command(click.Context(cli), verb)
    assert "--toolkit" in {opt for param in command.params for opt in getattr(param, "opts", [])}
    spec = _json(capsys, "init", "torch", "--toolkit", "devel", "-f", "-", "--json")["spec"]
    assert spec["gpu"]["toolkit"] == "devel"
    code = run(["init", "torch", "--toolkit", "devle", "-f", "-"])
    said = capsys.readouterr().err
    assert code == 2 and "--toolkit: gpu.toolkit: must be one of 'auto', 'runtime' or 'devel'" in said
