"""The files `gpuenv generate` writes, started by the clients people use instead of gpuenv: docker-compose
v1 (Debian's 1.29, as PyCharm runs it) and the Dev Containers CLI (npm @devcontainers/cli, what VS Code
runs), on this machine's real engine, which cannot pull the planned base (no registry) and has no GPU
(GPU mode none). Run as UID 4321 (sudo's SUDO_UID) with its own HOME, as test_up.py does.

One environment, JAX on the CPU with JupyterLab and sshd (test_access.py's, so the engine's build cache
serves both), is generated once; its image is built by the folder's own
build script (no gpuenv: the CA as a BuildKit secret), which `gpuenv build` then finds up to date.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
UID = 4321
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# compose v1 runs the first `docker` on PATH: the 28.x CLI here has no buildx, Debian's 20.10 builds with
# BuildKit when asked (docs: /work/shared/ENVIRONMENT.md)
CLIENT_PATH = "/usr/bin:" + os.environ.get("PATH", "")
NODE_CLIENTS = Path(os.environ.get("GPUENV_TEST_NODE_CLIENTS") or ROOT / ".node")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(argv: list[str], cwd: Path, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    full = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID), "PATH": CLIENT_PATH,
            "DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1", **env}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


def gpuenv(*args: str, cwd: Path, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "gpuenv", *args], cwd, env, timeout)


def compose(folder: Path, env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    found = shutil.which("docker-compose", path=CLIENT_PATH)
    assert found, "docker-compose (v1) is missing: scripts/test installs it"
    return run([found, *args], folder, env, timeout)


def devcontainer(folder: Path, env: dict, verb: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`devcontainer VERB --workspace-folder FOLDER ... ARGS` (the CLI's options before a command's words)."""
    cli = NODE_CLIENTS / "node_modules" / ".bin" / "devcontainer"
    assert cli.is_file(), f"no {cli}: scripts/test installs @devcontainers/cli (ensure_node_clients)"
    compose_cli = shutil.which("docker-compose", path=CLIENT_PATH) or "docker-compose"
    return run([str(cli), verb, "--workspace-folder", str(folder), "--docker-path", "/usr/bin/docker",
                "--docker-compose-path", compose_cli, *args], folder, env, timeout)


def settings(folder: Path) -> dict[str, str]:
    lines = (folder / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def answers(url: str, seconds: float = 120) -> int:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with OPENER.open(url, timeout=10) as reply:
                return reply.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            if time.monotonic() > deadline:
                return 0
            time.sleep(2)


def host_key(port: int, seconds: float = 90) -> str:
    """sshd's ed25519 host key on 127.0.0.1:PORT, as ssh-keyscan reads it."""
    deadline = time.monotonic() + seconds
    while True:
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"], capture_output=True,
                              text=True, timeout=30)
        keys = [line.split(None, 1)[1] for line in scan.stdout.splitlines() if line and not line.startswith("#")]
        if keys:
            return keys[0]
        assert time.monotonic() < deadline, f"no sshd answered on {port}: {scan.stderr}"
        time.sleep(2)


def compose_ports(folder: Path, service: str) -> list[str]:
    return yaml.safe_load((folder / "compose.yaml").read_text())["services"][service]["ports"]


def remove_devcontainer(engine, folder: Path) -> None:
    """What `devcontainer up` started (the CLI has no `down`): its containers, by the label it sets."""
    ids = engine.docker("ps", "-aq", "--filter", f"label=devcontainer.local_folder={folder}").stdout.decode().split()
    if ids:
        engine.docker("rm", "-f", *ids, check=False)


def image_id(engine, ref: str) -> str:
    return engine.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.decode().strip()


SPEC = """\
name = "{name}"
python = "3.11"
frameworks = ["jax"]

[gpu]
devices = "none"

[access.jupyter]
mode = "lab"
port = {jupyter}

[access.ssh]
port = {ssh}
authorized_key = "auto"
"""


