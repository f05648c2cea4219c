#!/usr/bin/env python3
"""A second Docker engine on this machine, standing in for an offline server: its own data root, exec
root, pid file, unix socket and containerd, its own network namespace (unshare --net: offline, and its
--bridge=none cannot delete the host's docker0), no iptables, and an empty daemon.json (the first
engine's settings stay the first engine's).

    python3 scripts/second_engine.py start [DIR] [--bridge]   prints DOCKER_HOST=unix://DIR/docker.sock
    python3 scripts/second_engine.py stop DIR      stops it and removes DIR (data root included)

With `bridge=True` (--bridge) it has a default bridge of its own, inside that namespace (still offline:
no iptables, no NAT), so that containers can publish ports on the namespace's 127.0.0.1, as on a server
reached over ssh; its loopback is up either way. `net_namespace()` names the namespace, for nsenter.

Tests and benchmarks use `running()`: the engine for the duration of a `with`, stopped and removed
after it, also when what ran inside failed. Needs root and a `dockerd` on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

PREFIX = "gpuenv-bundle-engine-"


@dataclass(frozen=True)
class SecondEngine:
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    def env(self) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this engine (and no context that would override it)."""
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"}
        return {**env, "DOCKER_HOST": self.host}

    def docker(self, *args: str, client: str = "/usr/bin/docker", check: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run([client, "-H", self.host, *args], capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} on the second engine failed: {done.stderr.strip()}")
        return done


def start(root: Optional[Path] = None, timeout: float = 60, bridge: bool = False) -> SecondEngine:
    root = Path(root or tempfile.mkdtemp(prefix=PREFIX, dir="/tmp"))
    engine = SecondEngine(root)
    for sub in ("data", "exec"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "daemon.json").write_text("{}\n")
    # Its own network namespace: dockerd --bridge=none deletes the host's docker0 when it starts (moby's
    # removeDefaultBridgeInterface), which breaks every other engine's containers on the machine. In a
    # namespace of its own it deletes nothing of the host's, and it is offline, as the server it stands for.
    # Its loopback is brought up first (a new namespace's is down): ports published on 127.0.0.1 and an
    # sshd listening there answer only then.
    argv = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
            "dockerd", "--config-file", str(root / "daemon.json"),
            "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile", str(engine.pidfile),
            "--host", engine.host, *([] if bridge else ["--bridge=none"]),
            "--iptables=false", "--ip-masq=false", "--log-level", "warn"]
    with open(root / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop(engine)
            raise RuntimeError(f"the second dockerd exited ({proc.returncode}): {_tail(root)}")
        if engine.socket.exists() and engine.docker("info", check=False, timeout=10).returncode == 0:
            return engine
        time.sleep(0.3)
    stop(engine)
    raise RuntimeError(f"the second dockerd did not answer within {timeout:g} s: {_tail(root)}")


def net_namespace(engine: SecondEngine) -> Path:
    """The engine's network namespace (/proc/PID/ns/net of its dockerd), for `nsenter --net=...`."""
    pid = _pid(engine)
    if pid is None:
        raise RuntimeError(f"the second dockerd of {engine.root} is not running")
    return Path(f"/proc/{pid}/ns/net")


def _tail(root: Path) -> str:
    log = root / "dockerd.log"
    return log.read_text(errors="replace")[-800:] if log.exists() else "(no log)"


def stop(engine: SecondEngine, timeout: float = 60) -> None:
    """Stop the engine (its containers first) and remove its folder; safe to call twice."""
    pid = _pid(engine)
    if pid:
        with contextlib.suppress(Exception):
            ids = engine.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                engine.docker("rm", "-f", *ids, check=False, timeout=120)
        _terminate(pid, timeout)
    _unmount_under(engine.root)
    shutil.rmtree(engine.root, ignore_errors=True)


def _pid(engine: SecondEngine) -> Optional[int]:
    try:
        pid = int(engine.pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _terminate(pid: int, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _unmount_under(root: Path) -> None:
    """Mounts a killed engine left under its folder (overlay layers, netns), deepest first."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(str(root) + "/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def running(bridge: bool = False, stop_timeout: float = 60) -> Iterator[SecondEngine]:
    """`stop_timeout`: seconds to wait for dockerd after SIGTERM before SIGKILL. A bridge engine whose
    container published a port was seen not to exit on SIGTERM within 60 s (20.10, no iptables): its
    users may ask for less."""
    engine = start(bridge=bridge)
    try:
        yield engine
    finally:
        stop(engine, stop_timeout)


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "start":
        folders = [a for a in argv[1:] if a != "--bridge"]
        engine = start(Path(folders[0]) if folders else None, bridge="--bridge" in argv)
        print(f"DOCKER_HOST={engine.host}")
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        stop(SecondEngine(Path(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
