"""The GPU modes and the `docker run` arguments of each, on the H200 machine's recording (no toolkit:
`devices`), with the arguments its smoke test really ran with (doctor-run, smoke test passed)."""

from __future__ import annotations

import json
from dataclasses import replace

from gpuenv.doctor.smoke import docker_argv, parse_output
from gpuenv.host import access
from gpuenv.host.system import CdiSpec, Toolkit
from tests.unit.host.recorded import H200, NOGPU, engine_of, report_of

DRIVER = "580.159.04"


def test_the_h200_without_toolkit_chooses_devices():
    report = report_of(H200)
    assert [(m.name, m.usable) for m in report.modes] == [("toolkit", False), ("cdi", False), ("devices", True),
                                                           ("none", True)]
    assert report.mode.name == "devices"
    assert report.driver.source == "nvidia-smi" and [g.cc for g in report.driver.gpus] == ["9.0"]


def test_the_driver_libraries_are_found_by_version_not_by_name():
    files = report_of(H200).files
    real = {lib.host_path for lib in files.libraries}
    assert len(real) == 26 and all(p.endswith(f".so.{DRIVER}") for p in real)
    assert files.library("libcuda.so.1").host_path == f"/usr/local/nvidia/lib64/libcuda.so.{DRIVER}"
    assert set(files.library("libnvidia-ml.so.1").names) == {"libnvidia-ml.so.1", "libnvidia-ml.so",
                                                             f"libnvidia-ml.so.{DRIVER}"}
    # found although no list names them; the CUDA toolkit's own libraries are not the driver's
    assert files.library("libnvidia-nvvm.so.4") and files.library("libcudadebugger.so.1")
    assert not any("/usr/local/cuda" in p for p in real) and files.library("libnvrtc.so.13") is None
    assert files.ml_version == DRIVER
    assert files.tools == tuple(f"/usr/local/nvidia/bin/{t}" for t in (
        "nvidia-cuda-mps-control", "nvidia-cuda-mps-server", "nvidia-debugdump", "nvidia-persistenced", "nvidia-smi"))
    assert {d.path for d in files.devices} >= {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"}
    assert files.char_links == ()


def test_devices_mode_arguments_are_what_the_smoke_test_ran_with():
    report = report_of(H200)
    recorded = json.loads((H200 / "doctor.json").read_text())["smoke_test"]["command"]
    argv = docker_argv(report, "gpuenv-host/python:smoke", "gpuenv-smoke-x")
    flags = lambda a: [a[i + 1] for i, f in enumerate(a) if f in ("--device", "--volume")]  # noqa: E731
    assert flags(argv) == flags(recorded)
    libcuda = f"/usr/local/nvidia/lib64/libcuda.so.{DRIVER}:/usr/local/nvidia/lib64/libcuda.so.1:ro"
    assert "--device" in argv and libcuda in argv
    assert argv[-1].startswith('export PATH="/usr/local/nvidia/bin${PATH:+:$PATH}"; ')


def test_choosing_gpus_passes_only_their_nodes():
    report = report_of(H200)
    none = access.run_args("devices", report.driver, report.files, devices=[5])
    assert "/dev/nvidia0" not in none.flags and "/dev/nvidiactl" in none.flags
    first = access.run_args("devices", report.driver, report.files, devices=[0])
    assert "/dev/nvidia0" in first.flags
    toolkit = access.run_args("toolkit", report.driver, report.files, devices=[0, 1])
    assert toolkit.flags == ("--gpus", '"device=0,1"')
    cdi = access.run_args("cdi", report.driver, report.files)
    assert cdi.flags == ("--device", "nvidia.com/gpu=all")


def test_the_toolkit_and_cdi_are_preferred_when_present():
    report = report_of(H200, engine_of(H200, runtimes=("nvidia", "runc")))
    assert report.mode.name == "toolkit"
    system = replace(report.system, cdi_specs=(CdiSpec("/etc/cdi/nvidia.yaml", "nvidia.com/gpu", ("all",), DRIVER),))
    engine = engine_of(H200, cdi_spec_dirs=("/etc/cdi", "/var/run/cdi"))
    modes = access.modes(engine, system, report.driver, report.files)
    assert access.best(modes).name == "cdi"
    hook = replace(system, toolkit=Toolkit(hook="/usr/bin/nvidia-container-runtime-hook"), cdi_specs=())
    assert access.best(access.modes(engine_of(H200), hook, report.driver, report.files)).name == "toolkit"


def test_the_host_seen_through_a_container_is_the_host_seen_here():
    """doctor --probe engine on the H200 machine found what the local probe finds."""
    through = json.loads((H200 / "doctor-through-engine.json").read_text())["host"]
    here = report_of(H200)
    assert through["observed"].startswith("the engine's host, through a container of")
    assert through["mode"] == "devices" and through["probe_error"] is None
    seen_there = [lib["host_path"] for lib in through["files"]["libraries"]]
    assert seen_there == [lib.host_path for lib in here.files.libraries]
    assert [(g["name"], g["cc"]) for g in through["driver"]["gpus"]] == [("NVIDIA H200", "9.0")]


def test_the_smoke_tests_real_output():
    result = parse_output("devices", "gpuenv-host/python:smoke", 0, (H200 / "smoke-stdout.txt").read_text(), "")
    assert result.ok and result.ran
    assert [(g["name"], g["cc"], g["ok"], g["wrong"]) for g in result.gpus] == [("NVIDIA H200", "9.0", True, 0)]
    assert result.nvidia_smi.startswith("GPU 0: NVIDIA H200")


def test_smoke_failures_are_said():
    failed = parse_output("devices", "img", 1, "", "docker: Error response from daemon: failed to create shim task")
    assert not failed.ok and "failed to create shim task" in failed.detail
    nolib = parse_output("devices", "img", 0, '@@gpuenv-smoke@@{"gpus": [], "error": "libcuda.so.1 cannot be loaded"}',
                         "")
    assert not nolib.ok and nolib.detail == "libcuda.so.1 cannot be loaded"


def test_no_driver_means_none():
    report = report_of(NOGPU)
    assert report.mode.name == "none" and all(not m.usable for m in report.modes[:3])
    assert access.run_args("none", report.driver, report.files).flags == ()
