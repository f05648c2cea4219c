"""The Docker engine as the docker CLI sees it: reachable or why not, what it is, how it builds.

Facts come from `docker info --format '{{json .}}'` and `docker version --format '{{json .}}'` (the
CLI knows DOCKER_HOST, contexts, TLS and ssh), from every `docker` client on PATH (two are common:
a new CLI without buildx in front of an old one that builds with BuildKit), and from compose.
`parse_info` and friends are pure, for recorded outputs; `probe_engine` runs the commands.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from packaging.version import InvalidVersion, Version

LOCAL_SOCKETS = ("unix:///var/run/docker.sock", "unix:///run/docker.sock")     # this host's own engine


@dataclass(frozen=True)
class Client:
    path: str
    version: str = ""
    buildx: Optional[str] = None        # the buildx plugin's version, when it has one

    @property
    def builds_with_buildkit(self) -> bool:
        """Clients before 23.0 build with BuildKit by DOCKER_BUILDKIT=1; later ones need buildx."""
        return self.buildx is not None or (bool(self.version) and loose_version(self.version) < Version("23"))


@dataclass(frozen=True)
class BuildRoute:
    client: str
    how: str                            # "buildx" or "DOCKER_BUILDKIT=1"


@dataclass(frozen=True)
class Compose:
    command: str                        # "docker compose" or "docker-compose"
    version: str
    generation: str                     # "v2" or "v1"


@dataclass(frozen=True)
class Engine:
    status: str                         # ok | not-installed | not-running | permission | error
    reason: str = ""                    # what the client said, when not ok
    endpoint: str = ""
    context: str = ""
    remote: bool = False                # its host is not this one: GPUs are probed through a container there
    name: str = ""                      # the engine host's name
    version: str = ""
    api_version: str = ""
    os: str = ""
    kernel: str = ""
    architecture: str = ""
    storage_driver: str = ""
    cgroup_version: str = ""
    cgroup_driver: str = ""
    runtimes: tuple[str, ...] = ()
    default_runtime: str = ""
    rootless: bool = False
    security_options: tuple[str, ...] = ()
    root_dir: str = ""
    mirrors: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    cdi_spec_dirs: tuple[str, ...] = ()
    cpus: int = 0                       # the engine's host's CPUs (NCPU); 0 = not said
    memory: int = 0                     # its memory in bytes (MemTotal); 0 = not said
    clients: tuple[Client, ...] = ()
    buildkit: Optional[BuildRoute] = None
    compose: tuple[Compose, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def client(self) -> Optional[str]:
        return self.clients[0].path if self.clients else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- pure parts --------------------------------------------------------------------------------------

def parse_info(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of `docker info --format '{{json .}}'` (or GET /info) that gpuenv uses."""
    registry = data.get("RegistryConfig") or {}
    insecure = list(registry.get("InsecureRegistryCIDRs") or [])
    insecure += [name for name, index in (registry.get("IndexConfigs") or {}).items()
                 if isinstance(index, dict) and index.get("Secure") is False]
    security = tuple(data.get("SecurityOptions") or ())
    return dict(
        name=data.get("Name") or "",
        version=data.get("ServerVersion") or "",
        os=data.get("OperatingSystem") or "",
        kernel=data.get("KernelVersion") or "",
        architecture=data.get("Architecture") or "",
        storage_driver=data.get("Driver") or "",
        cgroup_version=str(data.get("CgroupVersion") or ""),
        cgroup_driver=data.get("CgroupDriver") or "",
        runtimes=tuple(sorted(data.get("Runtimes") or {})),
        default_runtime=data.get("DefaultRuntime") or "",
        rootless=any("name=rootless" in s for s in security),
        security_options=security,
        root_dir=data.get("DockerRootDir") or "",
        mirrors=tuple(registry.get("Mirrors") or ()),
        insecure_registries=tuple(insecure),
        http_proxy=data.get("HttpProxy") or "",
        https_proxy=data.get("HttpsProxy") or "",
        no_proxy=data.get("NoProxy") or "",
        cdi_spec_dirs=tuple(data.get("CDISpecDirs") or ()),
        cpus=_count(data.get("NCPU")),
        memory=_count(data.get("MemTotal")),
    )


