"""`gpuenv plan` and `gpuenv matrix` as a user meets them: a real process, the JSON contract, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.host.nvidia import parse_query

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "tests/fixtures/hosts/h200-firecracker-2026-11-22"
CONTRACT = {"ok", "python", "cuda", "cudnn", "cuda_source", "base_image", "min_driver", "packages", "gpu_archs",
            "reasons"}


def gpuenv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_plan_json_is_the_documented_contract():
    run = gpuenv("plan", "tensorflow==1.2.1", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert CONTRACT <= set(data)
    assert {k: data[k] for k in ("ok", "python", "cuda", "cudnn", "cuda_source", "min_driver")} == {
        "ok": True, "python": "3.6", "cuda": "8.0", "cudnn": "5.1", "cuda_source": "base-image",
        "min_driver": "375.26"}
    assert data["packages"] == ["tensorflow-gpu==1.2.1"]
    assert all(isinstance(a, str) and a.startswith("sm_") for a in data["gpu_archs"])
    assert len(data["reasons"]) >= 4


def test_an_impossible_plan_exits_3_with_code_message_and_alternatives():
    run = gpuenv("plan", "tensorflow==1.13.1", "--driver", "384.90", "--json")
    assert run.returncode == 3
    data = json.loads(run.stdout)
    assert data["ok"] is False
    error = data["error"]
    assert error["code"] == "driver-too-old"
    assert error["message"].startswith("driver 384.90 runs CUDA <= 9.0; tensorflow==1.13.1 needs CUDA 10.0")
    assert error["alternatives"] == ["tensorflow<=1.12.x (CUDA 9.0)", "a driver >= 410.48"]
    assert "error: driver 384.90 runs CUDA <= 9.0" in run.stderr


def test_plan_text_says_why():
    run = gpuenv("plan", "mxnet-cu90mkl==1.2.1")
    assert run.returncode == 0, run.stderr
    assert "mxnet-cu90mkl==1.2.1" in run.stdout and "why" in run.stdout and "384.81" in run.stdout


def test_plan_reads_the_spec_in_the_current_folder():
    run = gpuenv("plan", "--json", cwd=ROOT / "examples/tf-cuda9-old-driver")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["packages"] == ["tensorflow-gpu==1.12.3"] and data["target"]["driver"] == "384.90"


@pytest.mark.parametrize("args,message,hint", [
    (["tensorflwo"], "request: 'tensorflwo' is not a framework gpuenv knows", "did you mean tensorflow?"),
    (["pytorch"], "request: 'pytorch' is not the name of a package on PyPI", "use torch"),
    (["torch", "--driver", "abc"], "--driver: 'abc' is not an NVIDIA driver version", "384.90"),
    (["torch", "--gpu-name", "Tesla V999"], "--gpu-name: gpuenv does not know the GPU 'Tesla V999'", "V100"),
    (["torch", "--gpu", "4.2"], "--gpu: '4.2' is not a compute capability gpuenv knows", "9.0"),
    (["torch", "--python", "three"], "--python: 'three' is not a Python version", "3.6"),
    (["torch", "--file", "examples/torch/gpuenv.toml"], "give either REQUIREMENTs or --file", "spec"),
])
def test_bad_input_is_exit_2_with_a_hint_and_no_traceback(args, message, hint):
    run = gpuenv("plan", *args)
    assert run.returncode == 2, run.stdout
    assert f"error: {message}" in run.stderr and hint in run.stderr
    assert "Traceback" not in run.stderr


def test_cuda_with_no_framework_is_cuda_alone_from_an_nvidia_cuda_runtime_base():
    """gpu.cuda alone (issue 16): the system CUDA of the nvidia/cuda runtime image of that CUDA, its driver
    floor from that release (12.4.1: >= 550.54.15, CUDA release notes Table 3); too old a driver is exit 3."""
    run = gpuenv("plan", "pandas", "--cuda", "12.4", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["base_image"].startswith("nvidia/cuda:12.4.") and "-runtime-" in data["base_image"]
    assert (data["cuda"], data["cuda_source"], data["min_driver"]) == ("12.4", "base-image", "550.54.15")
    assert data["packages"] == [] and data["user_packages"] == ["pandas"]
    old = gpuenv("plan", "pandas", "--cuda", "12.4", "--driver", "470.82.01")
    assert old.returncode == 3 and "driver >= 550.54.15" in old.stderr, old.stderr


def test_a_missing_spec_is_exit_2(tmp_path):
    run = gpuenv("plan", cwd=tmp_path)
    assert run.returncode == 2 and "gpuenv.toml" in run.stderr


def test_matrix_lists_what_runs_newest_first():
    run = gpuenv("matrix", "tensorflow", "--driver", "384.90", "--json")
    assert run.returncode == 0, run.stderr
    versions = json.loads(run.stdout)["versions"]
    assert versions[0]["version"] == "1.12.3" and versions[0]["cuda"] == "9"
    assert [v["version"] for v in versions] == sorted((v["version"] for v in versions),
                                                      key=lambda s: tuple(int(p) for p in s.split(".")), reverse=True)
    assert all(v["cuda"] in ("8", "9") for v in versions)
    assert versions[-1]["version"].startswith("1.0")


def test_matrix_text_for_a_gpu_name():
    run = gpuenv("matrix", "torch", "--gpu-name", "Tesla K80")
    assert run.returncode == 0, run.stderr
    assert "2.7.1" in run.stdout and "2.15.0" not in run.stdout


def test_the_h200_recording_parses_to_driver_and_compute_capability():
    host = parse_query((H200 / "nvidia-smi-query-gpu.csv").read_text())
    assert host.driver == "580.159.04"
    assert [(g.index, g.name, g.cc) for g in host.gpus] == [(0, "NVIDIA H200", "9.0")]


def test_an_old_driver_without_compute_cap_parses_with_no_cc():
    host = parse_query("index, name, uuid, driver_version\n0, Tesla K80, GPU-1, 384.90\n")
    assert host.driver == "384.90" and host.gpus[0].cc is None


def test_this_host_is_read_through_nvidia_smi(tmp_path):
    """An `nvidia-smi` on PATH that replays the H200 machine's recorded answer stands for that host."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *--query-gpu=*) cat '{H200 / 'nvidia-smi-query-gpu.csv'}';; "
                    f"*) exit 9;; esac\n")
    fake.chmod(0o755)
    import os

    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "gpuenv", "plan", "torch==2.11.0", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    target = json.loads(run.stdout)["target"]
    assert target == {"origin": "this host", "driver": "580.159.04", "max_cuda": "13.x",
                      "gpus": [{"name": "NVIDIA H200", "cc": "9.0"}]}