@pytest.fixture(scope="module")
def env_home(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state"),
            "XDG_CONFIG_HOME": str(home / ".config")}


@pytest.fixture(scope="module")
def generated(module_engine, env_home, tmp_path_factory) -> dict:
    name = module_engine.unique("files")
    folder = tmp_path_factory.mktemp("files-project")
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name, jupyter=free_port(), ssh=free_port()))
    os.chown(folder, UID, UID)
    done = gpuenv("generate", "--json", cwd=folder, env=env_home)
    data = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    image = settings(folder).get("GPUENV_IMAGE", "") if (folder / ".env").is_file() else ""
    yield {"folder": folder, "name": name, "run": done, "data": data, "image": image}
    gpuenv("down", "--volumes", cwd=folder, env=env_home, timeout=300)
    compose(folder, env_home, "down", "--volumes", "--remove-orphans")
    remove_devcontainer(module_engine, folder)
    for cid in module_engine.docker("ps", "-aq", "--filter", f"name={name}").stdout.decode().split():
        module_engine.docker("rm", "-f", cid, check=False)
    for volume in module_engine.docker("volume", "ls", "-q", "--filter", f"name={name}").stdout.decode().split():
        module_engine.docker("volume", "rm", "-f", volume, check=False)
    for ref in module_engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}",
                                    f"gpuenv-{name}").stdout.decode().split():
        module_engine.docker("image", "rm", "-f", ref, check=False)


@pytest.fixture(scope="module")
def built(generated, env_home) -> dict:
    """The image built by the folder's own script (compose's header and devcontainer.json's
    initializeCommand run it): BuildKit, the CA bundle .env names as a secret; no gpuenv."""
    assert generated["run"].returncode == 0, generated["run"].stderr[-3000:]
    folder = generated["folder"]
    Path(env_home["HOME"], ".netrc").write_text(f"machine index.example.invalid login me password {NETRC_SECRET}\n")
    done = run(["sh", str(folder / ".devcontainer" / "build-image.sh")], folder, env_home, timeout=2400)
    assert done.returncode == 0, done.stderr[-4000:]
    return generated


NETRC_SECRET = "netrc-password-of-the-build-script-test"


def layer_hits(engine, image: str, wanted: dict[str, bytes]) -> list[str]:
    """Which of `wanted` appear in a file of any layer of `image`, its config or its history."""
    save = subprocess.Popen([engine.client, "save", image], stdout=subprocess.PIPE)
    hits = []
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:       # streamed: one layer at a time
        for member in outer:
            data = outer.extractfile(member).read() if member.isfile() else b""
            files = tarfile.open(fileobj=io.BytesIO(data)) if member.name.endswith("layer.tar") else None
            for inner in (files or ()):
                content = files.extractfile(inner).read() if inner.isfile() else b""
                hits += [f"{member.name}:{inner.name}: {what}" for what, text in wanted.items() if text in content]
            if files is None:
                hits += [f"{member.name}: {what}" for what, text in wanted.items() if text in data]
    assert save.wait(timeout=900) == 0
    history = engine.docker("history", "--no-trunc", image).stdout
    return hits + [f"history: {what}" for what, text in wanted.items() if text in history]


# --- 1. generate writes what up builds ------------------------------------------------------------------

def test_generate_names_the_base_built_here_and_up_builds_nothing_more(built, env_home, module_engine):
    folder = built["folder"]
    dockerfile = (folder / "Dockerfile").read_text()
    assert "FROM gpuenv-base/debian:bookworm AS system" in dockerfile, dockerfile[:1500]
    memo = json.loads((Path(env_home["XDG_CACHE_HOME"]) / "gpuenv" / "bases.json").read_text())
    assert any(row["use"] == "gpuenv-base/debian:bookworm" for row in memo.values()), memo
    # `gpuenv build` plans what generate wrote: the image the folder's script built is the one it wants
    again = gpuenv("build", "--json", cwd=folder, env=env_home)
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(again.stdout)
    assert data["image"] == built["image"] and data["built"] is False, data
    assert module_engine.docker("image", "inspect", built["image"], check=False).returncode == 0


