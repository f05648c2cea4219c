"""The driver and GPUs from real `nvidia-smi` outputs: the H200 machine's, and older drivers' published
upstream (tests/fixtures/hosts/UPSTREAM.md)."""

from __future__ import annotations

import pytest

from gpuenv.host.nvidia import from_observations, kernel_module_version, parse_query, parse_xml
from gpuenv.host.observe import load_recording
from tests.unit.host.recorded import H200, HOSTS, NOGPU


def test_the_h200_xml_gives_driver_cuda_and_the_gpu():
    state = parse_xml((H200 / "nvidia-smi-q.xml").read_text())
    assert (state.version, state.cuda, state.source) == ("580.159.04", "13.0", "nvidia-smi")
    (gpu,) = state.gpus
    assert (gpu.name, gpu.uuid, gpu.minor) == ("NVIDIA H200", "GPU-c39c349a-86ea-57c7-e966-38b014692ced", 0)
    assert (gpu.memory_total_mib, gpu.compute_mode, gpu.persistence_mode) == (143771, "Default", "Enabled")
    assert (gpu.mig, gpu.fabric_state, gpu.processes, gpu.pci_bus_id) == (False, "N/A", (), "00000000:00:06.0")
    assert gpu.cc is None   # the XML does not carry it


def test_the_query_completes_the_compute_capability():
    state = from_observations(load_recording(H200))
    assert state.ok and [(g.index, g.cc) for g in state.gpus] == [(0, "9.0")]


def test_the_kernel_module_version_of_the_open_module():
    assert kernel_module_version(load_recording(H200)) == "580.159.04"


def test_no_driver_is_a_state_with_the_reason():
    state = from_observations(load_recording(NOGPU))
    assert not state.ok and state.version is None
    assert state.error == "no NVIDIA driver: nvidia-smi is not installed"
    assert kernel_module_version(load_recording(NOGPU)) is None


# (folder, driver, CUDA as the XML says, [(name, minor, MiB, processes)], MIG)
UPSTREAM = [
    ("upstream-openpai-2x-gtx1070-384", "384.66", None,
     [("GeForce GTX 1070", 0, 8112, 3), ("GeForce GTX 1070", 1, 8114, 1)], False),
    ("upstream-openpai-2x-rtx2080ti-410", "410.73", "10.0",
     [("GeForce RTX 2080 Ti", 0, 10989, 0), ("GeForce RTX 2080 Ti", 1, 10989, 0)], False),
    ("upstream-openpai-dgx2-v100-410-retired-pages", "410.104", "10.0", [("Tesla V100-SXM3-32GB", 0, 32480, 0)], False),
    ("upstream-telegraf-a100-mig-535", "535.54.03", "12.2", [("NVIDIA A100-SXM4-80GB", 1, 81920, 0)], True),
    ("upstream-telegraf-gtx1660ti-418", "418.43", "10.1", [("Graphics Device", 0, 5912, 0)], False),
]


@pytest.mark.parametrize("folder,driver,cuda,gpus,mig", UPSTREAM, ids=[u[0] for u in UPSTREAM])
def test_older_and_other_drivers_xml(folder, driver, cuda, gpus, mig):
    state = parse_xml((HOSTS / folder / "nvidia-smi-q.xml").read_text())
    assert (state.version, state.cuda) == (driver, cuda)
    assert [(g.name, g.minor, g.memory_total_mib, len(g.processes)) for g in state.gpus] == gpus
    assert all(g.mig == mig for g in state.gpus)


def test_processes_carry_pid_name_and_memory():
    state = parse_xml((HOSTS / "upstream-openpai-2x-gtx1070-384" / "nvidia-smi-q.xml").read_text())
    process = state.gpus[0].processes[0]
    assert process.pid > 0 and process.name and process.used_mib is not None


def test_the_h200_query_csv_and_an_old_driver_without_compute_cap():
    answer = parse_query((H200 / "nvidia-smi-query-gpu.csv").read_text())
    assert answer.driver == "580.159.04" and [(g.name, g.cc) for g in answer.gpus] == [("NVIDIA H200", "9.0")]
    old = parse_query("index, name, uuid, driver_version\n0, Tesla K80, GPU-1, 384.90\n")
    assert old.driver == "384.90" and old.gpus[0].cc is None


def test_a_query_with_fields_in_another_order_and_two_generations():
    answer = parse_query((HOSTS / "upstream-triton-titanv-rtx5880-570" / "nvidia-smi-query-gpu.csv").read_text())
    assert answer.driver == "570.86.15"
    assert [(g.index, g.name, g.cc) for g in answer.gpus] == [(0, "NVIDIA TITAN V", "7.0"),
                                                             (1, "NVIDIA RTX 5880 Ada Generation", "8.9")]


def test_a_query_of_every_field():
    answer = parse_query((HOSTS / "upstream-nvgpuexporter-l40s-595" / "nvidia-smi-query-gpu.csv").read_text())
    assert answer.driver == "595.80" and [(g.name, g.cc) for g in answer.gpus] == [("NVIDIA L40S", "8.9")]


def test_an_nvidia_smi_too_old_for_compute_cap_is_no_answer():
    """nvidia-smi 470 refuses the field (then the probe asks again without it)."""
    out = (HOSTS / "upstream-inference-snaps-smi470-on-driver580" / "nvidia-smi-query-gpu.out").read_text()
    assert parse_query(out) is None


def test_a_desktop_gpu_with_graphics_processes():
    state = parse_xml((HOSTS / "upstream-telegraf-gt1030-470" / "nvidia-smi-q.xml").read_text())
    assert (state.version, state.cuda) == ("470.74", "11.4")
    assert state.gpus[0].name == "NVIDIA GeForce GT 1030" and len(state.gpus[0].processes) == 10
