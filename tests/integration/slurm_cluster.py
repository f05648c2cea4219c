"""A real Slurm of one node for the tests: munged, slurmctld and slurmd (Debian's slurm-wlm 22.05) started by
hand on 127.0.0.1 in a private folder (own munge key and socket, own ports, SLURM_CONF), no systemd; every
daemon is stopped and the folder removed at the end. The partition has no GPU (no GPU exists here)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

DAEMONS = ("munged", "slurmctld", "slurmd")


@dataclass(frozen=True)
class Cluster:
    folder: Path
    conf: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env={**os.environ, **self.env})


def available() -> str:
    """"" when the daemons are installed, else what is missing."""
    missing = [d for d in DAEMONS if not shutil.which(d) and not os.path.exists(f"/usr/sbin/{d}")]
    return ", ".join(missing)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


CONF = """ClusterName=gpuenvtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldPort={ctld}
SlurmdPort={slurmd}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=5
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@contextmanager
def running(folder: Path) -> Iterator[Cluster]:
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True)
    os.chmod(folder, 0o755)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    ctld, slurmd = _free_ports(2)
    conf = folder / "slurm.conf"
    conf.write_text(CONF.format(d=folder, ctld=ctld, slurmd=slurmd, cpus=os.cpu_count() or 1))
    cluster = Cluster(folder, conf)
    try:
        _start(["munged", f"--socket={folder}/munge.sock", f"--pid-file={folder}/munged.pid", "--force",
                f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed", f"--key-file={key}"])
        _start(["slurmctld", "-f", str(conf)], cluster.env)
        _start(["slurmd", "-f", str(conf), "-N", "localhost"], cluster.env)
        _wait_idle(cluster)
        yield cluster
    finally:
        for name in reversed(DAEMONS):
            _stop(folder / f"{name}.pid")
        shutil.rmtree(folder, ignore_errors=True)


def _start(argv: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{argv[0]} did not start: {done.stderr}"


def _wait_idle(cluster: Cluster) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle":
            return
        time.sleep(0.5)
    raise AssertionError("the node did not come up idle: " + (cluster.folder / "slurmctld.log").read_text()[-2000:])


def _stop(pid_file: Path) -> None:
    """SIGTERM the daemon the pid file names, then wait for it (SIGKILL after 20 s)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return False
