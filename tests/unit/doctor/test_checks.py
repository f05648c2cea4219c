"""Every doctor check, on reports of real recorded hosts (the H200 machine, this project's Debian host)
with the one fact changed that the check is about. Each check fires on its scenario, with its
severity and a fix, and stays quiet on the unchanged host."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import pytest

from gpuenv.doctor import Diagnosis, diagnose, smoke_finding
from gpuenv.doctor.finding import CHECKS
from gpuenv.doctor.finding import Context
from gpuenv.doctor.smoke import SmokeResult
from gpuenv.host.engine import Client, Compose, Engine, build_route
from gpuenv.host.network import Network, RegistryCheck
from gpuenv.host.nvidia import DriverState, GpuProcess
from gpuenv.host.observe import Observations, Output, load_recording
from gpuenv.host.probe import HostReport, from_observations
from gpuenv.host.system import CdiSpec, Toolkit
from tests.unit.host.recorded import H200, NOGPU, engine_of, report_of

HUB_DOWN = RegistryCheck("https://registry-1.docker.io/v2/", False, "[Errno -2] Name or service not known")
HUB_UP = RegistryCheck("https://registry-1.docker.io/v2/", True, "HTTP 401")
QUIET_NETWORK = Network({}, (), None, "no extra CA on this host", (HUB_UP,))
CLIENTS = (Client("/usr/bin/docker", "20.10.24+dfsg1"),)
COMPOSE = (Compose("docker-compose", "1.29.2", "v1"),)


def engine(**changes: Any) -> Engine:
    return engine_of(NOGPU, **{"clients": CLIENTS, "compose": COMPOSE, "buildkit": build_route(CLIENTS), **changes})


def gpu_host(**engine_changes: Any) -> HostReport:
    return replace(report_of(H200, engine(**engine_changes)), network=QUIET_NETWORK)


def cpu_host(**engine_changes: Any) -> HostReport:
    return replace(report_of(NOGPU, engine(**engine_changes)), network=QUIET_NETWORK)


def observed(folder, outputs: dict[str, Output]) -> Observations:
    """A recorded host with some observations replaced."""
    obs = load_recording(folder)
    return Observations({**obs.outputs, **outputs}, obs.where)


def with_system(report: HostReport, **changes: Any) -> HostReport:
    return replace(report, system=replace(report.system, **changes))


def with_gpu(report: HostReport, **changes: Any) -> HostReport:
    gpus = (replace(report.driver.gpus[0], **changes),) + report.driver.gpus[1:]
    return replace(report, driver=replace(report.driver, gpus=gpus))


def down(status: str, reason: str, **changes: Any) -> HostReport:
    return replace(cpu_host(), engine=Engine(status, reason, "unix:///var/run/docker.sock", "default",
                                             clients=CLIENTS, **changes))


NOT_RUNNING = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
PERMISSION = ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: "
              "connect: permission denied")
MISMATCH = "Failed to initialize NVML: Driver/library version mismatch"

# check id -> (the report it must fire on, its severity, text its problem must contain)
SCENARIOS: dict[str, tuple[Callable[[], Any], str, str]] = {
    "engine-installed": (lambda: down("not-installed", "only the docker client is installed; no dockerd"),
                         "error", "no Docker engine"),
    "engine-running": (lambda: down("not-running", NOT_RUNNING), "error", "not running"),
    "docker-permission": (lambda: down("permission", PERMISSION), "error", "may not use"),
    "engine-snap": (lambda: gpu_host(root_dir="/var/snap/docker/common/var-lib-docker"), "error", "snap"),
    "engine-rootless": (lambda: gpu_host(rootless=True), "warning", "rootless"),
    "docker-cli-old": (lambda: cpu_host(clients=(Client("/usr/bin/docker", "18.09.7"),)), "warning", "19.03"),
    "compose": (lambda: cpu_host(compose=(Compose("docker-compose", "1.25.0", "v1"),)), "warning", "1.28"),
    "buildkit": (lambda: cpu_host(clients=(Client("/usr/local/bin/docker", "28.2.2"),), buildkit=None),
                 "warning", "BuildKit"),
    "disk-space": (lambda: with_system(cpu_host(), docker_root_free_bytes=5 * 2**30), "warning", "5.0 GiB"),
    "daemon-json": (lambda: with_system(cpu_host(), daemon_json_error="/etc/docker/daemon.json is not valid JSON"),
                    "error", "not valid JSON"),
    "host-driver": (lambda: from_observations(engine(), observed(
        NOGPU, {"pci-nvidia.txt": Output("/sys/bus/pci/devices/0000:00:06.0 0x030200\n")})),
        "error", "does not answer"),
    "driver-mismatch": (lambda: from_observations(engine(), observed(
        H200, {"nvidia-smi-q.xml": Output(MISMATCH + "\n", 18)}), DriverState(source="nvml", error=MISMATCH)),
                        "error", "mismatch"),
    "driver-libraries": (lambda: from_observations(engine(), observed(
        H200, {"ldconfig-p.txt": Output(""), "ldconfig-resolved.txt": Output("")})),
                         "error", "not in the linker cache"),
    "compat-libs": (lambda: replace(gpu_host(), files=replace(gpu_host().files, libcuda=(
        "/usr/local/cuda-12.2/compat/libcuda.so.535.104.05"))), "warning", "forward-compatibility"),
    "gpu-toolkit": (lambda: gpu_host(), "warning", "not installed"),
    "toolkit-runtime": (lambda: with_system(gpu_host(), toolkit=Toolkit(hook="/usr/bin/nvidia-container-runtime-hook")),
                        "warning", "no 'nvidia' runtime"),
    "toolkit-cgroup-v2": (lambda: with_system(gpu_host(), cgroup="v2", toolkit=Toolkit(
        hook="/usr/bin/nvidia-container-runtime-hook", cli_version="1.7.0")), "error", "cgroup v2"),
    "nvml-unknown-error": (lambda: gpu_host(cgroup_driver="systemd", runtimes=("nvidia", "runc")), "warning",
                           "Unknown Error"),
    "selinux-enforcing": (lambda: with_system(gpu_host(), selinux="enforcing"), "warning", "SELinux"),
    "cdi-spec-stale": (lambda: with_system(gpu_host(), cdi_specs=(
        CdiSpec("/etc/cdi/nvidia.yaml", "nvidia.com/gpu", ("0", "all"), "550.54.14"),)), "warning", "550.54.14"),
    "gpu-exclusive-busy": (lambda: with_gpu(gpu_host(), compute_mode="Exclusive_Process",
                                            processes=(GpuProcess(4242, "python", 1024),)), "warning", "busy"),
    "fabric-manager": (lambda: with_gpu(gpu_host(), fabric_state="In Progress"), "error", "Fabric Manager"),
    "wsl-gpu": (lambda: with_system(cpu_host(), wsl=True, wsl_libcuda=False), "error", "WSL"),
    "remote-probe": (lambda: replace(cpu_host(), probe_error="cannot probe the remote engine's host: no image"),
                     "warning", "no image"),
    "shm-size": (lambda: cpu_host(), "info", "64 MB"),
    "port-taken": (lambda: cpu_host(), "warning", "8888"),
    "docker-hub": (lambda: replace(cpu_host(), network=replace(QUIET_NETWORK, registries=(HUB_DOWN,))), "warning",
                   "cannot be pulled"),
    "engine-proxy": (lambda: replace(cpu_host(), network=replace(QUIET_NETWORK, proxies={
        "https_proxy": "http://proxy.example.com:3128"})), "warning", "proxy"),
    "tls-proxy-ca": (lambda: replace(cpu_host(), network=Network(
        {}, ("/usr/local/share/ca-certificates/corp.crt",), "/usr/local/share/ca-certificates/corp.crt",
        "pypi.org:443 presented a certificate issued under /usr/local/share/ca-certificates/corp.crt", (HUB_UP,))),
        "info", "intercepted"),
}


def run(check_id: str, report: HostReport, **ctx: Any):
    registered = next(c for c in CHECKS if c.id == check_id)
    return registered.run(Context(report, **ctx))


def test_every_check_has_a_scenario():
    assert sorted(SCENARIOS) == sorted(c.id for c in CHECKS)
    assert len(CHECKS) + 1 >= 20      # and the smoke test


@pytest.mark.parametrize("check_id", sorted(SCENARIOS))
def test_the_check_fires_on_its_scenario(check_id):
    make, severity, text = SCENARIOS[check_id]
    extra = {"taken_ports": {8888: "access.jupyter.port: Address already in use"}} if check_id == "port-taken" else {}
    finding = run(check_id, make(), **extra)
    assert finding is not None, check_id
    assert (finding.check, finding.severity) == (check_id, severity)
    assert text in finding.problem + finding.detected
    assert finding.fix and all(line.strip() for line in finding.fix)
    assert finding.detected


QUIET_ON_THE_GPU_HOST = set(SCENARIOS) - {"gpu-toolkit", "shm-size", "nvml-unknown-error"}


@pytest.mark.parametrize("check_id", sorted(QUIET_ON_THE_GPU_HOST))
def test_the_unchanged_gpu_host_does_not_fire_it(check_id):
    assert run(check_id, gpu_host()) is None


def test_the_cpu_host_raises_no_alarm_but_the_shm_note():
    found = [c.id for c in CHECKS if c.run(Context(cpu_host())) is not None]
    assert found == ["shm-size"]


def test_fixes_follow_the_distribution():
    hook = Toolkit(hook="/usr/bin/nvidia-container-runtime-hook", cli_version="1.7.0")
    report = with_system(gpu_host(), toolkit=hook, cgroup="v2")
    debian = run("toolkit-cgroup-v2", report)
    assert any("apt-get" in line for line in debian.fix) and not any("dnf" in line for line in debian.fix)
    rhel = run("toolkit-cgroup-v2", with_system(report, distro=replace(report.system.distro, id="rocky",
                                                                        family="rhel")))
    assert any("dnf upgrade" in line for line in rhel.fix) and not any("apt-get" in line for line in rhel.fix)
    other = run("toolkit-cgroup-v2", with_system(report, distro=replace(report.system.distro, family="other")))
    assert any("apt-get" in line for line in other.fix) and any("dnf" in line for line in other.fix)


def test_sudo_only_when_not_root():
    as_user = run("engine-installed", SCENARIOS["engine-installed"][0](), root=False)
    as_root = run("engine-installed", SCENARIOS["engine-installed"][0](), root=True)
    assert as_user.fix[0].startswith("sudo ") and not as_root.fix[0].startswith("sudo ")


def test_systemd_or_not_changes_how_the_engine_is_started():
    report = SCENARIOS["engine-running"][0]()
    without = run("engine-running", report)
    assert "dockerd" in without.fix[0]
    with_systemd = run("engine-running", with_system(report, services={"docker": "inactive"}))
    assert "systemctl start docker" in with_systemd.fix[0]


def test_a_remote_engine_that_does_not_answer_says_where():
    report = replace(down("not-running", "error during connect: dial tcp 10.0.0.5:2375: connect: connection refused"),
                     engine=Engine("not-running", "connection refused", "tcp://10.0.0.5:2375", "gpu-server"))
    finding = run("engine-running", report)
    assert "tcp://10.0.0.5:2375" in finding.problem and "docker context" in finding.fix[0]
    by_variable = run("engine-running", replace(report, engine=replace(report.engine, context="DOCKER_HOST")))
    assert "DOCKER_HOST" in by_variable.fix[1]


def test_the_ca_setting_none_makes_interception_a_warning():
    make, _, _ = SCENARIOS["tls-proxy-ca"]

    class Spec:
        class network:
            ca_certificates = "none"

    finding = run("tls-proxy-ca", make(), spec=Spec())
    assert finding.severity == "warning" and "ca_certificates" in finding.fix[0]


def test_the_smoke_test_findings():
    ctx = Context(gpu_host())
    assert smoke_finding(ctx, SmokeResult("devices", "img", True, True, "GPU 0 ok")) is None
    skipped = smoke_finding(ctx, SmokeResult("devices", None, False, False, "no image with python3"))
    assert skipped.severity == "warning" and "--smoke-image" in skipped.fix[0]
    failed = smoke_finding(ctx, SmokeResult("devices", "img", True, False, "libcuda.so.1 cannot be loaded"))
    assert failed.severity == "error" and "libcuda" in failed.problem


def test_diagnose_orders_errors_first_and_skips_what_is_asked():
    report = with_system(cpu_host(), daemon_json_error="/etc/docker/daemon.json is not valid JSON",
                         docker_root_free_bytes=2**30)
    result: Diagnosis = diagnose(report, smoke=False)
    assert [f.check for f in result.findings][:1] == ["daemon-json"] and not result.ok
    assert [f.severity for f in result.findings] == sorted((f.severity for f in result.findings),
                                                            key=["error", "warning", "info"].index)
    skipped = diagnose(report, skip=["daemon-json"], smoke=False)
    assert "daemon-json" not in [f.check for f in skipped.findings] and skipped.ok


def test_an_unknown_skip_is_bad_input_with_a_suggestion():
    from gpuenv.errors import BadInput

    with pytest.raises(BadInput) as caught:
        diagnose(cpu_host(), skip=["docker-hubb"], smoke=False)
    assert "docker-hub" in caught.value.hint