def test_a_host_without_nvidia_smi_plans_without_a_driver_limit(tmp_path):
    import os

    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run([sys.executable, "-m", "gpuenv", "plan", "tensorflow==1.2.1", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=env)
    data = json.loads(run.stdout)
    assert data["target"]["driver"] is None and data["min_driver"] == "375.26"
    assert any("no driver limit was given" in r for r in data["reasons"])


def test_an_nvidia_smi_without_compute_cap_is_asked_again_and_the_gpu_found_by_name(tmp_path):
    """nvidia-smi before R510 refuses the field (its real message, published upstream); the probe
    asks again without it and the knowledge base knows the GPU by its name."""
    refusal = H200.parent / "upstream-inference-snaps-smi470-on-driver580" / "nvidia-smi-query-gpu.out"
    recorded = (H200 / "nvidia-smi-query-gpu.csv").read_text().splitlines()
    keep = [i for i, name in enumerate(recorded[0].split(", ")) if name != "compute_cap"]
    without_cc = "\n".join(", ".join(line.split(", ")[i] for i in keep) for line in recorded) + "\n"
    (tmp_path / "answer.csv").write_text(without_cc)
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *compute_cap*) cat '{refusal}'; exit 2;; "
                    f"*--query-gpu=*) cat '{tmp_path / 'answer.csv'}';; *) exit 9;; esac\n")
    fake.chmod(0o755)
    import os

    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "gpuenv", "plan", "torch==2.11.0", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    target = json.loads(run.stdout)["target"]
    assert target["driver"] == "580.159.04" and target["gpus"] == [{"name": "NVIDIA H200", "cc": "9.0"}]


def test_no_framework_is_a_cpu_only_environment_with_the_packages_as_written():
    """An environment with no framework (a data-science notebook) is valid: the newest Python a known base
    has, or the one asked; no CUDA, no driver; the packages installed as written (issue 16, bullet 3)."""
    run = gpuenv("plan", "pandas", "scikit-learn", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["frameworks"] == [] and data["packages"] == [] and data["cuda_source"] == "none"
    assert data["user_packages"] == ["pandas", "scikit-learn"] and data["min_driver"] is None
    assert data["base_image"].startswith(f"python:{data['python']}-slim")
    assert not any("pip wheels" in reason for reason in data["reasons"]), data["reasons"]
    older = json.loads(gpuenv("plan", "pandas", "--python", "3.8", "--json").stdout)
    assert older["python"] == "3.8" and older["base_image"].startswith("python:3.8-slim")


def test_init_jupyter_with_no_framework_then_plan(tmp_path):
    """`gpuenv init --jupyter` writes a spec with no framework; `plan` of it is a CPU-only environment."""
    made = gpuenv("init", "--jupyter", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    run = gpuenv("plan", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["cuda_source"] == "none"
