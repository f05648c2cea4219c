"""A job's first step on its node, on recorded nodes: the job's GPUs from Slurm's variables, the config.json
it writes for them, and the refusal of a node whose driver is too old for the image (exit 3)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gpuenv.cluster.export import record
from gpuenv.cluster.node import allocated, job_config
from gpuenv.cluster.runtime import ImageConfig, Settings
from gpuenv.errors import GpuenvError, ImpossibleRequest
from gpuenv.host.observe import load_recording

from tests.unit.host.recorded import H200, HOSTS

GPU_IMAGE = ImageConfig(cmd=("bash",), labels=(("io.gpuenv.cuda", "12.8"), ("io.gpuenv.cuda-source", "wheels"),
                                               ("io.gpuenv.gpu-archs", "sm_80,sm_90"),
                                               ("io.gpuenv.min-driver", "525.60.13")))
OLD_DRIVER = HOSTS / "upstream-openpai-2x-gtx1070-384"        # driver 384.66, published (UPSTREAM.md)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    (folder / "bundle" / "rootfs").mkdir(parents=True)
    settings = Settings(1234, 1234, str(tmp_path / "ws"))
    (folder / "gpuenv-export.json").write_text(json.dumps(record("img:1", "sha256:ab", GPU_IMAGE, settings)))
    return folder


def test_the_jobs_gpus_come_from_slurm_then_cuda_visible_devices_else_none() -> None:
    assert allocated({"SLURM_JOB_GPUS": "0,2", "CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "2"]
    assert allocated({"CUDA_VISIBLE_DEVICES": "GPU-1f2e"}) == ["GPU-1f2e"]
    assert allocated({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}) == [] and allocated({}) == []


def test_a_job_given_gpu_0_on_the_recorded_h200_gets_it_and_its_command(export: Path, tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "7"
    given = job_config(export, job, {"SLURM_JOB_GPUS": "0", "SLURM_JOB_ID": "7"}, ("python", "t.py"),
                       load_recording(H200))
    conf = json.loads((job / "config.json").read_text())
    assert given["gpus"] == "0" and given["driver"] == "580.159.04"
    assert "/dev/nvidia0" in [d["path"] for d in conf["linux"]["devices"]]
    assert conf["process"]["args"] == ["python", "t.py"] and "SLURM_JOB_ID=7" in conf["process"]["env"]
    assert conf["root"]["path"] == str((export / "bundle" / "rootfs").resolve())
    assert conf["linux"]["cgroupsPath"] == "gpuenv-7"
    assert stat.S_IMODE((job / "config.json").stat().st_mode) == 0o600


def test_a_job_without_gpus_gets_no_device(export: Path, tmp_path: Path) -> None:
    job_config(export, tmp_path / "j", {"SLURM_JOB_ID": "8"}, ("true",), load_recording(H200))
    assert json.loads((tmp_path / "j" / "config.json").read_text())["linux"]["devices"] == []


def test_a_gpu_slurm_gave_that_the_node_lacks_is_an_error(export: Path, tmp_path: Path) -> None:
    with pytest.raises(GpuenvError, match="no such NVIDIA device"):
        job_config(export, tmp_path / "j", {"SLURM_JOB_GPUS": "5"}, ("true",), load_recording(H200))


def test_a_node_whose_driver_is_too_old_is_refused_before_anything_is_written(export: Path, tmp_path: Path) -> None:
    with pytest.raises(ImpossibleRequest) as caught:
        job_config(export, tmp_path / "j", {"SLURM_JOB_GPUS": "0"}, ("true",), load_recording(OLD_DRIVER))
    assert caught.value.exit_code == 3 and caught.value.code == "driver-too-old"
    assert "384.66" in caught.value.message and "525.60.13" in caught.value.message
    assert not (tmp_path / "j").exists()
