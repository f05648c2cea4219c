"""`gpuenv plan` as a real process: what was written is planned exactly, or refused (exit 3) naming what exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def gpuenv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_a_jax_extra_the_release_does_not_publish_exits_3_naming_the_extras_it_does():
    run = gpuenv("plan", "jax[cuda13]==0.4.30", "--driver", "590.48.01")
    assert run.returncode == 3, run.stderr
    first = run.stderr.splitlines()[0]
    assert first.startswith("error: jax[cuda13]==0.4.30: jax 0.4.30 publishes the CUDA extras ")
    assert "cuda12, cuda12_local, cuda12_pip; not [cuda13]" in first
    assert run.stderr.splitlines()[1].startswith("hint: options: jax[cuda12")
    assert "; or jax[cuda13]==0.7.2" in run.stderr  # the nearest release that has it
    assert "Traceback" not in run.stderr


def test_the_refusal_in_json_has_the_code_and_the_existing_builds():
    run = gpuenv("plan", "jax[cuda13]==0.4.30", "--json")
    assert run.returncode == 3
    error = json.loads(run.stdout)["error"]
    assert error["code"] == "no-such-version"
    assert "jax[cuda12]==0.4.30" in error["alternatives"]


def test_a_torch_local_version_is_planned_with_pytorchs_index():
    run = gpuenv("plan", "torch==2.4.1+cu118", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["packages"][0] == "torch==2.4.1+cu118"
    assert data["cuda"] == "11.8" and data["cuda_source"] == "wheels"
    assert data["pip_options"] == ["--extra-index-url", "https://download.pytorch.org/whl/cu118"]
    assert [f["variant"] for f in data["frameworks"]] == ["cu118"]


def test_a_torch_local_version_pytorch_did_not_publish_names_those_it_did():
    run = gpuenv("plan", "torch==2.4.1+cu117")
    assert run.returncode == 3
    assert "torch 2.4.1 is published with the local versions +cu118, +cu121, +cu124, +cpu" in run.stderr


def test_tensorflow_gpu_2_12_is_refused_with_the_fix():
    run = gpuenv("plan", "tensorflow-gpu==2.12.0")
    assert run.returncode == 3
    assert "error: tensorflow-gpu==2.12.0: tensorflow-gpu 2.12.0 is published only as a 2.6 kB sdist" in run.stderr
    assert "hint: options: tensorflow==2.12.0" in run.stderr


def test_a_bare_version_after_an_extra_keeps_the_extra(tmp_path):
    run = subprocess.run([sys.executable, "-m", "gpuenv", "init", "tensorflow[and-cuda] 2.15.0", "-f", "-"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert '"tensorflow[and-cuda]==2.15.0"' in run.stdout


def test_a_framework_named_by_url_is_refused_not_planned_unpinned():
    run = gpuenv("plan", "--json", "torch@https://download.pytorch.org/whl/cu118/torch-2.4.1-cp312-none-any.whl")
    assert run.returncode == 2
    assert "by URL" in run.stderr or "by URL" in run.stdout


def test_matrix_shows_the_extra_of_each_build():
    run = gpuenv("matrix", "jax")
    assert run.returncode == 0, run.stderr
    assert "jax[cuda12]==" in run.stdout  # rich markup would eat "[cuda12]" unless escaped
