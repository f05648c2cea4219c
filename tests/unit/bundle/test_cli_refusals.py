"""`gpuenv load` and `gpuenv save` refusing bad input as a user meets it: a real process, exit 2, the
error and hint on stderr, nothing written (these refusals come before any engine is asked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import make_bundle


def gpuenv(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent/docker.sock", "HOME": str(cwd),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def test_load_refuses_a_damaged_bundle_before_the_engine(tmp_path: Path) -> None:
    path = make_bundle(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    before = sorted(p.name for p in tmp_path.iterdir())
    run = gpuenv("load", str(path), "--json", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "error:" in run.stderr and "does not match its checksum" in run.stderr and "hint:" in run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.stdout)["error"]["type"] == "Damaged"
    assert sorted(p.name for p in tmp_path.iterdir()) == before          # no folder, no temp file


def test_load_refuses_a_truncated_bundle(tmp_path: Path) -> None:
    path = make_bundle(tmp_path)
    path.write_bytes(path.read_bytes()[:5000])
    run = gpuenv("load", str(path), cwd=tmp_path)
    assert run.returncode == 2 and "is truncated" in run.stderr


def test_load_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a bundle\n" * 100)
    run = gpuenv("load", "notes.txt", cwd=tmp_path)
    assert run.returncode == 2 and "is not a gpuenv bundle" in run.stderr


def test_load_refuses_to_replace_a_different_spec(tmp_path: Path) -> None:
    path = make_bundle(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "gpuenv.toml").write_text('name = "mine"\n')
    run = gpuenv("load", str(path), "--into", "mine", cwd=tmp_path)
    assert run.returncode == 2 and "differs from the bundle's gpuenv.toml" in run.stderr and "--force" in run.stderr
    assert (tmp_path / "mine" / "gpuenv.toml").read_text() == 'name = "mine"\n'


def test_save_refuses_an_existing_output(tmp_path: Path) -> None:
    (tmp_path / "x.gpuenv").write_text("keep me")
    run = gpuenv("save", "-o", "x.gpuenv", cwd=tmp_path)
    assert run.returncode == 2 and "x.gpuenv exists" in run.stderr and "--force" in run.stderr
    assert (tmp_path / "x.gpuenv").read_text() == "keep me"
