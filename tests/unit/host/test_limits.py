"""[run] cpus, memory, pids: the spec's forms, the defaults from the engine's host (recorded `docker info`
of real hosts), what `docker run` gets, MAX_JOBS, and reading back the limits (recorded `docker inspect`)
and the kernel's memory kills (recorded cgroup files, v1 and v2). The real engine enforcing them is
tests/integration/test_limits.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpuenv.errors import ImpossibleRequest
from gpuenv.host.limits import (DEFAULT_PIDS, GIB, MIB, HostSize, Limits, applied, default_limits, docker_args,
                                explicit, from_host_config, max_jobs, oom_kills, size_text)
from gpuenv.run.memory_kills import MemoryKills, host_counter, kills_text, memory_files
from gpuenv.spec.model import Run
from tests.unit.host.recorded import H200, HOSTS, NOGPU, engine_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "limits"
WSL2 = HOSTS / "upstream-docker-info-desktop-wsl2-28"


def size_of(folder: Path) -> HostSize:
    engine = engine_of(folder)
    return HostSize(engine.cpus, engine.memory)


# -- the spec ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, cpus, memory, pids", [
    ({}, "auto", "auto", "auto"),
    ({"cpus": 8, "memory": "32g", "pids": 4096}, "8", "32g", 4096),
    ({"cpus": 7.5, "pids": "4096"}, "7.5", "auto", 4096),
    ({"cpus": "8"}, "8", "auto", "auto"),
    ({"cpus": 0, "memory": 0, "pids": 0}, "none", "none", "none"),
    ({"cpus": "none", "memory": "none", "pids": "none"}, "none", "none", "none"),
])
def test_the_spec_takes_numbers_sizes_auto_and_none(given, cpus, memory, pids):
    run = Run(**given)
    assert (run.cpus, run.memory, run.pids) == (cpus, memory, pids)


@pytest.mark.parametrize("given, words", [
    ({"cpus": -1}, "number of CPUs from 0.01"),
    ({"cpus": True}, "number of CPUs"),
    ({"cpus": 0.001}, "number of CPUs from 0.01"),
    ({"cpus": "eight"}, "number of CPUs"),
    ({"memory": "1m"}, "at least \"6m\""),
    ({"memory": "32G"}, "such as \"32g\""),
    ({"memory": 32}, "such as \"32g\""),
    ({"pids": -3}, "processes and threads"),
    ({"pids": 1.5}, "processes and threads"),
])
def test_a_bad_limit_says_what_a_good_one_looks_like(given, words):
    with pytest.raises(ValidationError) as caught:
        Run(**given)
    assert words in str(caught.value)


def test_limits_left_auto_keep_the_spec_hash():
    from gpuenv.spec.model import EnvSpec
    from gpuenv.spec.write import spec_hash

    assert spec_hash(EnvSpec(name="a")) == spec_hash(EnvSpec(name="a", run=Run(cpus="auto", pids="auto")))
    assert spec_hash(EnvSpec(name="a")) != spec_hash(EnvSpec(name="a", run=Run(memory="8g")))


# -- the defaults, on recorded hosts -----------------------------------------------------------------

def test_defaults_on_the_recorded_h200_server():
    host = size_of(H200)
    assert host == HostSize(16, 135148564480)
    limits = default_limits(host)
    assert limits.cpus == 15                                   # all but one
    assert limits.memory == (135148564480 - 135148564480 // 10) // MIB * MIB    # 10% > 2 GiB kept back
    assert limits.pids == DEFAULT_PIDS


def test_defaults_on_a_two_cpu_machine_limit_memory_but_not_cpus():
    host = size_of(NOGPU)
    assert host == HostSize(2, 25276510208)
    limits = default_limits(host)
    assert limits.cpus is None                                 # one of two is too few to take
    assert limits.memory == (25276510208 - 25276510208 // 10) // MIB * MIB          # 10% > 2 GiB kept back
    assert default_limits(HostSize(4, 16 * GIB)).memory == 14 * GIB                # 2 GiB > 10% kept back


def test_a_small_host_keeps_at_least_half_its_memory_for_the_environment():
    host = size_of(WSL2)
    assert host.memory == 1995177984
    assert default_limits(host).memory == 1995177984 // 2 // MIB * MIB


def test_an_engine_that_says_no_size_gets_only_the_pids_default():
    assert default_limits(HostSize()) == Limits(None, None, DEFAULT_PIDS)


def test_the_spec_wins_over_the_defaults_and_none_lifts_them():
    host = size_of(H200)
    given = applied(Run(cpus=4, memory="none", pids=100), host)
    assert given.limits == Limits(4.0, None, 100) and given.defaults == () and given.warnings == ()
    mixed = applied(Run(memory="64g"), host)
    assert mixed.limits == Limits(15.0, 64 * GIB, DEFAULT_PIDS) and mixed.defaults == ("cpus", "pids")
    assert mixed.describe() == "15 CPUs, 64 GiB memory, 32768 processes (cpus, pids: defaults from the engine's host)"


def test_more_cpus_than_the_host_has_is_refused_and_more_memory_is_said():
    host = size_of(H200)
    with pytest.raises(ImpossibleRequest) as caught:
        applied(Run(cpus=32), host)
    assert "more CPUs than the engine's host has (16)" in caught.value.message
    assert "16 or fewer" in (caught.value.hint or "") and "15 here" in (caught.value.hint or "")
    big = applied(Run(memory="512g"), host)
    assert big.limits.memory == 512 * GIB
    assert big.warnings == ("[run] memory = \"512g\" is more than the engine's host has (125.9 GiB): it limits "
                            "nothing there",)


def test_docker_run_gets_memory_and_swap_alike():
    assert docker_args(Limits(1.5, 128 * MIB, 256)) == [
        "--cpus", "1.5", "--memory", "134217728b", "--memory-swap", "134217728b", "--pids-limit", "256"]
    assert docker_args(Limits()) == []


def test_compose_gets_the_spec_s_own_limits_only():
    assert explicit(Run()) == Limits()
    assert explicit(Run(cpus=2, memory="1g", pids=64)) == Limits(2.0, GIB, 64)


@pytest.mark.parametrize("limits, host, jobs", [
    (Limits(15.0, 64 * GIB), HostSize(16, 128 * GIB), 15),        # the CPUs bound it
    (Limits(15.0, 20 * GIB), HostSize(16, 128 * GIB), 5),         # 4 GiB a job
    (Limits(0.5, 128 * MIB), HostSize(2, 8 * GIB), 1),            # never below one
    (Limits(None, None), HostSize(8, 64 * GIB), 8),               # lifted: the host's
    (Limits(None, 6 * GIB), HostSize(), 1),
    (Limits(), HostSize(), 1),
])
def test_max_jobs_is_the_smaller_of_cpus_and_memory_at_4_gib_a_job(limits, host, jobs):
    assert max_jobs(limits, host) == jobs


# -- reading back: recorded docker inspect and cgroup files --------------------------------------------

def test_the_limits_a_container_runs_with_from_its_inspect():
    limited, open_ = json.loads((FIXTURES / "inspect-limited-and-open.json").read_text())
    assert from_host_config(limited["HostConfig"]) == Limits(1.5, 128 * MIB, 256)
    assert from_host_config(open_["HostConfig"]) == Limits()          # 0, 0, null
    assert from_host_config(None) == Limits() and from_host_config({"Memory": "lots"}) == Limits()


def test_the_oom_kill_counter_of_both_cgroup_versions():
    assert oom_kills((FIXTURES / "memory.oom_control-v1.txt").read_text()) == 1
    assert oom_kills((FIXTURES / "memory.events-v2.txt").read_text()) == 2   # not oom_group_kill's 0
    assert oom_kills("oom_kill_disable 0\nunder_oom 0\n") is None        # a kernel before 4.13


def test_the_cgroup_files_of_a_process_on_a_v1_host_with_the_unified_hierarchy_beside():
    lines = (FIXTURES / "proc-pid-cgroup-v1.txt").read_text().splitlines()
    container = lines[0].rsplit("/", 1)[1]
    root = Path("/sys/fs/cgroup")
    assert memory_files(lines) == [root / "memory/docker" / container / "memory.oom_control",
                                   root / "docker" / container / "memory.events"]


def test_the_counter_is_read_from_the_first_file_there_is(tmp_path):
    """v1 with the unified hierarchy beside it: the memory controller's file; v2: memory.events."""
    for name, folder, file in (("v1", "memory/docker", "memory.oom_control-v1.txt"),
                               ("v2", "docker", "memory.events-v2.txt")):
        proc = FIXTURES / f"proc-pid-cgroup-{name}.txt"
        container = proc.read_text().splitlines()[0].rsplit("/", 1)[1]
        root = tmp_path / name
        target = root / folder / container / ("memory.oom_control" if name == "v1" else "memory.events")
        target.parent.mkdir(parents=True)
        target.write_text((FIXTURES / file).read_text())
        assert host_counter(proc, root) == (1 if name == "v1" else 2)
    assert host_counter(tmp_path / "no-such-process", tmp_path) is None


def test_a_path_that_climbs_out_is_never_read():
    assert memory_files(["4:memory:/docker/../../etc", "0::/../x"]) == []


def test_the_kills_in_words():
    assert kills_text(MemoryKills(1, False), Limits(memory=512 * MIB)) == "1 process killed for memory (limit 512 MiB)"
    assert kills_text(MemoryKills(3, True), Limits(memory=GIB)) == (
        "3 processes killed for memory (limit 1 GiB); a container ended so")
    ended = json.loads((FIXTURES / "inspect-ended-for-memory.json").read_text())[0]
    assert ended["State"]["OOMKilled"] is True
    assert kills_text(MemoryKills(None, True), from_host_config(ended["HostConfig"])) == (
        "a container was ended for memory (limit 32 MiB)")
    assert kills_text(MemoryKills(0, False), Limits()) == "" and kills_text(MemoryKills(None, False), Limits()) == ""


def test_sizes_in_words():
    assert (size_text(512 * MIB), size_text(GIB), size_text(21 * GIB + GIB // 2)) == ("512 MiB", "1 GiB", "21.5 GiB")
