"""The docker CLI as gpuenv drives it: one client, its errors turned into gpuenv's.

gpuenv runs the `docker` command rather than the engine's API so that everything the user set up for
their own CLI (DOCKER_HOST, contexts, TLS, ssh://, credential helpers, proxies) holds for gpuenv too.
Which client builds with BuildKit is the probe's business (host/engine.py); this module runs them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence, TypedDict, overload

from gpuenv.errors import EngineError
from gpuenv.host.engine import BuildRoute, Engine, check_commands, chosen_elsewhere, endpoint_from_config
from gpuenv.host.engine import engine_words, leave_command, unreachable_reason

DOWN_HINTS = {
    "not-installed": "install Docker (Debian/Ubuntu: sudo apt-get install docker.io), then `gpuenv doctor`",
    "not-running": "start it (sudo systemctl start docker, or sudo dockerd &), then `gpuenv doctor`",
    "permission": "sudo usermod -aG docker $USER, then log in again (or run gpuenv with sudo)",
    "error": "run `gpuenv doctor` for what is wrong and how to fix it",
}


# `docker image inspect` and `docker container inspect`, as far as gpuenv reads them: the keys read
# anywhere, no more (the engine gives many others). Where the engine may write null (Labels, Env, a
# port's bindings) the type says Optional; gpuenv reads every key with `.get(...) or {}` / `or []`.


class ImageConfig(TypedDict, total=False):
    Env: Optional[list[str]]                  # "NAME=value": the image's ENV
    Labels: Optional[dict[str, str]]          # its LABELs (io.gpuenv.*, org.opencontainers.*)
    User: str                                 # its USER: "UID:GID" for a gpuenv image; "" = root


class RootFS(TypedDict, total=False):
    Layers: list[str]                         # the layers' diff IDs, the base's first


class ImageInspect(TypedDict, total=False):
    """One image of `docker image inspect`."""

    Id: str                                   # "sha256:..."
    RepoTags: list[str]                       # "name:tag" of every tag it has ([] when none)
    RepoDigests: list[str]                    # "name@sha256:..." of every registry it was pushed to or pulled from
    Created: str                              # RFC 3339
    Size: int                                 # bytes
    Config: Optional[ImageConfig]
    RootFS: RootFS


class Health(TypedDict, total=False):
    Status: str                               # "starting" | "healthy" | "unhealthy"


class State(TypedDict, total=False):
    Status: str                               # "created" | "running" | "restarting" | "exited" | ...
    Running: bool                             # true while restarting too (Restarting tells)
    Restarting: bool
    ExitCode: int
    Pid: int                                  # its main process on the engine's host; 0 when not running
    OOMKilled: bool                           # the kernel killed a process of it for memory (its last run)
    Health: Health                            # absent when the container has no health check


class ContainerConfig(TypedDict, total=False):
    Labels: Optional[dict[str, str]]          # io.gpuenv.* (run/container.py) among others
    Image: str                                # the image as `docker run` named it


class PortBinding(TypedDict, total=False):
    HostIp: str                               # "" = every address
    HostPort: str                             # a number, as text


# "8888/tcp" -> its bindings on the host (None: exposed, not published)
PortMap = dict[str, Optional[list[PortBinding]]]


class HostConfig(TypedDict, total=False):
    PortBindings: Optional[PortMap]           # what `docker run --publish` asked for
    NanoCpus: int                             # --cpus times 10^9; 0 = no limit
    Memory: int                               # --memory in bytes; 0 = no limit
    MemorySwap: int                           # --memory-swap in bytes (memory plus swap); 0 or -1 = none
    PidsLimit: Optional[int]                  # --pids-limit; null, 0 or -1 = no limit


class NetworkSettings(TypedDict, total=False):
    Ports: Optional[PortMap]                  # what is published now (running containers only)


class Mount(TypedDict, total=False):
    Type: str                                 # "volume" | "bind" | ...
    Name: str                                 # a volume's name
    Destination: str                          # the path inside the container


class ContainerInspect(TypedDict, total=False):
    """One container of `docker container inspect`."""

    Id: str
    Name: str                                 # "/NAME": the leading slash is the engine's
    State: State
    RestartCount: int                         # how often the engine restarted it (its restart policy)
    Config: ContainerConfig
    HostConfig: HostConfig
    NetworkSettings: NetworkSettings
    Mounts: list[Mount]


@dataclass(frozen=True)
class Docker:
    client: str                              # the docker executable every command runs
    build: Optional[BuildRoute] = None       # how to build with BuildKit here (None: no client can)
    context: str = ""                        # a docker context every command names (--context); "" = the CLI's
    limit: Optional[float] = None            # the most seconds any one command may take (a host of several)

    @classmethod
    def connect(cls, engine: Engine) -> "Docker":
        """The client of an engine that answers; EngineError (exit 1) with the fix when it does not."""
        if not engine.ok:
            raise down_error(engine.status, engine.reason or engine.status, engine.endpoint, engine.context)
        return cls(engine.client or "docker", engine.buildkit)

    def argv(self, *args: str) -> list[str]:
        return [self.client, *(["--context", self.context] if self.context else []), *args]

    def run(self, *args: str, check: bool = True, timeout: Optional[float] = 120,
            stdin: Optional[str] = None) -> subprocess.CompletedProcess[str]:
        """Run a docker command, capturing its output; EngineError when it fails and `check`."""
        if self.limit is not None:
            timeout = min(timeout, self.limit) if timeout is not None else self.limit
        try:
            done = subprocess.run(self.argv(*args), capture_output=True, text=True, errors="replace",
                                  timeout=timeout, input=stdin,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EngineError(f"`docker {args[0]}` did not finish within {timeout:g} s",
                              "the engine may be overloaded or hung: `gpuenv doctor`") from None
        except OSError as exc:
            raise EngineError(f"cannot run {self.client}: {exc}", DOWN_HINTS["not-installed"]) from None
        if check and done.returncode != 0:
            raise engine_error(args, done.stderr or done.stdout)
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout or "null")

    @overload
    def inspect(self, kind: Literal["image"], *names: str) -> list[ImageInspect]: ...
    @overload
    def inspect(self, kind: Literal["container"], *names: str) -> list[ContainerInspect]: ...
    @overload
    def inspect(self, kind: Literal["volume", "network"], *names: str) -> list[dict[str, Any]]: ...

    def inspect(self, kind: str, *names: str) -> list[Any]:
        """`docker KIND inspect` of the names that exist (the others are left out)."""
        if not names:
            return []
        done = self.run(kind, "inspect", *names, check=False)
        try:
            found = json.loads(done.stdout or "[]")
        except ValueError:
            found = []
        if not found and done.returncode != 0 and not _missing(done.stderr):
            raise engine_error((kind, "inspect"), done.stderr)
        return [item for item in found if item]

    def image(self, ref: str) -> Optional[ImageInspect]:
        """`docker image inspect` of `ref`; None when this engine has no such image."""
        found = self.inspect("image", ref)
        return found[0] if found else None

    def has_bridge(self) -> bool:
        """Whether the engine has its default bridge network (dockerd --bridge=none has not)."""
        return self.run("network", "inspect", "bridge", check=False).returncode == 0

    def containers(self, *labels: str) -> list[ContainerInspect]:
        """Every container (running or not) carrying all of `labels` ("key" or "key=value"), inspected."""
        filters = [f for label in labels for f in ("--filter", f"label={label}")]
        ids = self.run("ps", "-a", "-q", "--no-trunc", *filters).stdout.split()
        return self.inspect("container", *ids)

    def interactive(self, *args: str) -> int:
        """Run a docker command attached to this terminal; its exit code."""
        try:
            return subprocess.call(self.argv(*args))
        except OSError as exc:
            raise EngineError(f"cannot run {self.client}: {exc}", DOWN_HINTS["not-installed"]) from None


def _missing(stderr: str) -> bool:
    return "No such" in stderr or "no such" in stderr


def engine_error(args: Sequence[str], stderr: str) -> EngineError:
    """A failed docker command as an EngineError: an engine that went away says how to bring it back."""
    text = " ".join(stderr.split()) or "no output"
    status, _ = unreachable_reason(text)
    if status in ("not-running", "permission") and ("daemon" in text or "docker.sock" in text):
        return down_error(status, text, *endpoint_from_config())
    return EngineError(f"`docker {' '.join(args[:2])}` failed: {text}")


def down_error(status: str, reason: str, endpoint: str, context: str) -> EngineError:
    """An engine that does not answer, named as the user chose it: an engine set by DOCKER_HOST or a
    context is checked there (never a second engine started here); this host's own gets the fix here."""
    if chosen_elsewhere(endpoint, context) and status != "permission":
        return EngineError(f"{engine_words(endpoint, context)} does not answer: {reason}",
                           f"check that engine ({'; '.join(check_commands(endpoint, context))}), or use this "
                           f"host's own instead: {leave_command(context)}")
    return EngineError(f"{engine_words(endpoint, context)} is not usable: {reason}",
                       DOWN_HINTS.get(status, DOWN_HINTS["error"]))

