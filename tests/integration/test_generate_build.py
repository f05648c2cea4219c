"""`gpuenv generate`'s files built on the real engine here, through mirrors, the TLS-inspecting proxy's
CA as a BuildKit secret, and the local registry acting as the registry mirror.

No registry but the local one is reachable, so every base is a stand-in pushed there under the name
the plan gives it (a namespace per run on 127.0.0.1:5000 is the registry mirror):
- `jax-cpu` (python:3.11-slim-bookworm): the stand-in is Debian 12 with Debian's Python 3.11 and pip
  where the official image has a CPython built in /usr/local. Everything else is real: apt through a
  mirror, jax, jupyterlab and matplotlib from PyPI through the proxy, the user, Jupyter's token.
  Unproven: the official image's own Python build.
- `tf-cuda9-old-driver` (nvidia/cuda:9.0-cudnn7-runtime-ubuntu16.04, deleted from Docker Hub): the
  stand-in is Debian 12 with an apt list signed by a key apt does not have, as NVIDIA's lists in images
  made before the 2022 key rotation are. The `system` stage is built: the mirror in sources.list, the
  retired lists dropped, sshd installed. Unproven: Ubuntu 16.04's own packages, CPython 3.6.15 built
  from python.org (unreachable here), tensorflow-gpu 1.12.3, CUDA 9 and the GPU.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import tarfile
import threading
import time

import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import tomli_w

from gpuenv import environment
from gpuenv.host import network, user
from gpuenv.tomlcompat import tomllib

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
UID = 4321


class AptMirror(http.server.ThreadingHTTPServer):
    """An apt mirror on the engine's bridge: it forwards to deb.debian.org and remembers each path. It
    listens on `address` (all addresses when this host has not that one) and is named by it."""

    def __init__(self, address: str) -> None:
        self.paths: list[str] = []
        self.address = address
        try:
            super().__init__((address, 0), _Forward)
        except OSError:                      # the engine's gateway is not an address of this host
            super().__init__(("0.0.0.0", 0), _Forward)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.paths.append(self.path)
        try:
            with urllib.request.urlopen(f"http://deb.debian.org{self.path}", timeout=60) as upstream:
                body, status = upstream.read(), upstream.status
        except urllib.error.HTTPError as error:
            body, status = b"", error.code
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def container_gateway(engine) -> str:
    """The address containers (and builds) on the engine's default bridge reach this host by: their
    default route's gateway, read inside one. Not the bridge's IPAM gateway, which an engine whose
    bridge came up without one leaves empty (and a mirror on "" is dialled as 0.0.0.0)."""
    routes = engine.docker("run", "--rm", engine.base_image, "cat", "/proc/net/route").stdout.decode()
    gateway = default_gateway(routes)
    assert gateway, f"no default route in a container on the engine's bridge:\n{routes}"
    return gateway


def default_gateway(routes: str) -> str:
    """The default route's gateway of a /proc/net/route table (little-endian hex), or ""."""
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and int(fields[2], 16):
            return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return ""


def test_the_gateway_is_read_from_a_route_table_whatever_ipam_says():
    table = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
             "eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
             "eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")
    assert default_gateway(table) == "172.17.0.1" and default_gateway(table.splitlines()[0]) == ""


@pytest.fixture(scope="module")
def apt_mirror(module_engine) -> Iterator[AptMirror]:
    server = AptMirror(container_gateway(module_engine))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def mirror_ns(module_engine) -> str:
    """This run's registry mirror: a namespace of the local registry, so runs never share a base."""
    return f"{module_engine.registry}/{module_engine.unique('mirror')}"


def push_standin(engine, mirror: str, path: str, dockerfile: str, files: dict[str, str] | None = None) -> None:
    """Build a stand-in base (a Dockerfile and its context files), push it into the mirror, drop it here."""
    import tempfile

    ref = engine.track_image(f"{mirror}/{path}")
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(dockerfile)
        for name, text in (files or {}).items():
            (Path(context) / name).write_text(text)
        engine.docker("build", "-t", ref, context)
    engine.docker("push", ref)
    engine.docker("image", "rm", ref)              # the build must pull it through the mirror


