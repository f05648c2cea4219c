"""Who holds which GPU, and which are free, on recorded multi-GPU hosts (tests/fixtures/hosts/*: published
nvidia-smi -q -x outputs, their SOURCE.md says where from), with process records in the observation's
own format (host/observe.py `processes_command`) and containers as `docker container inspect` gives them.

The cgroup files of real containers are read in tests/integration/test_gpu_share.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gpuenv.host.nvidia import DriverState, GpuProcess, parse_xml
from gpuenv.host.observe import Observations, Output
from gpuenv.host.processes import container_id, parse_passwd, parse_records, shown_command
from gpuenv.run.docker import ContainerInspect
from gpuenv.share.claims import claims, created_ns
from gpuenv.share.free import Idle, select
from gpuenv.share.holders import held_by, survey

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOSTS = FIXTURES / "hosts"
CID = "3f4b9c2d8e1a7f6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b"
OTHER = "a" * 64


def driver(name: str) -> DriverState:
    return parse_xml((HOSTS / name / "nvidia-smi-q.xml").read_text())


def record(pid: int, uid: int, user: str, cgroup: str, *argv: str) -> str:
    """One line as `processes_command` prints it."""
    return f"{pid} {uid} {user} {cgroup.encode().hex()} {''.join(a + chr(0) for a in argv).encode().hex()}"


def inspect(cid: str, name: str, created: str, labels: dict[str, str], status: str = "running") -> ContainerInspect:
    return {"Id": cid, "Name": f"/{name}", "Created": created, "State": {"Status": status},
            "Config": {"Labels": labels}}


def env_labels(project: str, env: str, owner: int, gpus: str) -> dict[str, str]:
    return {"io.gpuenv.project": project, "io.gpuenv.env": env, "io.gpuenv.owner": str(owner),
            "io.gpuenv.gpus": gpus, "io.gpuenv.main": "true"}


# -- cgroup files -> container ids --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v2-systemd.txt", "v2-cgroupfs.txt"])
def test_a_cgroup_v2_line_names_its_container(name):
    assert container_id((FIXTURES / "cgroups" / name).read_text()) == CID


@pytest.mark.parametrize("text, expected", [
    (f"12:memory:/docker/{CID}\n11:pids:/docker/{CID}\n1:name=systemd:/docker/{CID}\n", CID),
    (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b1c2d3e_4f5a_6b7c_8d9e_0f1a2b3c4d5e.slice/"
     f"cri-containerd-{CID}.scope\n", CID),
    (f"4:memory:/kubepods/besteffort/pod0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e/{CID}\n", CID),
    (f"0::/docker/{OTHER}/docker/{CID}\n", CID),              # docker in docker: the inner container
    ("0::/user.slice/user-1000.slice/session-3.scope\n", None),
    ("12:memory:/\n0::/init.scope\n", None),
    (f"0::/docker/{CID}0\n", None),                          # 65 hex digits: not an id
])
def test_the_container_id_is_found_in_any_engine_s_cgroup_path(text, expected):
    assert container_id(text) == expected


def test_records_are_parsed_and_bad_lines_left_out():
    text = "\n".join([
        record(3093, 1001, "alice", f"0::/docker/{CID}\n", "python", "train.py", "--lr", "0.1"),
        record(1357, 0, "root", "0::/system.slice/display-manager.service\n", "/usr/lib/xorg/Xorg", ":0"),
        "77 - - zz 00",                                       # not hex
        "88 1000 bob",                                         # too few fields
        f"99 - - {b'0::/'.hex()} ",                            # a kernel thread: no command line
    ])
    found = parse_records(text)
    assert sorted(found) == [99, 1357, 3093]
    assert found[3093].command == ("python", "train.py", "--lr", "0.1")
    assert found[3093].container_id == CID and found[3093].user == "alice" and found[3093].uid == 1001
    assert found[1357].container_id is None
    assert found[99].uid is None and found[99].command == ()


def test_a_command_line_shown_to_others_hides_secrets():
    shown = shown_command(("jupyter", "lab", "--NotebookApp.token=abc123", "--password", "hunter2",
                           "API_KEY=k", "--port", "8888"))
    assert "abc123" not in shown and "hunter2" not in shown and "=k" not in shown
    assert shown == "jupyter lab --NotebookApp.token=*** --password *** API_KEY=*** --port 8888"


def test_passwd_names_by_uid():
    assert parse_passwd("root:0\nalice:1001\nbroken\nx:y\nalias:1001\n") == {0: "root", 1001: "alice"}


# -- claims -------------------------------------------------------------------------------------------

def test_creation_times_order_though_go_trims_their_fractions():
    # "….1Z" sorts after "….15Z" as text; as times it is earlier
    assert created_ns("2026-12-08T10:11:12.1Z") < created_ns("2026-12-08T10:11:12.15Z")
    assert created_ns("2026-12-08T10:11:12Z") < created_ns("2026-12-08T10:11:12.000000001Z")
    assert created_ns("2026-12-08T11:11:12+01:00") == created_ns("2026-12-08T10:11:12Z")
    assert created_ns("garbage") > created_ns("2999-01-01T00:00:00Z")


def test_claims_are_per_environment_alive_and_earliest_first():
    gpus = driver("upstream-openpai-2x-rtx2080ti-410").gpus
    found = claims([
        inspect("b" * 64, "late-main", "2026-12-08T10:00:02Z", env_labels("late", "late", 1002, gpus[1].uuid)),
        inspect("c" * 64, "early-main", "2026-12-08T10:00:01.5Z", env_labels("early", "early", 1001, "0")),
        inspect("d" * 64, "early-jupyter", "2026-12-08T10:00:03Z", env_labels("early", "early", 1001, "0")),
        inspect("e" * 64, "gone-main", "2026-12-08T09:00:00Z", env_labels("gone", "gone", 1001, "1"), "exited"),
        inspect("f" * 64, "cpu-main", "2026-12-08T09:00:00Z", env_labels("cpu", "cpu", 1001, "none")),
    ])
    assert [(c.project, c.container) for c in found] == [("early", "early-main"), ("late", "late-main")]
    assert found[0].uuids(gpus) == {gpus[0].uuid} and found[1].uuids(gpus) == {gpus[1].uuid}


# -- free GPUs on recorded hosts ------------------------------------------------------------------------

def test_two_idle_gpus_are_free_in_index_order():
    gpus = driver("upstream-openpai-2x-rtx2080ti-410").gpus
    assert select(gpus, [], 1).uuids() == (gpus[0].uuid,)
    assert select(gpus, [], 2).uuids() == (gpus[0].uuid, gpus[1].uuid)
    assert select(gpus, [], 3).chosen == () and len(select(gpus, [], 3).free) == 2


def test_a_claimed_gpu_is_not_taken_even_with_no_process_on_it():
    gpus = driver("upstream-openpai-2x-rtx2080ti-410").gpus
    held = claims([inspect(CID, "vision-main", "2026-12-08T10:00:00Z", env_labels("vision", "vision", 1001, "0"))])
    picked = select(gpus, held, 1)
    assert picked.uuids() == (gpus[1].uuid,)
    assert picked.busy[0].reasons == ("claimed by environment vision (vision-main)",)
    assert select(gpus, held, 2).chosen == ()


def test_an_environment_given_every_gpu_holds_none_in_particular():
    gpus = driver("upstream-openpai-2x-rtx2080ti-410").gpus
    held = claims([inspect(CID, "all-main", "2026-12-08T10:00:00Z", env_labels("all", "all", 1001, "all"))])
    assert held[0].everything and select(gpus, held, 2).uuids() == (gpus[0].uuid, gpus[1].uuid)


def test_gpus_with_compute_processes_memory_and_utilization_are_busy():
    gpus = driver("upstream-openpai-2x-gtx1070-384").gpus      # ethminer on both, 100 % and 98 %
    picked = select(gpus, [], 1)
    assert picked.chosen == () and picked.free == ()
    reasons = picked.busy[0].reasons
    assert reasons[0] == "1 compute process (pid 3093)"            # Xorg and gnome-shell (type G) do not count
    assert "2028 MiB of memory in use (idle: below 1024 MiB)" in reasons
    assert "100% utilization (idle: below 10%)" in reasons


def test_graphics_processes_alone_leave_a_gpu_free_below_the_thresholds():
    gt1030 = driver("upstream-telegraf-gt1030-470").gpus              # Xorg, KDE, Chromium: type G, 875 MiB
    assert all(p.kind == "G" for p in gt1030[0].processes)
    assert select(gt1030, [], 1).uuids() == (gt1030[0].uuid,)
    stricter = select(gt1030, [], 1, Idle(memory_mib=512))
    assert stricter.chosen == () and stricter.busy[0].reasons == ("875 MiB of memory in use (idle: below 512 MiB)",)


def test_a_mig_gpu_is_not_taken_whole():
    a100 = driver("upstream-telegraf-a100-mig-535").gpus
    assert select(a100, [], 1).busy[0].reasons[-1].startswith("MIG mode is on")


# -- the survey: gpuenv gpus ----------------------------------------------------------------------------

def observations(*records: str, passwd: str = "root:0\nalice:1001\nbob:1002\n") -> Observations:
    return Observations({"gpu-processes.txt": Output("\n".join(records) + "\n"), "passwd.txt": Output(passwd)},
                        "the recording")


def test_every_holder_is_named_environment_container_and_host_process():
    state = driver("upstream-openpai-2x-gtx1070-384")
    # GPU 0: Xorg (1357) and gnome-shell (2384) on the host, ethminer (3093) in alice's environment;
    # GPU 1: the same ethminer, and another container's process
    state = replace(state, gpus=(state.gpus[0], replace(state.gpus[1], processes=state.gpus[1].processes + (
        GpuProcess(4242, "python", 512, "C"),))))
    obs = observations(
        record(1357, 0, "root", "0::/system.slice/display-manager.service\n", "/usr/lib/xorg/Xorg", "-nolisten", "tcp"),
        record(2384, 1002, "bob", "0::/user.slice/user-1002.slice/session-2.scope\n", "/usr/bin/gnome-shell"),
        record(3093, 1001, "alice", f"12:memory:/docker/{CID}\n", "./ethminer", "--token", "s3cret"),
        record(4242, 1002, "bob", f"0::/system.slice/docker-{OTHER}.scope\n", "python", "x.py"))
    mining = env_labels("mining-1a2b3c", "mining", 1001, "all")
    containers = [inspect(CID, "mining-main", "2026-12-08T10:00:00Z", mining),
                  inspect(OTHER, "bobs-notebook", "2026-12-08T10:00:00Z", {})]
    found = survey(state, obs, containers)
    first, second = found.gpus
    kinds = [(h.kind, h.name, h.owner, h.container, h.pids) for h in first.holders]
    assert kinds == [("process", "/usr/lib/xorg/Xorg -nolisten tcp", "root", "", (1357,)),
                     ("process", "/usr/bin/gnome-shell", "bob", "", (2384,)),
                     ("environment", "mining", "alice", "mining-main", (3093,))]
    assert [(h.kind, h.name) for h in second.holders] == [("environment", "mining"), ("container", "bobs-notebook")]
    assert "s3cret" not in str(found.to_dict())
    assert not first.free and not second.free
    assert [h.name for h in found.sharing] == ["mining"]          # given every GPU
    assert held_by(first).endswith("environment mining (alice) in mining-main, pid 3093, 2283 MiB")


def test_a_claimed_gpu_with_no_process_shows_its_environment_and_owner():
    state = driver("upstream-openpai-2x-rtx2080ti-410")
    containers = [inspect(CID, "vision-main", "2026-12-08T10:00:00Z",
                          env_labels("vision-9f8e7d", "vision", 1001, state.gpus[1].uuid))]
    found = survey(state, observations(), containers)
    assert found.gpus[0].free and not found.gpus[1].free
    assert held_by(found.gpus[1]) == "environment vision (alice) in vision-main, claimed, no process yet"


def test_without_process_records_processes_are_shown_by_pid_and_owners_by_uid():
    state = driver("upstream-openpai-2x-gtx1070-384")
    containers = [inspect(CID, "x-main", "2026-12-08T10:00:00Z", env_labels("x", "x", 4321, "1"))]
    found = survey(state, Observations({}, "a host not observed"), containers)
    assert [h.name for h in found.gpus[0].holders] == ["/usr/lib/xorg/Xorg", "/usr/bin/gnome-shell", "./ethminer"]
    assert found.gpus[1].holders[0].owner == "uid 4321"


def test_a_host_without_gpus_says_so():
    found = survey(DriverState(source="nvidia-smi", error="no NVIDIA driver: nvidia-smi is not installed"),
                   observations(), [])
    assert found.gpus == () and found.error == "no NVIDIA driver: nvidia-smi is not installed"
