"""`gpuenv matrix` / `gpuenv plan` for PaddlePaddle and CuPy as a user meets them: a real process, JSON, exit codes.

The versions come from the shipped PyPI snapshot (pypi.json) and the rows of kb/data/paddle.toml and cupy.toml.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gpuenv.resolve.builds import published

ROOT = Path(__file__).resolve().parents[2]


def gpuenv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def _json(run: subprocess.CompletedProcess) -> dict:
    return json.loads(run.stdout)


def test_matrix_paddlepaddle_gpu_lists_pypi_and_paddle_index_builds():
    run = gpuenv("matrix", "paddlepaddle-gpu", "--json")
    assert run.returncode == 0, run.stderr
    rows = {r["version"]: r for r in _json(run)["versions"]}
    assert set(published("paddlepaddle-gpu") or {}) <= set(rows)   # every PyPI release, 1.7.0.post97 on
    assert rows["2.6.2"]["cuda"] == "11.8" and rows["2.6.2"]["cuda_source"] == "base-image"
    assert rows["2.6.2.post120"]["cuda"] == "12.0"                  # Paddle's own index
    assert rows["3.3.1"]["cuda_source"] == "wheels"


def test_matrix_cupy_cuda12x_lists_every_release_with_a_driver_that_fits():
    run = gpuenv("matrix", "cupy-cuda12x", "--driver", "535.54.03", "--json")
    assert run.returncode == 0, run.stderr
    rows = _json(run)["versions"]
    assert [r["version"] for r in rows][:1] == ["14.2.0"] and rows[-1]["version"] == "11.5.0"
    assert {r["cuda"] for r in rows} <= {"12.0", "12.1", "12.2"}                # 535 runs CUDA <= 12.2 natively


def test_plan_paddle_gives_cuda_cudnn_driver_and_base():
    run = gpuenv("plan", "paddlepaddle-gpu==2.4.2", "--json")
    assert run.returncode == 0, run.stderr
    data = _json(run)
    assert (data["cuda"], data["cudnn"], data["min_driver"]) == ("10.2", "7.6.5", "440.33")
    assert data["base_image"].startswith("nvidia/cuda:10.2-cudnn7-runtime-")
    assert data["packages"] == ["paddlepaddle-gpu==2.4.2"]


def test_plan_paddle_from_its_own_index_says_so_and_adds_the_index():
    run = gpuenv("plan", "paddlepaddle-gpu==3.0.0", "--driver", "560.35.03", "--json")
    assert run.returncode == 0, run.stderr
    data = _json(run)
    assert data["pip_options"] == ["--extra-index-url", "https://www.paddlepaddle.org.cn/packages/stable/cu126/"]
    assert data["min_driver"] == "550.54.14" and data["base_image"].startswith("python:")
    assert any("Paddle's own index" in r for r in data["reasons"])


def test_plan_cupy_gives_cuda_driver_and_base():
    run = gpuenv("plan", "cupy-cuda12x==13.6.0", "--driver", "550.54.14", "--json")
    assert run.returncode == 0, run.stderr
    data = _json(run)
    assert (data["cuda"], data["cuda_source"], data["min_driver"]) == ("12.4", "base-image", "550.54.14")
    assert data["base_image"].startswith("nvidia/cuda:12.4.0-runtime-")   # 12.4.1 needs 550.54.15


def test_a_version_that_does_not_exist_is_exit_3_naming_those_that_do():
    for words, near in ((["paddlepaddle-gpu==2.6.9"], "paddlepaddle-gpu==2.6.2"),
                        (["cupy-cuda12x==13.9.0"], "cupy-cuda12x==13.6.0")):
        run = gpuenv("plan", *words, "--json")
        assert run.returncode == 3, run.stderr
        error = _json(run)["error"]
        assert error["code"] == "no-such-version", error
        assert any(alt.startswith(near) for alt in error["alternatives"]), error
        assert "error:" in run.stderr and "hint:" in run.stderr and "Traceback" not in run.stderr


def test_plain_cupy_is_refused_with_the_wheel_to_use():
    run = gpuenv("plan", "cupy==14.2.0")
    assert run.returncode == 3
    assert "source distribution" in run.stderr and "cupy-cuda12x==14.2.0" in run.stderr


def test_cupy_and_torch_share_the_cuda_the_solver_allows():
    run = gpuenv("plan", "torch==2.5.1", "cupy-cuda12x[ctk]==14.2.0", "--json")
    assert run.returncode == 0, run.stderr
    data = _json(run)
    assert data["cuda_source"] == "wheels" and data["packages"] == ["torch==2.5.1", "cupy-cuda12x[ctk]==14.2.0"]
    clash = gpuenv("plan", "torch==2.5.1", "cupy-cuda13x[ctk]==14.2.0", "--json")
    assert clash.returncode == 3 and _json(clash)["error"]["code"] == "conflict"
