"""Who holds which GPU and free GPUs against the real engine: real containers, their real cgroup files
(this engine: cgroup v1, cgroupfs), real concurrent claims. What cannot be here, GPUs, comes from a
recorded 2-GPU host (tests/fixtures/hosts/upstream-openpai-2x-rtx2080ti-410, its SOURCE.md)."""

from __future__ import annotations

import os
import pwd
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from gpuenv.errors import ImpossibleRequest
from gpuenv.host.engine import probe_engine
from gpuenv.host.nvidia import GpuProcess
from gpuenv.host.observe import load_recording, observe_local, processes_command, run_sh
from gpuenv.host.probe import HostReport, from_observations
from gpuenv.host.processes import parse_records
from gpuenv.run.docker import Docker
from gpuenv.share.arbiter import Won
from gpuenv.share.free import Idle
from gpuenv.share.holders import survey
from gpuenv.share.look import every_container
from gpuenv.share.take import Wanted, take

pytestmark = pytest.mark.docker

TWO_GPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "upstream-openpai-2x-rtx2080ti-410"


@pytest.fixture
def docker(engine) -> Docker:
    return Docker(engine.client)


@pytest.fixture
def two_gpu_report() -> HostReport:
    """This engine, with the GPUs of a recorded 2-GPU host."""
    return from_observations(probe_engine(compose=False), load_recording(TWO_GPUS))


def labels(project: str, env: str, gpus: str) -> list[str]:
    found = {"project": project, "env": env, "owner": str(os.getuid()), "gpus": gpus, "main": "true"}
    return [x for key, value in found.items() for x in ("--label", f"io.gpuenv.{key}={value}")]


def test_a_container_s_process_is_mapped_through_its_real_cgroup_file(engine, docker):
    name = engine.track_container(engine.unique("holder"))
    engine.docker("run", "-d", "--name", name, *labels(name, "vision", "all"), engine.base_image, "sleep", "300")
    facts = engine.docker("inspect", "--format", "{{.Id}} {{.State.Pid}}", name).stdout.decode().split()
    cid, pid = facts[0], int(facts[1])
    line = run_sh(processes_command(f"echo {pid} {os.getpid()}"))       # the observation's own shell text
    records = parse_records(line.stdout)
    assert records[pid].container_id == cid
    assert records[pid].command == ("sleep", "300") and records[pid].uid == 0
    assert records[os.getpid()].container_id is None                    # this test: on the host
    assert Path(f"/proc/{pid}/cgroup").read_text().count(cid) >= 1      # (v1 here: one line per hierarchy)
    # the recorded GPU 0 runs that process (its PID is real): the survey names the environment
    report = from_observations(probe_engine(compose=False), load_recording(TWO_GPUS))
    gpus = report.driver.gpus
    state = replace(report.driver, gpus=(replace(gpus[0], processes=(GpuProcess(pid, "sleep", 300, "C"),)), gpus[1]))
    obs = observe_local(["passwd.txt"])
    obs = replace(obs, outputs={**obs.outputs, "gpu-processes.txt": line})
    found = survey(state, obs, every_container(docker))
    holder = found.gpus[0].holders[0]
    assert (holder.kind, holder.name, holder.container, holder.pids) == ("environment", "vision", name, (pid,))
    assert holder.owner == "root" and not found.gpus[0].free and found.gpus[1].free


def test_two_ups_at_once_take_different_gpus_and_a_third_is_refused_naming_them(engine, docker, two_gpu_report):
    run = uuid.uuid4().hex[:8]
    both_chose = threading.Barrier(2, timeout=60)
    won: dict[str, Won] = {}
    errors: list[BaseException] = []

    def create(project: str, first: list[bool]):
        def make(uuids: tuple[str, ...]) -> str:
            if first:                     # both have chosen before either claims: they chose the same GPU
                first.clear()
                both_chose.wait()
            name = engine.track_container(f"{project}-main-{uuid.uuid4().hex[:6]}")
            return engine.docker("create", "--name", name, *labels(project, project, ",".join(uuids)),
                                 engine.base_image, "sleep", "300").stdout.decode().strip()
        return make

    def up(project: str) -> None:
        try:
            won[project] = take(docker, project, two_gpu_report, Wanted("all", True, 1, Idle()),
                                create(project, [True]))
        except BaseException as exc:     # noqa: BLE001 - reported below
            errors.append(exc)

    projects = [f"gpuenv-test-free-{run}-{n}" for n in ("a", "b")]
    threads = [threading.Thread(target=up, args=(p,)) for p in projects]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    taken = [won[p].uuids for p in projects]
    gpus = two_gpu_report.driver.gpus
    assert sorted(taken) == sorted([(gpus[0].uuid,), (gpus[1].uuid,)])
    assert sorted(w.attempts for w in won.values()) == [1, 2]           # the same GPU first: one lost, chose again
    for p in projects:                  # the loser removed its first container: one each
        assert len(engine.docker("ps", "-a", "-q", "--filter", f"label=io.gpuenv.project={p}").stdout.split()) == 1

    third = f"gpuenv-test-free-{run}-c"
    with pytest.raises(ImpossibleRequest) as refused:
        take(docker, third, two_gpu_report, Wanted("all", True, 1, Idle()), create(third, []))
    error = refused.value
    assert error.code == "no-free-gpu" and error.exit_code == 3
    assert "0 of 2 are free" in error.message and "--gpus" in (error.hint or "")
    user = pwd.getpwuid(os.getuid()).pw_name
    for project, cause in zip(sorted(projects, key=lambda p: won[p].uuids != (gpus[0].uuid,)), error.causes):
        assert f"environment {project} ({user})" in cause and "claimed, no process yet" in cause
    assert engine.docker("ps", "-a", "-q", "--filter", f"label=io.gpuenv.project={third}").stdout.split() == []
