"""A new user, with no SSH key and an empty home, renders every example: real processes, real ssh-keygen."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "gpuenv.toml").is_file())


def gpuenv(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_STATE_HOME": str(home / ".state"), "XDG_DATA_HOME": str(home / ".data")}
    env.pop("SUDO_UID", None)
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _ssh_examples() -> list[str]:
    return [n for n in NAMES if "[access.ssh]" in (EXAMPLES / n / "gpuenv.toml").read_text()]


@pytest.mark.parametrize("name", NAMES)
def test_every_example_plans_and_renders_in_an_empty_home(name, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    planned = gpuenv("plan", "-f", str(EXAMPLES / name), home=home, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    run = gpuenv("generate", "-f", str(EXAMPLES / name), "--out", str(tmp_path / "out"), home=home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "Dockerfile").is_file() and (tmp_path / "out" / "compose.yaml").is_file()


def test_some_example_asks_for_ssh():
    assert _ssh_examples(), "no example with [access.ssh]: the key-making path below tests nothing"


@pytest.mark.parametrize("name", _ssh_examples())
def test_an_ssh_example_makes_gpuenvs_own_key_once_and_never_overwrites_it(name, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    run = gpuenv("generate", "-f", str(EXAMPLES / name), "--out", str(tmp_path / "out"), home=home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    private, public = home / ".ssh" / "gpuenv_ed25519", home / ".ssh" / "gpuenv_ed25519.pub"
    assert public.read_text().startswith("ssh-ed25519 ")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert f"GPUENV_SSH_AUTHORIZED_KEY={public}" in (tmp_path / "out" / ".env").read_text()
    assert f"-i {private} " in run.stdout and f"IdentityFile {private}" in run.stdout
    made = private.read_bytes(), public.read_bytes()
    again = gpuenv("generate", "-f", str(EXAMPLES / name), "--out", str(tmp_path / "out"), home=home, cwd=tmp_path)
    assert again.returncode == 0 and (private.read_bytes(), public.read_bytes()) == made


def test_a_private_key_whose_public_half_is_missing_is_kept_and_its_public_half_derived(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    private = home / ".ssh" / "gpuenv_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mine", "-f", str(private)], check=True,
                   stdin=subprocess.DEVNULL)
    kept = private.read_bytes()
    wanted = private.with_suffix(".pub").read_text().split()[:2]
    private.with_suffix(".pub").unlink()
    project = tmp_path / "project"         # not the folder above HOME: that workspace would be refused
    project.mkdir()
    (project / "gpuenv.toml").write_text('name = "keys"\nframeworks = ["torch"]\n[access.ssh]\nauthorized_key = "auto"\n')
    run = gpuenv("generate", home=home, cwd=project)
    assert run.returncode == 0, run.stderr
    assert private.read_bytes() == kept
    assert private.with_suffix(".pub").read_text().split()[:2] == wanted
