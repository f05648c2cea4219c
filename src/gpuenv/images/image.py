"""Building an environment's image with BuildKit: the client that can (DOCKER_BUILDKIT=1 on 20.10-era
clients, buildx on current ones), the CA bundle and ~/.netrc as secrets (never in a layer), your UID and
GID as build arguments, the content tag; progress shown as it goes; Ctrl-C cancels the build cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Literal, NamedTuple, Optional, Union
from urllib.parse import urlsplit

from rich.console import Console

from gpuenv.errors import EngineError, GpuenvError
from gpuenv.host.engine import BuildRoute
from gpuenv.host.user import ca_bundle
from gpuenv.images.progress import BuildLog
from gpuenv.images.progress_view import follow
from gpuenv.run.docker import Docker

NO_BUILDKIT_HINT = ("install the buildx plugin (Debian/Ubuntu: docker-buildx or docker-buildx-plugin), or put a "
                    "20.10 docker client first on PATH (GPUENV_DOCKER=/usr/bin/docker); `gpuenv doctor` says which")

# Known build failures and their fix (row numbers of research/failure-modes.md).
HINTS = (
    ("CERTIFICATE_VERIFY_FAILED", "a TLS-inspecting proxy's CA is not trusted (failure-modes row 36): in "
     "gpuenv.toml set network.ca_certificates = \"auto\" (the default: the host's CA bundle reaches the build as "
     "a secret, never a layer), or name the proxy's CA file: network.ca_certificates = [\"/path/ca.crt\"]; "
     "`gpuenv doctor --network` says which source fails TLS"),
    ("Temporary failure resolving", "the build cannot resolve a host (row 38): set network.apt_mirror / "
     "network.http_proxy in gpuenv.toml, or give dockerd a DNS server"),
    ("Read timed out", "the package index is slow or blocked (row 37): set network.pip_index to a mirror"),
    ("NO_PUBKEY", "an apt repository's key is unknown (row 30): remove that list or add its key"),
    ("No matching distribution found", "pip found no wheel for this Python/platform: `gpuenv plan` shows what "
     "was planned; the index (network.pip_index) may lack it"),
)


# The network of the build's RUN steps: "" the engine's default (its bridge), "host" where it has no bridge.
BuildNetwork = Literal["", "host"]


class Secret(NamedTuple):
    """A build secret: RUN --mount=type=secret,id=`id` reads `file` (never in a layer)."""

    id: str                                      # "ca", "netrc"
    file: str                                    # its path on this host


@dataclass(frozen=True)
class BuildSpec:
    folder: Path                                 # the build context: the Dockerfile's folder
    tag: str
    args: tuple[tuple[str, str], ...] = ()       # (name, value): --build-arg
    secrets: tuple[Secret, ...] = ()
    target: Optional[str] = None                 # the Dockerfile stage to build (None: the last)
    no_cache: bool = False
    network: BuildNetwork = ""


def secrets(ca_setting: Union[str, list[str]]) -> tuple[Secret, ...]:
    """The CA bundle builds trust (network.ca_certificates), and ~/.netrc when there is one (an index that
    needs a login)."""
    found = []
    bundle = ca_bundle(ca_setting) if ca_setting != "none" else None    # "none": the image's own roots only
    if bundle:
        found.append(Secret("ca", bundle))
    netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if netrc.is_file():
        found.append(Secret("netrc", str(netrc)))
    return tuple(found)


def command(route: BuildRoute, spec: BuildSpec) -> tuple[list[str], dict[str, str]]:
    """The build's argv and environment for this client."""
    env = dict(os.environ)
    if route.how == "buildx":
        argv = [route.client, "buildx", "build", "--load"]
    else:
        argv = [route.client, "build"]
        env["DOCKER_BUILDKIT"] = "1"
    argv.append("--progress=plain")
    for name, value in spec.args:
        if _holds_login(value):              # a proxy's password: by name, its value in the client's environment
            argv += ["--build-arg", name]
            env[name] = value
        else:
            argv += ["--build-arg", f"{name}={value}"]
    for name, src in spec.secrets:
        argv += ["--secret", f"id={name},src={src}"]
    if spec.target:
        argv += ["--target", spec.target]
    if spec.no_cache:
        argv.append("--no-cache")
    if spec.network:
        argv += ["--network", spec.network]
    argv += ["-t", spec.tag, str(spec.folder)]
    return argv, env


def _holds_login(value: str) -> bool:
    """A URL with a user (and password) in it: never on a command line, which every local user can read."""
    try:
        return "@" in urlsplit(value).netloc
    except ValueError:
        return False


def build(docker: Docker, spec: BuildSpec, console: Console, live: bool, log_file: Path) -> BuildLog:
    """Build, showing progress; the finished BuildLog. Failure: GpuenvError with the failing step."""
    if docker.build is None:
        raise EngineError("no docker client here can build with BuildKit (gpuenv's Dockerfiles use its cache and "
                          "secret mounts)", NO_BUILDKIT_HINT)
    argv, env = command(docker.build, spec)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        try:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", bufsize=1, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise EngineError(f"cannot run {argv[0]}: {exc}") from None
        assert proc.stdout is not None                # stdout=PIPE
        try:
            result = follow(_tee(proc.stdout, log), console, live)
            code = proc.wait()
        except BaseException:
            _cancel(proc)
            raise
    if code != 0:
        raise _failure(result, log_file, code)
    return result


def _tee(stream: Iterable[str], log: IO[str]) -> Iterator[str]:
    for line in stream:
        log.write(line)
        yield line


def _cancel(proc: subprocess.Popen) -> None:
    """Ctrl-C: let the client cancel the build (BuildKit stops its step; nothing is left running)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _failure(result: BuildLog, log_file: Path, code: int) -> GpuenvError:
    failure = result.error()
    if failure is None:
        text = f"the build failed (exit {code})"
        lines: list[str] = []
    else:
        text = f"the build failed at {failure.step}: {failure.message}" if failure.step else \
            f"the build failed: {failure.message}"
        lines = list(failure.logs)
    body = "\n".join(lines[-15:])
    hint = next((h for key, h in HINTS if key in body or key in text), None)
    where = f"the whole log: {log_file}"
    return GpuenvError(text + (f"\n{body}" if body else ""), f"{hint}; {where}" if hint else where)
