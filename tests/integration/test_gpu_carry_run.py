"""scripts/gpu/carry run for real (its wheels part, through this machine's proxy) into a folder of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]


def test_carry_fills_the_wheels_pyproject_asks_for_and_they_hold_together(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "scripts" / "gpu" / "wheels.py")
    wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheels)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "pydantic-1.0.0-py3-none-any.whl").write_bytes(b"stale")
    run = subprocess.run([str(ROOT / "scripts" / "gpu" / "carry"), "wheels"], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "GPUENV_CARRY_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    carried = {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in (tmp_path / "wheels").glob("*.whl")}
    wanted = {canonicalize_name(r.name) for r in wheels.wanted((ROOT / "pyproject.toml").read_text())}
    assert wanted <= set(carried) and "zstandard" in carried and "typing-extensions" in carried
    assert not set(carried) & wheels.PRESENT
    assert not (tmp_path / "wheels" / "pydantic-1.0.0-py3-none-any.whl").exists()
    assert wheels.check(tmp_path / "wheels", wheels.wanted((ROOT / "pyproject.toml").read_text())) == []
    assert not (tmp_path / "docker-bin.tar.xz").exists()          # only the part asked for
