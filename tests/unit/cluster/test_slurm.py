"""The job script's lines (GPUs, quoting), the partition's GRES as `sinfo -o %G` prints it, squeue's jobs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.cluster.slurm import JobRequest, gpu_lines, gres_of, has_gpus, job_script, parse_squeue


def _job(**changes: object) -> JobRequest:
    base = dict(name="vision", export=Path("/shared/vision"), command=("python", "train.py"), gpus=0)
    base.update(changes)
    return JobRequest(**base)  # type: ignore[arg-type]


def test_gpus_are_asked_as_a_gres_line_and_none_asks_for_none() -> None:
    assert gpu_lines(2) == ["#SBATCH --gres=gpu:2"]
    script = job_script(_job(gpus=4, partition="a100", time="1:00:00"))
    assert "#SBATCH --gres=gpu:4\n" in script and "#SBATCH --partition=a100\n" in script
    assert "#SBATCH --time=1:00:00\n" in script
    assert "--gres" not in job_script(_job(gpus=0)) and "--partition" not in job_script(_job())


def test_the_node_is_checked_before_the_command_and_the_container_is_deleted_on_the_way_out() -> None:
    lines = job_script(_job()).splitlines()
    check = next(i for i, line in enumerate(lines) if " -m gpuenv job-config " in line)
    run = next(i for i, line in enumerate(lines) if ' run --bundle "$job_dir"' in line)
    assert lines[0] == "#!/bin/sh" and "set -eu" in lines and check < run
    assert any(line.startswith("trap ") and "delete --force" in line and "EXIT" in line for line in lines)
    assert "trap 'exit 143' TERM INT" in lines


def test_a_hostile_command_and_name_stay_words() -> None:
    hostile = ("sh", "-c", "echo $(id) `x`; rm -rf / # '\"", "a b")
    script = job_script(_job(command=hostile, name="x; reboot", export=Path("/sh ared/$HOME")))
    line = next(x for x in script.splitlines() if " job-config " in x)
    assert shlex.split(line)[-4:] == list(hostile)
    assert "#SBATCH --job-name='gpuenv-x; reboot'" in script
    assert "export_dir='/sh ared/$HOME'" in script


def test_gres_of_sinfo_output() -> None:
    assert gres_of("(null)\n") == [] and not has_gpus(gres_of("(null)\n"))
    assert has_gpus(gres_of("gpu:a100:4(S:0-1)\n(null)\n"))
    assert has_gpus(gres_of("gpu:2,shard:8\n"))
    assert not has_gpus(gres_of("mps:100,gpuless:1\n"))


def test_squeue_lists_only_gpuenv_jobs() -> None:
    text = ("41|RUNNING|1:02|node7|None|gpuenv:vision\n"
            "42|PENDING|0:00||Resources|gpuenv:nlp\n"
            "43|RUNNING|5:00|node2|None|someone else's comment\n")
    jobs = parse_squeue(text)
    assert [(j.id, j.name, j.state, j.node, j.reason) for j in jobs] == [
        ("41", "vision", "RUNNING", "node7", ""), ("42", "nlp", "PENDING", "", "Resources")]


def test_the_jupyter_job_starts_jupyter_on_the_node_and_its_ready_check_and_holds_no_token() -> None:
    script = job_script(_job(command=(), jupyter="lab"))
    lines = script.splitlines()
    config = next(line for line in lines if " -m gpuenv job-config " in line)
    assert shlex.split(config)[-4:] == ["--jupyter", "lab", "$export_dir", "$job_dir"]   # options before the folders
    run = next(i for i, line in enumerate(lines) if ' run --bundle "$job_dir"' in line)
    ready = next(i for i, line in enumerate(lines) if " -m gpuenv job-ready " in line)
    assert run < ready < lines.index("wait $pid") and lines[ready + 1] == "ready=$!"
    trap = next(line for line in lines if line.startswith("trap ") and "EXIT" in line)
    assert 'kill "$ready"' in trap and "|| true" in trap        # the ready check ends with the job
    assert "TOKEN" not in script and "job-ready" not in job_script(_job())


@pytest.mark.parametrize("args, said", [
    (("up", "--partition", "a100"), "--partition and --time go with --on slurm"),
    (("up", "--on", "docker", "--time", "1:00:00"), "--partition and --time go with --on slurm"),
    (("up", "--on", "slurm", "torch"), "`up --on slurm` runs the Jupyter of ./gpuenv.toml's built image"),
    (("up", "--on", "slurm", "--gpus", "0"), "`up --on slurm` runs the Jupyter of ./gpuenv.toml's built image"),
    (("down", "--on", "slurm", "vision"), "`down --on slurm` takes no name"),
])
def test_up_and_down_on_slurm_refuse_options_of_other_targets_before_anything_runs(
        tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PATH": str(tmp_path)})     # no Slurm, no docker either
    assert done.returncode == 2 and said in done.stderr and "hint:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


def test_up_on_slurm_without_slurm_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gpuenv", "up", "--on", "slurm"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 1 and "Slurm's commands are not on PATH" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
