"""A real Docker engine for integration tests; everything a test makes is removed afterwards.

scripts/test sets the engine up and exports:
  GPUENV_DOCKER            the docker client to use (one that builds with BuildKit)
  GPUENV_TEST_BASE_IMAGE   the locally built base image (no registry is reachable)
  GPUENV_TEST_REGISTRY     the local registry, host:port
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Iterator

import pytest


@dataclass
class Engine:
    client: str
    base_image: str
    registry: str
    images: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def docker(self, *args: str, input: bytes | None = None, check: bool = True,
               timeout: int = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        run = subprocess.run([self.client, *args], input=input, capture_output=True, env=env, timeout=timeout)
        if check and run.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({run.returncode}):\n{run.stderr.decode()}")
        return run

    def unique(self, prefix: str) -> str:
        return f"gpuenv-test-{prefix}-{uuid.uuid4().hex[:10]}"

    def track_image(self, ref: str) -> str:
        self.images.append(ref)
        return ref

    def track_container(self, name: str) -> str:
        self.containers.append(name)
        return name

    def remove_environment(self, name: str) -> None:
        """Whatever an environment named `name` left on this engine: its containers and volumes (named after
        its project, which starts with the name) and its images (gpuenv-NAME:TAG)."""
        for cid in self.docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.decode().split():
            self.docker("rm", "-f", cid, check=False)
        for volume in self.docker("volume", "ls", "-q", "--filter", f"name={name}").stdout.decode().split():
            self.docker("volume", "rm", "-f", volume, check=False)
        images = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}", f"gpuenv-{name}").stdout.decode()
        for ref in images.split():
            self.docker("image", "rm", "-f", ref, check=False)

    def clean_up(self) -> None:
        for name in self.containers:
            self.docker("rm", "--force", "--volumes", name, check=False)
        for ref in reversed(self.images):
            self.docker("image", "rm", "--force", ref, check=False)


@pytest.fixture
def engine() -> Iterator[Engine]:
    yield from _engine()


@pytest.fixture(scope="module")
def module_engine() -> Iterator[Engine]:
    """The same engine for a module whose tests share what they built (an image that takes a minute)."""
    yield from _engine()


def _engine() -> Iterator[Engine]:
    client = os.environ.get("GPUENV_DOCKER") or shutil.which("docker")
    if client is None:
        pytest.fail("no docker client: run the tests through scripts/test, which sets up the engine")
    made = Engine(client, os.environ.get("GPUENV_TEST_BASE_IMAGE", "gpuenv-test/debian:bookworm"),
                  os.environ.get("GPUENV_TEST_REGISTRY", "127.0.0.1:5000"))
    info = made.docker("info", "--format", "{{.ServerVersion}}", check=False)
    if info.returncode != 0:
        pytest.fail(f"the Docker engine does not answer ({info.stderr.decode().strip()}): run scripts/test")
    try:
        yield made
    finally:
        made.clean_up()


@dataclass
class SecondEngine:
    """A second dockerd on this machine with its own data root and socket (and a TCP endpoint on
    127.0.0.1): a remote engine, an offline server, or an engine to stop, without touching the first."""

    root: str
    client: str
    tcp: str
    bridge: str
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def docker(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        run = subprocess.run([self.client, "-H", self.socket, *args], capture_output=True, **kw)
        if check and run.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {run.stderr!r}")
        return run

    def start(self, config: dict | None = None) -> None:
        import json
        import time

        with open(f"{self.root}/daemon.json", "w") as f:
            json.dump(config or {}, f)
        log = open(f"{self.root}/dockerd.log", "ab")
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", f"{self.root}/data", "--exec-root", f"{self.root}/exec",
             "--pidfile", f"{self.root}/docker.pid", "-H", self.socket, "-H", self.tcp,
             "--config-file", f"{self.root}/daemon.json", f"--bridge={self.bridge}", "--iptables=false",
             "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false"],
            stdout=log, stderr=log, start_new_session=True)
        for _ in range(120):
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"the second dockerd did not start: see {self.root}/dockerd.log")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.process = None


@pytest.fixture
def second_engine(engine: Engine) -> Iterator[SecondEngine]:
    import socket
    import tempfile

    if shutil.which("dockerd") is None:
        pytest.fail("no dockerd: run the tests through scripts/test")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # its own bridge: `dockerd --bridge=none` would delete the first engine's docker0 (moby removes the
    # default bridge interface when the bridge is disabled), and the default would collide with it
    bridge = f"gpe{port}"
    for cmd in (["ip", "link", "add", bridge, "type", "bridge"], ["ip", "addr", "add", "10.213.77.1/24", "dev", bridge],
                ["ip", "link", "set", bridge, "up"]):
        subprocess.run(cmd, check=True, capture_output=True)
    made = SecondEngine(tempfile.mkdtemp(prefix="gpuenv-2nd-", dir="/tmp"), engine.client, f"tcp://127.0.0.1:{port}",
                        bridge)
    try:
        yield made
    finally:
        made.stop()
        subprocess.run(["rm", "-rf", made.root], check=False)
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)