def generate_copy(example: str, folder: Path, edit) -> Path:
    data = tomllib.loads((ROOT / "examples" / example / "gpuenv.toml").read_text())
    edit(data)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpuenv.toml").write_text(tomli_w.dumps(data))
    environment.generate(folder / "gpuenv.toml")
    return folder


def build(engine, folder: Path, tag: str, *extra: str, check: bool = True):
    netrc = folder.parent / "netrc"
    netrc.write_text(f"machine index.example.invalid login gpuenv password {NETRC_SECRET}\n")
    return engine.docker("build", "--progress=plain", "--secret", f"id=ca,src={user.ca_bundle('auto')}",
                         "--secret", f"id=netrc,src={netrc}", "--build-arg", f"USER_UID={UID}",
                         "--build-arg", f"USER_GID={UID}", *extra, "-t", engine.track_image(tag), str(folder),
                         check=check, timeout=1500)


NETRC_SECRET = "netrc-password-that-must-never-reach-a-layer"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def python_standin(module_engine, mirror_ns) -> None:
    push_standin(module_engine, mirror_ns, "library/python:3.11-slim-bookworm",
                 STANDIN_PYTHON.format(base=module_engine.base_image), {"debian.sources": DEBIAN_SOURCES})


@pytest.fixture(scope="module")
def jax_env(module_engine, apt_mirror, mirror_ns, python_standin, tmp_path_factory) -> dict:
    port = free_port()

    def edit(data: dict) -> None:
        data["network"] = {"registry_mirror": mirror_ns, "apt_mirror": apt_mirror.url}
        data["access"]["jupyter"]["port"] = port

    folder = generate_copy("jax-cpu", tmp_path_factory.mktemp("jax") / "env", edit)
    env = dict(line.split("=", 1) for line in (folder / ".env").read_text().splitlines() if "=" in line
               and not line.startswith("#"))
    run = build(module_engine, folder, env["GPUENV_IMAGE"])
    return {"folder": folder, "env": env, "image": env["GPUENV_IMAGE"], "log": run.stderr.decode(), "port": port}


STANDIN_PYTHON = "\n".join([
    "FROM {base}",
    "COPY debian.sources /etc/apt/sources.list.d/debian.sources",
    "RUN rm -f /etc/apt/sources.list && apt-get update \\",
    " && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \\",
    " && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \\",
    " && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip",
    "",
])
DEBIAN_SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_the_base_comes_through_the_registry_mirror_and_apt_through_the_apt_mirror(jax_env, apt_mirror, mirror_ns):
    dockerfile = (jax_env["folder"] / "Dockerfile").read_text()
    assert f"FROM {mirror_ns}/library/python:3.11-slim-bookworm AS system" in dockerfile
    assert any(p.startswith("/debian/dists/bookworm") for p in apt_mirror.paths), apt_mirror.paths


def test_the_image_runs_the_framework_as_the_host_user_with_a_writable_home(module_engine, jax_env):
    program = ("import os, jax.numpy as jnp; open(os.path.expanduser('~/probe'), 'w').write('ok'); "
               "print(os.getuid(), os.getgid(), float(jnp.arange(4.0).sum()), os.getcwd())")
    out = module_engine.docker("run", "--rm", "--network", "none", jax_env["image"], "python3", "-c", program)
    assert out.stdout.decode().split() == [str(UID), str(UID), "6.0", "/workspace"]


def test_labels_carry_the_plan(module_engine, jax_env):
    labels = json.loads(module_engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}",
                                             jax_env["image"]).stdout)
    assert labels["io.gpuenv.frameworks"].startswith("jax==")
    assert labels["io.gpuenv.cuda-source"] == "none" and labels["io.gpuenv.python"] == "3.11"
    assert labels["io.gpuenv.families"] == "jax" and jax_env["image"].startswith("gpuenv-jax-cpu:")


