"""`gpuenv doctor` against real engines on this machine (no GPU): the one scripts/test runs, a second
one that is stopped, one reached over TCP and probed through a container, and a user who may not use
the socket. Each runs the real CLI in a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
GPU_CHECKS = {"host-driver", "driver-mismatch", "driver-libraries", "compat-libs", "gpu-toolkit", "toolkit-runtime",
              "toolkit-cgroup-v2", "nvml-unknown-error", "selinux-enforcing", "cdi-spec-stale", "gpu-exclusive-busy",
              "fabric-manager", "wsl-gpu", "engine-rootless", "gpu-smoke-test"}


def doctor(*args: str, env: dict | None = None, user: int | None = None) -> tuple[int, dict, str]:
    argv = [sys.executable, "-m", "gpuenv", "doctor", "--json", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=ROOT,
                         env={**os.environ, "HOME": "/tmp", **(env or {})})
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout), run.stderr


def ids(data: dict) -> list[str]:
    return [f["check"] for f in data["findings"]]


def test_a_rootful_engine_without_gpu_is_ok_with_gpu_mode_none_and_no_false_alarm(engine):
    code, data, _ = doctor()
    host = data["host"]
    assert code == 0 and data["ok"]
    assert host["engine"]["status"] == "ok" and not host["engine"]["remote"]
    assert host["engine"]["version"] and host["engine"]["api_version"]
    assert host["mode"] == "none" and host["driver"]["version"] is None
    assert host["engine"]["buildkit"] is not None, "scripts/test's client builds with BuildKit"
    assert not GPU_CHECKS & set(ids(data))
    assert all(f["severity"] != "error" for f in data["findings"])
    assert data["smoke_test"] is None


def test_the_human_report_says_the_same(engine):
    run = subprocess.run([sys.executable, "-m", "gpuenv", "doctor", "--offline"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "engine   ok: Docker" in run.stdout and "gpu mode none" in run.stdout


def test_a_stopped_engine_is_not_running_with_the_fix_and_exit_1(second_engine):
    second_engine.start()
    second_engine.stop()
    code, data, stderr = doctor("--offline", env={"DOCKER_HOST": second_engine.socket})
    assert code == 1 and not data["ok"]
    (finding,) = [f for f in data["findings"] if f["check"] == "engine-running"]
    assert finding["severity"] == "error"
    assert finding["problem"] == f"the Docker engine at DOCKER_HOST={second_engine.socket} does not answer"
    assert "Cannot connect to the Docker daemon" in finding["detected"]
    # DOCKER_HOST names that engine: it is checked there, and no second engine is started here
    assert not any("dockerd" in line or "systemctl" in line for line in finding["fix"])
    assert f"docker -H {second_engine.socket} info" in finding["fix"] and "unset DOCKER_HOST" in finding["fix"]
    assert data["host"]["engine"]["status"] == "not-running"


def test_a_user_without_permission_on_the_socket_is_told_so(engine, tmp_path):
    sock = Path("/var/run/docker.sock")
    if os.geteuid() != 0 or not sock.exists():
        pytest.fail("this test runs as root against the engine of scripts/test")
    assert sock.stat().st_mode & 0o002 == 0, "the socket is not open to every user"
    code, data, _ = doctor("--offline", user=65534)
    assert code == 1
    (finding,) = [f for f in data["findings"] if f["check"] == "docker-permission"]
    assert "permission denied" in finding["detected"] and "usermod -aG docker" in finding["fix"][0]


def test_a_remote_engine_is_probed_through_a_container_there(engine, second_engine):
    second_engine.start()
    saved = engine.docker("save", engine.base_image).stdout
    second_engine.docker("load", input=saved)
    code, data, _ = doctor("--offline", "--probe", "engine", env={"DOCKER_HOST": second_engine.tcp})
    host = data["host"]
    assert code == 0, data["findings"]
    assert host["observed"] == f"the engine's host, through a container of {engine.base_image}"
    assert host["probe_error"] is None and host["engine"]["endpoint"] == second_engine.tcp
    assert host["system"]["distro"]["id"] == "debian" and host["system"]["cgroup"] in ("v1", "v2")
    assert host["mode"] == "none" and host["driver"]["error"].startswith("no NVIDIA driver")
    assert second_engine.docker("ps", "-aq").stdout.strip() == b"", "the probe container is gone"
    # the same engine over TCP on this very host is not remote: auto probes here
    _, auto, _ = doctor("--offline", env={"DOCKER_HOST": second_engine.tcp})
    assert auto["host"]["observed"] == "this host" and not auto["host"]["engine"]["remote"]


def test_a_remote_engine_without_an_image_for_the_probe_says_what_to_do(second_engine):
    second_engine.start()
    code, data, _ = doctor("--offline", "--probe", "engine", env={"DOCKER_HOST": second_engine.tcp})
    (finding,) = [f for f in data["findings"] if f["check"] == "remote-probe"]
    assert "no image" in finding["problem"] and "GPUENV_PROBE_IMAGE" in finding["fix"][0]


def test_an_engine_with_the_nvidia_runtime_registered(second_engine):
    second_engine.start({"runtimes": {"nvidia": {"path": "runc"}}})
    _, data, _ = doctor("--offline", env={"DOCKER_HOST": second_engine.socket})
    assert "nvidia" in data["host"]["engine"]["runtimes"]
    toolkit = next(m for m in data["host"]["modes"] if m["name"] == "toolkit")
    assert not toolkit["usable"] and toolkit["why"] == "no working NVIDIA driver"


def test_a_port_the_spec_wants_is_taken(engine, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "gpuenv.toml").write_text(f'frameworks = ["torch"]\n[access.jupyter]\nport = {port}\n')
        code, data, _ = doctor("--offline", "--no-smoke", "--file", str(tmp_path))
    (finding,) = [f for f in data["findings"] if f["check"] == "port-taken"]
    assert str(port) in finding["problem"] and "access.jupyter.port" in finding["problem"]
    assert code == 0, "a taken port is a warning"


def test_skipping_checks_and_a_wrong_id(engine):
    code, data, _ = doctor("--offline", "--skip", "shm-size,compose")
    assert code == 0 and not {"shm-size", "compose"} & set(ids(data))
    assert data["skipped"] == ["shm-size", "compose"]
    run = subprocess.run([sys.executable, "-m", "gpuenv", "doctor", "--skip", "shm-sise"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 2 and "shm-size" in run.stderr and "Traceback" not in run.stderr
