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
