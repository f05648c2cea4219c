"""[run] cpus, memory and pids on this machine's real engine: `gpuenv up` gives the container the limits
(docker inspect's NanoCpus, Memory, MemorySwap, PidsLimit), the kernel enforces the memory limit (a
Python process that allocates 512 MB in a 128 MiB container is killed), and `gpuenv status` and `ls`
report the kill, read from the container's cgroup counter both on this host (/proc/PID/cgroup) and
inside the container (`docker exec cat`). More CPUs than the host has is refused before anything is built.

The environment is the smallest there is (no framework: the base's Python 3.11, the shell service), run as
UID 4321 (sudo's SUDO_UID), as tests/integration/test_lifecycle.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.host.limits import DEFAULT_PIDS
from gpuenv.run.docker import Docker
from gpuenv.run.memory_kills import memory_kills

pytestmark = pytest.mark.docker

UID = 4321
MIB = 1024 * 1024


def gpuenv(*args: str, cwd: Path, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    full = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID), **env}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def spec(name: str, run: str) -> str:
    return f'name = "{name}"\npython = "3.11"\n\n[gpu]\ndevices = "none"\n\n[run]\n{run}\n'


def folder_for(module_engine, tmp_path_factory, prefix: str, run: str) -> tuple[str, Path, dict]:
    name = module_engine.unique(prefix)
    folder = tmp_path_factory.mktemp(prefix)
    (folder / "gpuenv.toml").write_text(spec(name, run))
    os.chown(folder, UID, UID)
    home = tmp_path_factory.mktemp("home")
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state")}
    return name, folder, env


@pytest.fixture(scope="module")
def limited(module_engine, tmp_path_factory):
    """An environment of 1.5 CPUs and 128 MiB; its pids left at the default."""
    name, folder, env = folder_for(module_engine, tmp_path_factory, "limits", 'cpus = 1.5\nmemory = "128m"')
    run = gpuenv("up", "--json", cwd=folder, env=env)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    yield {"name": name, "folder": folder, "env": env, "run": run, "data": data}
    module_engine.remove_environment(name)


def inspect_main(module_engine, data: dict) -> dict:
    return json.loads(module_engine.docker("inspect", data["containers"][0]).stdout)[0]


def test_up_gives_the_container_the_limits(limited, module_engine):
    run, data = limited["run"], limited["data"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    host = inspect_main(module_engine, data)["HostConfig"]
    assert host["NanoCpus"] == 1_500_000_000
    assert host["Memory"] == 128 * MIB and host["MemorySwap"] == 128 * MIB      # no swap on top
    assert host["PidsLimit"] == DEFAULT_PIDS                                  # the default, left "auto"
    assert data["limits"] == {"cpus": 1.5, "memory": 128 * MIB, "pids": DEFAULT_PIDS, "defaults": ["pids"]}
    human = gpuenv("status", cwd=limited["folder"], env=limited["env"])
    assert "limits     each container: 1.5 CPUs, 128 MiB memory, 32768 processes" in human.stdout, human.stdout


def test_a_process_past_the_memory_limit_is_killed_and_reported(limited, module_engine):
    folder, env = limited["folder"], limited["env"]
    assert limited["run"].returncode == 0
    before = json.loads(gpuenv("status", "--json", cwd=folder, env=env).stdout)
    assert before["memory_kills"] == {"killed": 0, "container_ended": False}
    grab = gpuenv("exec", "--", "python3", "-c", "b = bytearray(512 * 1024 * 1024); print('survived')",
                  cwd=folder, env=env)
    assert grab.returncode == 137 and "survived" not in grab.stdout      # SIGKILL, from the kernel
    after = json.loads(gpuenv("status", "--json", cwd=folder, env=env).stdout)
    assert after["memory_kills"]["killed"] == 1 and after["state"] == "running"
    assert after["limits"]["memory"] == 128 * MIB
    human = gpuenv("status", cwd=folder, env=env)
    assert "1 process killed for memory (limit 128 MiB)" in human.stdout, human.stdout
    listed = json.loads(gpuenv("ls", "--json", cwd=folder, env=env).stdout)["environments"]
    mine = next(e for e in listed if e["name"] == limited["name"])
    assert mine["memory_kills"]["killed"] == 1
    assert mine["limits"] == {"cpus": 1.5, "memory": 128 * MIB, "pids": DEFAULT_PIDS}
    table = gpuenv("ls", cwd=folder, env=env, timeout=120)
    assert f"{limited['name']}: 1 process killed for memory (limit 128 MiB)" in table.stdout, table.stdout


def test_the_counter_reads_alike_on_the_host_and_inside_the_container(limited, module_engine):
    """This host's cgroup file (through /proc/PID/cgroup) and the container's own view say the same."""
    assert limited["run"].returncode == 0
    container = inspect_main(module_engine, limited["data"])
    docker = Docker(module_engine.client)
    here = memory_kills(docker, (container,), local=True)
    inside = memory_kills(docker, (container,), local=False)
    assert here == inside and here.killed is not None


def test_more_cpus_than_the_host_has_is_refused_before_the_build(module_engine, tmp_path_factory):
    name, folder, env = folder_for(module_engine, tmp_path_factory, "toomany", "cpus = 4096")
    try:
        run = gpuenv("up", cwd=folder, env=env)
        assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
        assert "[run] cpus = 4096 asks for more CPUs than the engine's host has" in run.stderr
        assert "hint: set [run] cpus to" in run.stderr
        made = module_engine.docker("images", "-q", f"gpuenv-{name}").stdout.decode().split()
        assert made == []
    finally:
        module_engine.remove_environment(name)