def test_docker_compose_v1_starts_the_generated_files_and_jupyter_answers_on_the_written_port(built, env_home):
    folder, token = built["folder"], settings(built["folder"])["JUPYTER_TOKEN"]
    port = compose_ports(folder, "jupyter")[0].split(":")[1]
    try:
        up = compose(folder, env_home, "up", "-d")
        assert up.returncode == 0, up.stderr[-3000:]
        assert answers(f"http://127.0.0.1:{port}/api/status?token={token}") == 200
        assert built["data"]["access"]["jupyter_url"].startswith(f"http://127.0.0.1:{port}/lab?token={token}")
    finally:
        compose(folder, env_home, "down")


def test_a_moved_port_is_written_where_compose_starts_it(built, env_home):
    folder = built["folder"]
    spec_port = int(compose_ports(folder, "jupyter")[0].split(":")[1])
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # the last test's connections may linger
    holder.bind(("127.0.0.1", spec_port))
    holder.listen(1)
    try:
        up = gpuenv("up", "--json", cwd=folder, env=env_home)
        assert up.returncode == 0, up.stderr[-3000:]
        moved = next(p for p in json.loads(up.stdout)["ports"] if p["service"] == "jupyter")
        assert moved["wanted"] == spec_port and moved["port"] != spec_port, moved
        assert compose_ports(folder, "jupyter") == [f"127.0.0.1:{moved['port']}:8888"]
        gpuenv("down", cwd=folder, env=env_home, timeout=300)
        token = settings(folder)["JUPYTER_TOKEN"]
        assert compose(folder, env_home, "up", "-d").returncode == 0
        assert answers(f"http://127.0.0.1:{moved['port']}/api/status?token={token}") == 200
    finally:
        holder.close()
        compose(folder, env_home, "down")
        gpuenv("down", cwd=folder, env=env_home, timeout=300)
    again = gpuenv("generate", cwd=folder, env=env_home)          # the spec's port again, once it is free
    assert again.returncode == 0 and compose_ports(folder, "jupyter") == [f"127.0.0.1:{spec_port}:8888"]


