"""The engine's facts from real `docker info` JSON (this project's engine, Docker Desktop published
upstream), the BuildKit route through the clients, and the endpoint the CLI would use."""

from __future__ import annotations

import hashlib
import json

from gpuenv.host.engine import Client, build_route, endpoint_from_config, is_remote, parse_info, unreachable_reason
from tests.unit.host.recorded import HOSTS, NOGPU


def test_this_projects_engine():
    facts = parse_info(json.loads((NOGPU / "docker-info.json").read_text()))
    assert facts["version"].startswith("20.10.24") and facts["storage_driver"] == "overlay2"
    assert (facts["cgroup_version"], facts["cgroup_driver"], facts["rootless"]) == ("1", "cgroupfs", False)
    assert "nvidia" not in facts["runtimes"] and facts["cdi_spec_dirs"] == ()
    assert facts["insecure_registries"] == ("127.0.0.0/8",) and facts["mirrors"] == ()


def test_docker_desktop_with_the_nvidia_runtime_and_cdi():
    facts = parse_info(json.loads((HOSTS / "upstream-docker-info-desktop-wsl2-28" / "docker-info.json").read_text()))
    assert facts["version"] == "28.3.2" and facts["cgroup_version"] == "2"
    assert "nvidia" in facts["runtimes"] and facts["cdi_spec_dirs"] == ("/etc/cdi", "/var/run/cdi")
    assert facts["https_proxy"] == "http.docker.internal:3128"
    assert "hubproxy.docker.internal:5555" in facts["insecure_registries"]


def test_a_new_client_without_buildx_gives_way_to_an_old_one():
    new, old = Client("/usr/local/bin/docker", "28.2.2"), Client("/usr/bin/docker", "20.10.24+dfsg1")
    route = build_route((new, old))
    assert (route.client, route.how) == ("/usr/bin/docker", "DOCKER_BUILDKIT=1")
    assert build_route((Client("/x/docker", "28.2.2", "v0.25.0"), old)).how == "buildx"
    assert build_route((new,)) is None


def test_what_the_cli_says_when_it_cannot_reach_the_engine():
    # the messages of the docker CLI (20.10 and 28.x) seen in tests/integration/test_doctor_engine.py
    assert unreachable_reason("Cannot connect to the Docker daemon at unix:///tmp/x.sock. Is the docker daemon "
                              "running?")[0] == "not-running"
    assert unreachable_reason("permission denied while trying to connect to the Docker daemon socket at "
                              "unix:///var/run/docker.sock: Get ...: dial unix /var/run/docker.sock: connect: "
                              "permission denied")[0] == "permission"
    assert unreachable_reason("something else entirely")[0] == "error"


def test_the_endpoint_follows_docker_host_then_the_context(tmp_path):
    assert endpoint_from_config({"DOCKER_HOST": "tcp://10.0.0.5:2375"}) == ("tcp://10.0.0.5:2375", "DOCKER_HOST")
    config = tmp_path / ".docker"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"gpu-server").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "gpu-server",
                                                "Endpoints": {"docker": {"Host": "ssh://me@gpu-server"}}}))
    (config / "config.json").write_text(json.dumps({"currentContext": "gpu-server"}))
    assert endpoint_from_config({}, tmp_path) == ("ssh://me@gpu-server", "gpu-server")
    assert endpoint_from_config({"DOCKER_CONTEXT": "default"}, tmp_path) == ("unix:///var/run/docker.sock", "default")


def test_remote_means_another_host():
    assert not is_remote("tcp://127.0.0.1:2375", "vm", "vm")
    assert is_remote("unix:///var/run/docker.sock", "docker-desktop", "laptop")
    assert is_remote("ssh://me@gpu-server", "", "laptop") and not is_remote("tcp://localhost:2375", "", "x")
    assert is_remote("tcp://10.0.0.5:2375", "ubuntu", "ubuntu"), "the same host name is no proof of the same host"


def test_docker_desktop_registers_the_nvidia_runtime_without_a_gpu():
    """The runtime alone is no GPU: with no driver, toolkit mode is not usable."""
    from gpuenv.host import access
    from gpuenv.host.driver_files import DriverFiles
    from gpuenv.host.engine import engine_from_info
    from gpuenv.host.nvidia import DriverState
    from gpuenv.host.system import System

    info = json.loads((HOSTS / "upstream-docker-info-desktop-wsl2-28" / "docker-info.json").read_text())
    desktop = engine_from_info(info, endpoint="unix:///var/run/docker.sock", local_name="laptop")
    assert desktop.remote, "Docker Desktop's engine runs in its own VM"
    modes = access.modes(desktop, System(), DriverState(error="no NVIDIA driver: nvidia-smi is not installed"),
                         DriverFiles())
    assert access.best(modes).name == "none"