def _count(value: Any) -> int:
    """A count the engine gives (NCPU, MemTotal); 0 when it is missing or no whole positive number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def engine_from_info(info: dict[str, Any], version: Optional[dict[str, Any]] = None, endpoint: str = "",
                     local_name: Optional[str] = None) -> Engine:
    """An answering engine from its `docker info` (and `docker version`) JSON, as recorded."""
    facts = parse_info(info)
    server = (version or {}).get("Server") or {}
    return Engine("ok", endpoint=endpoint, api_version=server.get("ApiVersion", ""),
                  remote=is_remote(endpoint, facts["name"], local_name), **facts)


def unreachable_reason(stderr: str) -> tuple[str, str]:
    """(status, reason) from what `docker info` printed when it could not reach the engine."""
    text = " ".join(stderr.split())
    if "permission denied" in text.lower():
        return "permission", text
    if re.search(r"Cannot connect to the Docker daemon|Is the docker daemon running|connection refused|"
                 r"no such file or directory|dial unix", text, re.I):
        return "not-running", text
    return "error", text or "docker info failed"


def build_route(clients: tuple[Client, ...]) -> Optional[BuildRoute]:
    """The first client, in PATH order, that builds with BuildKit, and how."""
    for client in clients:
        if client.buildx is not None:
            return BuildRoute(client.path, "buildx")
        if client.builds_with_buildkit:
            return BuildRoute(client.path, "DOCKER_BUILDKIT=1")
    return None


def endpoint_from_config(env: Optional[dict[str, str]] = None, home: Optional[Path] = None) -> tuple[str, str]:
    """(endpoint, context) as the docker CLI picks them: DOCKER_HOST, else the context's endpoint."""
    env = dict(os.environ) if env is None else env
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"], "DOCKER_HOST"
    config_dir = Path(env.get("DOCKER_CONFIG") or (home or Path.home()) / ".docker")
    context = env.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if context and context != "default":
        meta = config_dir / "contexts" / "meta" / hashlib.sha256(context.encode()).hexdigest() / "meta.json"
        try:
            host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
            return host, context
        except (OSError, ValueError, KeyError, TypeError):
            return "", context
    return LOCAL_SOCKETS[0], "default"


def chosen_elsewhere(endpoint: str, context: str) -> bool:
    """Whether the user pointed the CLI (DOCKER_HOST, a context) at an engine other than this host's own."""
    return bool(context) and context != "default" and endpoint not in LOCAL_SOCKETS


def engine_words(endpoint: str, context: str) -> str:
    """How a message names the engine: by DOCKER_HOST and its value, by context, or as this host's."""
    if context == "DOCKER_HOST":
        return f"the Docker engine at DOCKER_HOST={endpoint}"
    if context and context != "default":
        return f"the Docker engine of the docker context {context} ({endpoint or 'no endpoint'})"
    return "the Docker engine"


def check_commands(endpoint: str, context: str) -> tuple[str, ...]:
    """Commands that check an engine the user chose (DOCKER_HOST or a context)."""
    socket_path = endpoint[len("unix://"):] if endpoint.startswith("unix://") else ""
    looks = (f"ls -l {shlex.quote(socket_path)}",) if socket_path else ()
    if context == "DOCKER_HOST":
        return looks + (f"docker -H {shlex.quote(endpoint)} info",)
    return looks + (f"docker context inspect {shlex.quote(context)}",)


def leave_command(context: str) -> str:
    """The command that goes back to this host's own engine from one the user chose."""
    return "unset DOCKER_HOST" if context == "DOCKER_HOST" else "docker context use default"


def _current_context(config_dir: Path) -> str:
    try:
        return json.loads((config_dir / "config.json").read_text()).get("currentContext", "") or ""
    except (OSError, ValueError, AttributeError):
        return ""


def remote_endpoint(endpoint: str) -> bool:
    """A tcp/ssh endpoint that is not on loopback: another machine, by the address alone."""
    url = urlparse(endpoint)
    return url.scheme in ("tcp", "ssh", "http", "https") and (url.hostname or "") not in ("localhost", "127.0.0.1",
                                                                                          "::1")


def is_remote(endpoint: str, engine_name: str, local_name: Optional[str] = None) -> bool:
    """An engine is remote when its host is not this one: reached over the network, or named other
    than this host (a VM such as Docker Desktop's, or the host of the container gpuenv runs in). Host
    names alone are not enough: servers called "ubuntu" or "localhost" are many."""
    named_other = bool(engine_name) and engine_name != (local_name or socket.gethostname())
    return remote_endpoint(endpoint) or named_other


