"""What the kernel killed for memory in an environment: each running container's cgroup counts the
processes it killed there (`oom_kill N`: cgroup v2 memory.events, v1 memory.oom_control), and the engine
says when it ended a container for it (State.OOMKilled). `gpuenv ls` and `status` report both.

The counter is read on the engine's host when that is this host (the container's cgroup path from
/proc/PID/cgroup: cheap, no process started), else, or when that cannot be read, inside the container
(`docker exec cat`: its own cgroup is what it sees there). A stopped container's cgroup is gone: only
State.OOMKilled is left then.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gpuenv.errors import EngineError
from gpuenv.host.limits import Limits, oom_kills, size_text
from gpuenv.run.docker import ContainerInspect, Docker

CGROUP = Path("/sys/fs/cgroup")
IN_CONTAINER = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")   # v2, v1


@dataclass(frozen=True)
class MemoryKills:
    """The kernel's memory kills in an environment's containers."""

    killed: Optional[int]          # processes killed in its running containers' cgroups; None: not readable
    container_ended: bool          # a container of it was ended for memory (State.OOMKilled)

    def to_dict(self) -> dict[str, object]:
        return {"killed": self.killed, "container_ended": self.container_ended}


def memory_kills(docker: Docker, containers: tuple[ContainerInspect, ...], local: bool) -> MemoryKills:
    """The kills in `containers` (one environment's); `local`: the engine runs on this host."""
    running = [c for c in containers if (c.get("State") or {}).get("Running")]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(running)))) as pool:
        counts = list(pool.map(lambda c: _counter(docker, c, local), running))
    known = [n for n in counts if n is not None]
    ended = any((c.get("State") or {}).get("OOMKilled") is True for c in containers)
    return MemoryKills(sum(known) if known else None, ended)


def _counter(docker: Docker, container: ContainerInspect, local: bool) -> Optional[int]:
    pid = (container.get("State") or {}).get("Pid")
    if local and isinstance(pid, int) and pid > 0:
        found = host_counter(Path(f"/proc/{pid}/cgroup"))
        if found is not None:
            return found
    return _inside(docker, container.get("Id") or container.get("Name", "").lstrip("/"))


def host_counter(proc_cgroup: Path, root: Path = CGROUP) -> Optional[int]:
    """The OOM-kill counter of the cgroup a process is in, by its /proc/PID/cgroup, on this host."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for path in memory_files(lines, root):
        try:
            return oom_kills(path.read_text())
        except OSError:
            continue
    return None


def memory_files(lines: list[str], root: Path = CGROUP) -> list[Path]:
    """The memory files of a /proc/PID/cgroup's cgroup: v1's memory controller line ("9:memory:/docker/ID")
    gives memory.oom_control, v2's single line ("0::/docker/ID") memory.events."""
    found = []
    for line in lines:
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path.startswith("/") or ".." in path.split("/"):
            continue
        if "memory" in controllers.split(","):
            found.append(root / "memory" / path.lstrip("/") / "memory.oom_control")
        elif number == "0" and controllers == "":
            found.append(root / path.lstrip("/") / "memory.events")
    return found


def _inside(docker: Docker, name: str) -> Optional[int]:
    try:
        done = docker.run("exec", name, "cat", *IN_CONTAINER, check=False, timeout=20)
    except EngineError:
        return None
    return oom_kills(done.stdout)


def kills_text(kills: MemoryKills, limits: Limits) -> str:
    """"1 process killed for memory (limit 512 MiB)"; "" when nothing was."""
    limit = f"limit {size_text(limits.memory)}" if limits.memory is not None else "no memory limit"
    parts = []
    if kills.killed:
        parts.append(f"{kills.killed} process{'' if kills.killed == 1 else 'es'} killed for memory ({limit})")
    if kills.container_ended:
        parts.append(f"a container was ended for memory ({limit})" if not parts else "a container ended so")
    return "; ".join(parts)
