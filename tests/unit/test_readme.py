"""README.md stays true: its spec block is a valid spec that shows every key, its commands exist."""

from __future__ import annotations

import os
import re
from pathlib import Path

from gpuenv.spec import EnvSpec, parse_spec
from gpuenv.spec.model import Access, Gateway, Gpu, Jupyter, Network, Run, Ssh, Workspace

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def spec_block() -> str:
    section = README.split("## The spec", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_the_spec_block_is_a_valid_spec():
    spec = parse_spec(spec_block(), source="README.md", base_dir=None)
    assert spec.frameworks == ["tensorflow==1.2.1"]


def test_the_spec_block_shows_every_key():
    block = spec_block()
    for model in (EnvSpec, Gpu, Access, Jupyter, Gateway, Ssh, Workspace, Network, Run):
        for name in model.model_fields:
            assert re.search(rf"^#? ?{name} = |^\[(access\.)?{name}\]", block, re.M), name


def test_the_two_set_up_commands_lead_the_readme_and_exist():
    top = README.split("## ", 1)[0]
    commands = re.findall(r"^\./(scripts/\w+)", top, re.M)
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


# --- the README's commands: the Status paragraph, every `gpuenv` line, and the Quickstart run for real ---

def _section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _sh_lines() -> list[str]:
    """Every command line of the README's sh blocks that runs gpuenv, without its comment."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            command = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if re.search(r"(^|\s)gpuenv\s", command):
                lines.append(command)
    return lines


def _check_tokens(tokens: list[str]) -> None:
    """Each verb a line names exists, and each option is one its verb takes (`a | b` lists alternatives)."""
    import click

    from gpuenv.cli.main import cli

    command: click.Command = cli
    passing_on = False
    for i, token in enumerate(tokens):
        word = token.strip("[]").rstrip(".")
        if word == "|":
            following = tokens[i + 1].strip("[]") if i + 1 < len(tokens) else ""
            if cli.get_command(click.Context(cli), following) is not None:
                command, passing_on = cli, False
            continue
        if passing_on or not word:
            continue
        if word == "--":                               # the end of gpuenv's options: the rest is a command
            passing_on = True
            continue
        if word.startswith("-"):
            names = {o for p in command.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
            assert word.split("=", 1)[0] in names | {"-h", "--help"}, (tokens, word, command.name)
        elif isinstance(command, click.Group):
            found = command.get_command(click.Context(command), word)
            assert found is not None, f"`{' '.join(tokens)}`: no verb {word!r}"
            command = found
        elif not command.context_settings.get("allow_interspersed_args", True):
            passing_on = True                          # exec: the rest is the command's


def test_every_gpuenv_command_in_the_readme_names_verbs_and_options_that_exist():
    import shlex

    lines = _sh_lines()
    assert len(lines) > 30
    for line in lines:
        tokens = shlex.split(line.replace("...", ""))
        start = tokens.index("gpuenv")
        _check_tokens(tokens[start + 1:])


def test_the_status_paragraph_names_every_verb_and_promises_none_to_come():
    from gpuenv.cli.main import LazyGroup

    status = README.split("**Status.**", 1)[1].split("\n\n", 1)[0]
    assert "come next" not in status and "not built" not in status
    for verb in LazyGroup.VERBS:
        assert re.search(rf"`(gpuenv )?{verb}[` ]", status), verb


def _quickstart() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", _section("Quickstart"), re.S).group(1)
    return [re.split(r"\s+#", line, maxsplit=1)[0].strip() for line in block.splitlines() if line.strip()]


ENGINE_VERBS = {"doctor", "up", "verify", "build"}     # need the engine and the network: checked by name only


def test_the_quickstart_runs_from_the_folders_it_is_typed_in(tmp_path):
    """The Quickstart typed from a checkout: `cd` is followed, each gpuenv command that needs no engine
    runs (its exit code as its comment says, else 0), and the short request said to be "the same" is."""
    import shlex
    import subprocess
    import sys

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    cwd, specs = tmp_path, []
    for line in _quickstart():
        tokens = shlex.split(line)
        if tokens[:1] == ["mkdir"]:
            (cwd / tokens[1]).mkdir()
        if "cd" in tokens:
            cwd = cwd / tokens[tokens.index("cd") + 1]
        if tokens[:1] != ["gpuenv"] or tokens[1] in ENGINE_VERBS:
            continue
        run = subprocess.run([sys.executable, "-m", "gpuenv", *tokens[1:]], cwd=cwd, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
        comment = README.split(line, 1)[1].split("\n", 1)[0]
        expected = int(re.search(r"\(exit (\d)\)", comment).group(1)) if "(exit " in comment else 0
        assert run.returncode == expected, (line, run.stderr)
        if tokens[1] == "init":
            specs.append((comment, parse_spec((cwd / "gpuenv.toml").read_text(), source="q", base_dir=cwd)))
    said_same = [spec for comment, spec in specs if "the same" in comment]
    assert said_same and all(spec == specs[0][1] for spec in said_same), specs


def test_every_example_path_outside_the_quickstart_is_one_from_the_checkout():
    quickstart = set(_quickstart())
    paths = [(line, p) for line in _sh_lines() if line not in quickstart
             for p in re.findall(r"(?<![\w./])(examples/[\w.-]+)", line)]
    assert paths
    for line, path in paths:
        assert (ROOT / path / "gpuenv.toml").is_file(), line
