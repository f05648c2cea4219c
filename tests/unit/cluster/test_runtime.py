"""The config.json gpuenv writes for runc/crun: the user, the workspace, shm, the network variables, and the
GPU files of a real recorded H200 host (tests/fixtures/hosts/h200-docker-2026-11-22)."""

from __future__ import annotations

import pytest

from gpuenv.cluster.runtime import GpuFiles, ImageConfig, Settings, config, gpu_files, process_args
from gpuenv.errors import BadInput
from gpuenv.host import nvidia
from gpuenv.host.driver_files import driver_files
from gpuenv.host.observe import load_recording

from tests.unit.host.recorded import H200

IMAGE = ImageConfig(env=(("PATH", "/opt/venv/bin:/usr/bin:/bin"), ("HOME", "/home/gpuenv")),
                    cmd=("bash",), labels=(("io.gpuenv.min-driver", "525.60.13"),))
SETTINGS = Settings(1234, 2345, "/data/ws", "/workspace", 2 * 1024 ** 3, (("HTTPS_PROXY", "http://p:3128"),),
                    "/etc/ssl/certs/ca-certificates.crt")


def _h200_files(minors: set[int] | None) -> GpuFiles:
    obs = load_recording(H200)
    return gpu_files(driver_files(obs, nvidia.from_observations(obs).version), minors)


def _mount(conf: dict, destination: str) -> dict:
    return next(m for m in conf["mounts"] if m["destination"] == destination)


def test_a_cpu_config_runs_as_the_user_in_the_workspace_with_shm_and_the_network_variables() -> None:
    conf = config(IMAGE, SETTINGS, GpuFiles(), ("python", "train.py"))
    process = conf["process"]
    assert process["user"] == {"uid": 1234, "gid": 2345} and process["cwd"] == "/workspace"
    assert process["args"] == ["python", "train.py"] and process["noNewPrivileges"] is True
    assert all(not caps for caps in process["capabilities"].values())
    assert "HTTPS_PROXY=http://p:3128" in process["env"] and "PATH=/opt/venv/bin:/usr/bin:/bin" in process["env"]
    assert _mount(conf, "/workspace") == {"destination": "/workspace", "type": "bind", "source": "/data/ws",
                                          "options": ["rbind", "nosuid", "nodev", "rw"]}
    assert f"size={2 * 1024 ** 3}" in _mount(conf, "/dev/shm")["options"]
    assert "uid=1234,gid=2345" in _mount(conf, "/home/gpuenv")["options"]
    assert "ro" in _mount(conf, "/etc/gpuenv/ca-bundle.pem")["options"]
    assert conf["root"]["readonly"] is True and conf["linux"]["devices"] == []
    assert {n["type"] for n in conf["linux"]["namespaces"]} == {"pid", "ipc", "mount"}     # the host's network


def test_the_image_command_runs_when_none_is_given_and_none_at_all_is_refused() -> None:
    assert process_args(IMAGE, ()) == ["bash"]
    assert process_args(ImageConfig(entrypoint=("tini", "--")), ("id",)) == ["tini", "--", "id"]
    with pytest.raises(BadInput, match="no command"):
        process_args(ImageConfig(), ())


def test_the_gpus_of_a_recorded_h200_become_device_nodes_cgroup_rules_and_driver_mounts() -> None:
    gpu = _h200_files({0})
    conf = config(IMAGE, SETTINGS, gpu)
    paths = [d["path"] for d in conf["linux"]["devices"]]
    assert {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= set(paths)
    allowed = {(r["major"], r["minor"]) for r in conf["linux"]["resources"]["devices"] if r["allow"]}
    assert (195, 0) in allowed and (195, 255) in allowed
    assert conf["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}      # all else denied
    libcuda = _mount(conf, "/usr/local/nvidia/lib64/libcuda.so.1")
    assert libcuda["source"].endswith("/libcuda.so.580.159.04")          # the recorded driver's own file
    assert "ro" in libcuda["options"]
    env = dict(e.split("=", 1) for e in conf["process"]["env"])
    assert env["PATH"].startswith("/usr/local/nvidia/bin:") and env["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    assert conf["annotations"]["io.gpuenv.gpus"] == "0"


def test_a_gpu_the_job_was_not_given_is_not_there() -> None:
    assert not _h200_files({3}).any                  # the host's only GPU is 0: none of the job's
    assert _h200_files(None).visible == "0"          # None: every GPU