def test_the_build_script_leaves_no_ca_token_or_netrc_in_any_layer(built, module_engine):
    """The script gives the CA bundle and ~/.netrc to the build as BuildKit secrets: neither, nor the
    Jupyter token, is in a layer, the image config or its history (a file known to be there is found)."""
    from gpuenv.host import network

    wanted = {"netrc password": NETRC_SECRET.encode(),
              "Jupyter token": settings(built["folder"])["JUPYTER_TOKEN"].encode(),
              "control": b"Jupyter never starts open"}        # in /etc/jupyter/jupyter_server_config.py
    for path in network.extra_cas():                          # the TLS-inspecting proxy's CA, when there is one
        body = [line for line in Path(path).read_text().splitlines() if line and not line.startswith("-----")]
        if len(body) > 3:
            wanted[f"CA {path}"] = body[len(body) // 2].encode()
    hits = layer_hits(module_engine, built["image"], wanted)
    assert any(hit.endswith(": control") for hit in hits), "the scan did not see a file known to be in a layer"
    assert [hit for hit in hits if not hit.endswith(": control")] == []


# --- 2. the Dev Containers CLI --------------------------------------------------------------------------

def test_devcontainer_up_and_exec_run_as_the_user_in_the_writable_workspace_without_rebuilding(
        built, env_home, module_engine):
    folder = built["folder"]
    before = image_id(module_engine, built["image"])
    try:
        up = devcontainer(folder, env_home, "up")
        assert up.returncode == 0, (up.stdout[-3000:], up.stderr[-3000:])
        outcome = json.loads(up.stdout.strip().splitlines()[-1])
        assert outcome["outcome"] == "success", outcome
        started = module_engine.docker("inspect", "--format", "{{.Image}}", outcome["containerId"]).stdout.decode()
        assert started.strip() == before           # gpuenv's own image, not one the CLI built or derived
        assert image_id(module_engine, built["image"]) == before   # and its tag was not built over
        probe = devcontainer(folder, env_home, "exec", "sh", "-c",
                             'id -u; id -g; pwd; touch made-in-devcontainer; echo "$HOME"')
        assert probe.returncode == 0, probe.stderr[-2000:]
        uid, gid, cwd, home = probe.stdout.split()
        assert (int(uid), int(gid), cwd, home) == (UID, UID, "/workspace", "/home/gpuenv")
        made = folder / "made-in-devcontainer"
        assert made.is_file() and (made.stat().st_uid, made.stat().st_gid) == (UID, UID)
    finally:
        remove_devcontainer(module_engine, folder)


# --- 3. a host without a GPU: files that ask for one start anyway ---------------------------------------

TORCH = """\
name = "{name}"
frameworks = ["torch>=2.4"]

[access.jupyter]
mode = "lab"
port = {port}
"""


def test_a_gpu_environment_written_on_a_host_without_gpu_starts_with_compose_and_the_cli(
        built, env_home, module_engine, tmp_path):
    """torch plans a GPU; this host has none (GPU mode none). compose.yaml then asks for no GPU and
    devcontainer.json for an "optional" one, so both start; the plan's request would stop them (control).
    The image is the one built above (it has JupyterLab; torch itself is not needed to start)."""
    folder = tmp_path / "torch"
    folder.mkdir()
    (folder / "gpuenv.toml").write_text(TORCH.format(name=built["name"] + "-gpu", port=free_port()))
    os.chown(folder, UID, UID)
    done = gpuenv("generate", "--json", cwd=folder, env=env_home)
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout)
    assert (said["gpu_mode"], said["gpu_requested"]) == ("none", False), said
    service = yaml.safe_load((folder / "compose.yaml").read_text())["services"]["jupyter"]
    assert "deploy" not in service and "runtime" not in service
    assert json.loads((folder / ".devcontainer" / "devcontainer.json").read_text())["hostRequirements"] == {
        "gpu": "optional"}
    text = (folder / ".env").read_text()
    (folder / ".env").write_text(text.replace("GPUENV_IMAGE=", f"GPUENV_IMAGE={built['image']}\n#GPUENV_IMAGE="))
    port, token = compose_ports(folder, "jupyter")[0].split(":")[1], settings(folder)["JUPYTER_TOKEN"]
    try:
        assert compose(folder, env_home, "up", "-d", "--no-build").returncode == 0
        assert answers(f"http://127.0.0.1:{port}/api/status?token={token}") == 200
        compose(folder, env_home, "down")
        up = devcontainer(folder, env_home, "up")
        assert up.returncode == 0 and json.loads(up.stdout.strip().splitlines()[-1])["outcome"] == "success", \
            up.stderr[-3000:]
        remove_devcontainer(module_engine, folder)
        # control: the request of a host with a GPU, here, stops the container
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}}
        document = yaml.safe_load((folder / "compose.yaml").read_text())
        document["services"]["jupyter"] = service
        (folder / "compose.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        failed = compose(folder, env_home, "up", "-d", "--no-build")
        assert failed.returncode != 0 and "could not select device driver" in failed.stderr, failed.stderr[-2000:]
    finally:
        compose(folder, env_home, "down", "--volumes", "--remove-orphans")
        remove_devcontainer(module_engine, folder)


# --- 4. SSH: one host key and one HOME, however it was started; the tools Remote-SSH needs --------------

def test_the_host_key_and_home_are_the_same_for_compose_the_cli_and_up(built, env_home, module_engine):
    folder = built["folder"]
    ssh_port = int(compose_ports(folder, "ssh")[0].split(":")[1])
    marker = "history-kept-" + built["name"]
    try:
        assert compose(folder, env_home, "up", "-d").returncode == 0
        first = host_key(ssh_port)
        wrote = compose(folder, env_home, "exec", "-T", "ssh", "sh", "-c", f'echo {marker} >> "$HOME/.bash_history"')
        assert wrote.returncode == 0, wrote.stderr
        compose(folder, env_home, "down")                  # the containers go; the named volumes stay

        up = devcontainer(folder, env_home, "up")
        assert up.returncode == 0, up.stderr[-3000:]
        assert host_key(ssh_port) == first
        kept = devcontainer(folder, env_home, "exec", "cat", "/home/gpuenv/.bash_history")
        assert marker in kept.stdout, (kept.stdout, kept.stderr)
        remove_devcontainer(module_engine, folder)

        started = gpuenv("up", "--json", cwd=folder, env=env_home)
        assert started.returncode == 0, started.stderr[-3000:]
        assert host_key(ssh_port) == first
        kept = gpuenv("exec", "cat", "/home/gpuenv/.bash_history", cwd=folder, env=env_home)
        assert marker in kept.stdout, (kept.stdout, kept.stderr)
        gpuenv("down", cwd=folder, env=env_home, timeout=300)
        gpuenv("up", "--json", cwd=folder, env=env_home)              # re-created by gpuenv: HOME is still there
        kept = gpuenv("exec", "cat", "/home/gpuenv/.bash_history", cwd=folder, env=env_home)
        assert marker in kept.stdout, (kept.stdout, kept.stderr)
    finally:
        compose(folder, env_home, "down")
        remove_devcontainer(module_engine, folder)
        gpuenv("down", "--volumes", cwd=folder, env=env_home, timeout=300)
    left = module_engine.docker("volume", "ls", "-q", "--filter", f"name={built['name']}").stdout.decode().split()
    assert left == [], left                               # down --volumes removes HOME and the host keys


def test_the_image_has_what_vscode_remote_ssh_installs_its_server_with(built, module_engine):
    check = module_engine.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", built["image"], "-c",
                                 "for t in bash tar curl ps; do command -v $t >/dev/null || echo missing $t; done; "
                                 "ldconfig -p | grep -q 'libstdc++.so.6' || echo missing libstdc++")
    assert check.returncode == 0 and check.stdout.decode().strip() == "", check.stdout.decode()