def loose_version(text: str) -> Version:
    """The leading numbers of a version as packages print it ("20.10.24+dfsg1" -> 20.10.24)."""
    match = re.match(r"\d+(\.\d+)*", text)
    try:
        return Version(match.group(0)) if match else Version("0")
    except InvalidVersion:
        return Version("0")


# -- running the client ------------------------------------------------------------------------------

def clients_on_path(env_path: Optional[str] = None) -> list[str]:
    """Every `docker` executable on PATH, in order, without duplicates (by real path)."""
    found: list[str] = []
    seen: set[str] = set()
    preferred = os.environ.get("GPUENV_DOCKER")
    candidates = [preferred] if preferred else []
    for folder in (env_path if env_path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidates.append(os.path.join(folder or ".", "docker"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
    return found


def _run(argv: list[str], timeout: float = 10.0) -> tuple[int, str, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return 124, "", f"{' '.join(argv)} did not answer within {timeout:g} s"
    except OSError as exc:
        return 127, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def _client(path: str) -> tuple[Client, dict[str, Any]]:
    """A client, and what its `docker version` says of the engine (its Server part, {} when down)."""
    _, out, _ = _run([path, "version", "--format", "{{json .}}"], 10)
    version = _json(out)
    code, buildx, _ = _run([path, "buildx", "version"], 10)
    plugin = buildx.split()[1] if code == 0 and len(buildx.split()) > 1 else None
    return Client(path, (version.get("Client") or {}).get("Version", ""), plugin), version.get("Server") or {}


def _compose(client: Optional[str]) -> list[Compose]:
    found = []
    if client:
        code, out, _ = _run([client, "compose", "version", "--short"], 10)
        if code == 0 and out.strip():
            found.append(Compose("docker compose", out.strip().lstrip("v"), "v2"))
    standalone = shutil.which("docker-compose")
    if standalone:
        code, out, _ = _run([standalone, "version", "--short"], 15)
        if code == 0 and out.strip():
            version = out.strip().lstrip("v")
            found.append(Compose("docker-compose", version, "v2" if loose_version(version) >= Version("2") else "v1"))
    return found


def probe_engine(compose: bool = True) -> Engine:
    """Ask the engine through the docker CLI; never raises. `compose=False` skips asking compose's
    version (docker-compose v1 is a Python program: half a second that `gpuenv up` does not need)."""
    paths = clients_on_path()
    endpoint, context = endpoint_from_config()
    if not paths:
        return Engine("not-installed", "no docker command on PATH" + (
            "; dockerd is installed" if shutil.which("dockerd") else ""), endpoint, context)
    with ThreadPoolExecutor(max_workers=6) as pool:
        info_job = pool.submit(_run, [paths[0], "info", "--format", "{{json .}}"], 20)
        client_jobs = [pool.submit(_client, p) for p in paths]
        compose_job = pool.submit(_compose, paths[0]) if compose else None
        code, out, err = info_job.result()
        data = _json(out)
        if code == 0 and (data.get("ServerErrors") or not data.get("ServerVersion")):
            # the 20.10 CLI exits 0 with --format and puts "Cannot connect ..." in ServerErrors
            code, err = 1, " ".join(data.get("ServerErrors") or [err or "`docker info` printed no engine"])
        answers = [job.result() for job in client_jobs]
        clients = tuple(client for client, _ in answers)
        route = build_route(clients)
        composes = tuple(compose_job.result()) if compose_job else ()
        if code != 0:
            status, reason = unreachable_reason(err)
            if status == "not-running" and _client_only(endpoint, context):
                status, reason = "not-installed", f"only the docker client is installed ({paths[0]}); no dockerd"
            return Engine(status, reason, endpoint, context, clients=clients, buildkit=route, compose=composes)
    engine = engine_from_info(data, {"Server": answers[0][1]}, endpoint)
    return replace(engine, context=context, clients=clients, buildkit=route, compose=composes)


def _client_only(endpoint: str, context: str) -> bool:
    """This host's default socket is missing and there is no dockerd: only the client is installed.
    Not said of an engine the user chose (DOCKER_HOST, a context): that one is elsewhere."""
    return (not chosen_elsewhere(endpoint, context) and not shutil.which("dockerd")
            and endpoint.startswith("unix://") and not os.path.exists(endpoint[len("unix://"):]))


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