def secrets_to_look_for(jax_env) -> dict[str, bytes]:
    found = {"netrc password": NETRC_SECRET.encode(), "Jupyter token": jax_env["env"]["JUPYTER_TOKEN"].encode()}
    for path in network.extra_cas():
        body = [line for line in Path(path).read_text().splitlines() if line and not line.startswith("-----")]
        if len(body) > 3:
            found[f"CA {path}"] = body[len(body) // 2].encode()   # a line from the middle of its base64
    return found


def test_no_ca_token_or_credential_sits_in_any_layer_or_the_image_config(module_engine, jax_env):
    wanted = secrets_to_look_for(jax_env)
    assert any(k.startswith("CA ") for k in wanted) or not network.extra_cas()
    wanted["control"] = b"Jupyter never starts open"     # in .gpuenv/jupyter_config.py: the scan must find it
    import subprocess

    hits, scanned = [], 0
    save = subprocess.Popen([module_engine.client, "save", jax_env["image"]], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:     # streamed: one layer in memory at a time
        for member in outer:
            data = outer.extractfile(member).read() if member.isfile() else b""
            if member.name.endswith("layer.tar"):
                scanned += 1
                hits += _scan_layer(member.name, data, wanted)
            else:
                hits += [f"{member.name}: {what}" for what, needle in wanted.items() if needle in data]
    assert save.wait(timeout=900) == 0
    history = module_engine.docker("history", "--no-trunc", jax_env["image"]).stdout
    hits += [f"history: {what}" for what, needle in wanted.items() if needle in history]
    assert any(hit.endswith(": control") for hit in hits), "the scan did not see a file known to be in a layer"
    hits = [hit for hit in hits if not hit.endswith(": control")]
    assert scanned >= 5 and not hits, hits


def _scan_layer(name: str, data: bytes, wanted: dict[str, bytes]) -> list[str]:
    hits = []
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        for member in layer:
            if member.isfile():
                content = layer.extractfile(member).read()
                hits += [f"{name}:{member.name}: {what}" for what, needle in wanted.items() if needle in content]
    return hits


def test_jupyter_answers_its_token_only_and_never_starts_open(module_engine, jax_env):
    name = module_engine.track_container(module_engine.unique("jupyter"))
    token = jax_env["env"]["JUPYTER_TOKEN"]
    module_engine.docker("run", "-d", "--name", name, "-p", "127.0.0.1::8888", "-e", f"JUPYTER_TOKEN={token}",
                         jax_env["image"])
    port = module_engine.docker("port", name, "8888").stdout.decode().split(":")[-1].strip()
    assert _status(port, f"?token={token}", wait=90) == 200
    assert _status(port, "") == 403 and _status(port, "?token=wrong") == 403
    empty = module_engine.docker("run", "--rm", "--network", "none", jax_env["image"], check=False)
    assert empty.returncode != 0 and b"Jupyter needs a token or a password" in empty.stderr


def _status(port: str, query: str, wait: float = 0) -> int:
    deadline = time.monotonic() + wait
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status{query}", timeout=5).status
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_docker_compose_v1_starts_the_generated_compose_file(module_engine, jax_env):
    import shutil
    import subprocess

    folder, compose = jax_env["folder"], shutil.which("docker-compose")
    assert compose, "docker-compose (v1) is missing: scripts/test installs it"
    run = lambda *a: subprocess.run([compose, *a], cwd=folder, capture_output=True, timeout=300)  # noqa: E731
    try:
        up = run("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr.decode()
        token = jax_env["env"]["JUPYTER_TOKEN"]
        assert _status(str(jax_env["port"]), f"?token={token}", wait=90) == 200
        published = run("port", "jupyter", "8888").stdout.decode().strip()
        assert published == f"127.0.0.1:{jax_env['port']}"
    finally:
        run("down", "--volumes", "--remove-orphans")
    assert run("ps", "-q").stdout.strip() == b""


def test_pip_through_the_proxy_fails_without_the_ca_secret(module_engine, jax_env):
    cas = network.extra_cas()
    ca, _ = network.intercepting_ca("pypi.org", cas)
    if ca is None:
        pytest.skip("TLS to pypi.org is not intercepted on this host: there is nothing to prove")
    folder = jax_env["folder"]
    failed = module_engine.docker("build", "--progress=plain", "--no-cache", "-t",
                                  module_engine.track_image(module_engine.unique("noca")), str(folder),
                                  check=False, timeout=900)
    assert failed.returncode != 0 and b"CERTIFICATE_VERIFY_FAILED" in failed.stderr


KEY_TEXT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdwdWVudi10ZXN0LWtleS1ub3QtcmVhbA gpuenv-test"
STANDIN_CUDA = "\n".join([
    "FROM {base}",
    "RUN echo 'deb [signed-by=/usr/share/keyrings/cuda-retired-7fa2af80.gpg] http://deb.debian.org/debian \\",
    "bookworm-backports main' > /etc/apt/sources.list.d/cuda.list \\",
    " && echo 'not a key' > /usr/share/keyrings/cuda-retired-7fa2af80.gpg",
    "",
])


def test_a_legacy_cuda_base_gets_its_system_stage_past_the_key_rotation(module_engine, apt_mirror, mirror_ns,
                                                                         tmp_path):
    path = "nvidia/cuda:9.0-cudnn7-runtime-ubuntu16.04"
    push_standin(module_engine, mirror_ns, path, STANDIN_CUDA.format(base=module_engine.base_image))
    control = module_engine.docker("build", "--progress=plain", "-", check=False, input=(
        f"FROM {mirror_ns}/{path}\nRUN apt-get update\n").encode())
    assert control.returncode != 0 and b"NO_PUBKEY" in control.stderr, "the retired list must break apt-get update"
    before = len(apt_mirror.paths)

    def edit(data: dict) -> None:
        data["network"] = {"registry_mirror": mirror_ns, "apt_mirror": apt_mirror.url}
        data["access"]["ssh"]["authorized_key"] = KEY_TEXT

    folder = generate_copy("tf-cuda9-old-driver", tmp_path / "env", edit)
    assert f"FROM {mirror_ns}/{path} AS system" in (folder / "Dockerfile").read_text()
    tag = module_engine.unique("cuda9-system")
    build(module_engine, folder, tag, "--target", "system")
    assert any(p.startswith("/debian/dists/bookworm") for p in apt_mirror.paths[before:])
    sshd = module_engine.docker("run", "--rm", "--network", "none", tag, "sh", "-c",
                                "command -v sshd; ls /etc/apt/sources.list.d; grep -c " + apt_mirror.url
                                + " /etc/apt/sources.list")
    lines = sshd.stdout.decode().split()
    assert lines[0] == "/usr/sbin/sshd" and "cuda.list" not in lines and int(lines[-1]) >= 1


def test_ssh_mode_logs_in_with_a_key_only_and_runs_python(module_engine, apt_mirror, mirror_ns, python_standin,
                                                          tmp_path):
    import shutil
    import subprocess

    assert shutil.which("ssh") and shutil.which("ssh-keygen"), "openssh-client is needed for this test"
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()

    def edit(data: dict) -> None:
        data["network"] = {"registry_mirror": mirror_ns, "apt_mirror": apt_mirror.url}
        data["access"] = {"ssh": {"port": port, "authorized_key": str(key) + ".pub"}}

    folder = generate_copy("jax-cpu", tmp_path / "env", edit)
    image = module_engine.unique("ssh")
    build(module_engine, folder, image)
    (folder / ".env").write_text((folder / ".env").read_text().replace("GPUENV_IMAGE=", f"GPUENV_IMAGE={image}\n#"))
    compose = lambda *a: subprocess.run([shutil.which("docker-compose"), *a], cwd=folder,  # noqa: E731
                                        capture_output=True, timeout=300)
    ssh = ["ssh", "-p", str(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
    try:
        assert compose("up", "-d", "--no-build").returncode == 0
        answer = _retry(lambda: subprocess.run(ssh + ["-i", str(key), "gpuenv@127.0.0.1", "python3", "-c",
                                                      "'import os, jax; print(os.getuid(), jax.__name__)'"],
                                               capture_output=True, timeout=30), 60)
        assert answer.stdout.decode().split() == [str(UID), "jax"], answer.stderr.decode()
        stranger = tmp_path / "stranger"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
        refused = subprocess.run(ssh + ["-i", str(stranger), "gpuenv@127.0.0.1", "true"], capture_output=True)
        assert refused.returncode == 255 and b"Permission denied" in refused.stderr
    finally:
        compose("down", "--volumes")


def _retry(attempt, seconds: float):
    deadline = time.monotonic() + seconds
    while True:
        result = attempt()
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(2)