def test_devcontainer_up_builds_a_missing_image_through_its_initialize_command(built, env_home, module_engine):
    """On a host where nothing is built yet, `devcontainer up` alone works: initializeCommand runs the
    folder's build script (the CA bundle as a BuildKit secret), which tags the image gpuenv's tag, and
    the container runs it. (Last in the module: it removes the image the others use.)"""
    folder, image = built["folder"], built["image"]
    module_engine.docker("image", "rm", image)
    try:
        up = devcontainer(folder, env_home, "up", timeout=2400)
        assert up.returncode == 0, (up.stdout[-3000:], up.stderr[-3000:])
        assert f"building {image}" in up.stdout + up.stderr
        outcome = json.loads(up.stdout.strip().splitlines()[-1])
        started = module_engine.docker("inspect", "--format", "{{.Image}}", outcome["containerId"]).stdout.decode()
        assert started.strip() == image_id(module_engine, image)
        labels = json.loads(module_engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}",
                                                 image).stdout)
        assert labels["org.opencontainers.image.title"] == built["name"]
    finally:
        remove_devcontainer(module_engine, folder)


def test_generate_still_writes_the_files_when_no_base_can_be_had_here(env_home, tmp_path):
    """mxnet-cu90 needs the system CUDA of an nvidia/cuda image: no registry here, and no base built from
    the apt mirror can stand in. `up` refuses; `generate` writes the plan's files, for a host that has
    the base, and says why (exit 0)."""
    folder = tmp_path / "mx"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "mxnet-cu90" / "gpuenv.toml", folder / "gpuenv.toml")
    done = gpuenv("generate", cwd=folder, env=env_home, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FROM nvidia/cuda:9.0-runtime-ubuntu16.04 AS system" in (folder / "Dockerfile").read_text()
    assert "cannot be pulled" in done.stderr and "the files name the planned base" in done.stderr
