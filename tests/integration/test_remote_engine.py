"""A server reached over ssh, as gpuenv users reach theirs: DOCKER_HOST=ssh://HOST and docker contexts.

The server is a second dockerd on this machine in its own network namespace (scripts/second_engine.py,
with a bridge of its own there so that ports can be published on that namespace's 127.0.0.1) and a real
OpenSSH sshd listening on 127.0.0.1:22 inside that namespace, key auth only with a throwaway key. The
sshd runs in a mount namespace of its own where /run/docker.sock is the second engine's socket, so
`docker system dial-stdio` there reaches that engine as it would on a real server. The client reaches
the sshd through an ssh_config entry whose ProxyCommand enters the namespace (nsenter + nc); an `ssh`
wrapper first on PATH points ssh at that config (ssh reads ~/.ssh/config from the passwd entry, not
$HOME), so docker's own ssh and gpuenv's tunnel use the same entry.

The environment's image is built here (the offline server cannot reach a package index) and moved
there with docker save | docker load, as a lab would; `gpuenv up` over ssh then finds it on that
engine, starts Jupyter there and reaches it through its tunnel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import second_engine  # noqa: E402

pytestmark = pytest.mark.docker

ALIAS = "gpuenv-remote-test"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SPEC = 'name = "{name}"\npython = "3.11"\n\n[gpu]\ndevices = "none"\n\n[access.jupyter]\n'


@dataclass
class Server:
    engine: second_engine.SecondEngine
    env: dict[str, str]            # PATH (the ssh wrapper), DOCKER_CONFIG (contexts), XDG_STATE_HOME
    sshd: subprocess.Popen


def gpuenv(*args: str, cwd: Path, env: dict[str, str], timeout: int = 600, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**env, **extra})


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None and not Path(t).exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: scripts/setup.sh ensure_tools installs them")


def _sshd(root: Path, engine: second_engine.SecondEngine) -> subprocess.Popen:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True)
    (root / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort 22\nHostKey {root}/host_key\nAuthorizedKeysFile {root}/authorized_keys\n"
        f"PidFile {root}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)         # sshd's privilege-separation folder
    inner = f"mount --bind {engine.socket} /run/docker.sock && exec /usr/sbin/sshd -D -e -f {root}/sshd_config"
    log = open(root / "sshd.log", "wb")
    return subprocess.Popen(["nsenter", f"--net={second_engine.net_namespace(engine)}", "unshare", "--mount",
                             "--propagation", "private", "sh", "-c", inner], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _client(root: Path, engine: second_engine.SecondEngine) -> dict[str, str]:
    """The client side: a throwaway key, an ssh_config entry for ALIAS, the ssh wrapper, docker contexts."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "key")], check=True)
    (root / "authorized_keys").write_text((root / "key.pub").read_text())
    (root / "ssh_config").write_text(
        f"Host {ALIAS}\n    HostName 127.0.0.1\n    User root\n    IdentityFile {root}/key\n    IdentitiesOnly yes\n"
        f"    BatchMode yes\n    UserKnownHostsFile {root}/known_hosts\n    StrictHostKeyChecking accept-new\n"
        f"    ProxyCommand nsenter --net={second_engine.net_namespace(engine)} nc %h %p\n")
    (root / "bin").mkdir()
    wrapper = root / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {root}/ssh_config "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env.update(PATH=f"{root}/bin:{os.environ['PATH']}", DOCKER_CONFIG=str(root / "docker-config"),
               XDG_STATE_HOME=str(root / "state"), GPUENV_DOCKER=os.environ.get("GPUENV_DOCKER", "/usr/bin/docker"),
               DOCKER_BUILDKIT="1")
    client = env["GPUENV_DOCKER"]
    for name, host in (("here", "unix:///var/run/docker.sock"), ("lab2", f"ssh://{ALIAS}"),
                       ("gone", "ssh://nobody@127.0.0.1:1")):
        subprocess.run([client, "context", "create", name, "--docker", f"host={host}"], env=env, check=True,
                       capture_output=True)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _need("/usr/sbin/sshd", "nc", "nsenter", "ssh-keygen")
    root = tmp_path_factory.mktemp("remote-engine")
    with second_engine.running(bridge=True, stop_timeout=10) as engine:
        env = _client(root, engine)
        sshd = _sshd(root, engine)
        try:
            deadline = time.monotonic() + 20
            while subprocess.run([env["GPUENV_DOCKER"], "version"], env={**env, "DOCKER_HOST": f"ssh://{ALIAS}"},
                                 capture_output=True).returncode != 0:
                assert sshd.poll() is None and time.monotonic() < deadline, (root / "sshd.log").read_text()
                time.sleep(0.3)
            yield Server(engine, env, sshd)
        finally:
            os.killpg(sshd.pid, 15)
            sshd.wait(timeout=30)


@pytest.fixture(scope="module")
def image(module_engine, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The environment's image, built on this engine and loaded into the server's (its base too)."""
    folder = tmp_path_factory.mktemp("built-here")
    name = f"remote-{uuid.uuid4().hex[:8]}"
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name))
    built = gpuenv("build", "--json", cwd=folder, env=server.env)
    assert built.returncode == 0, built.stderr[-2000:]
    tag = module_engine.track_image(json.loads(built.stdout)["image"])
    bases = [b for b in ("gpuenv-base/debian:bookworm", module_engine.base_image)
             if module_engine.docker("image", "inspect", b, check=False).returncode == 0]
    saved = subprocess.Popen([module_engine.client, "save", tag, *bases], stdout=subprocess.PIPE)
    loaded = subprocess.run([module_engine.client, "-H", server.engine.host, "load"], stdin=saved.stdout,
                            capture_output=True, text=True)
    assert saved.wait() == 0 and loaded.returncode == 0, loaded.stderr
    yield name


def _get(url: str) -> int:
    try:
        with OPENER.open(url, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def test_up_over_ssh_with_a_tunnel_then_ls_across_hosts_then_down(module_engine, server: Server, image: str,
                                                                  tmp_path: Path) -> None:
    there, here = tmp_path / "there", tmp_path / "here"
    there.mkdir()
    (there / "gpuenv.toml").write_text(SPEC.format(name=image))
    remote = {"DOCKER_HOST": f"ssh://{ALIAS}"}
    up = gpuenv("up", "--tunnel", "--json", cwd=there, env=server.env, **remote)
    tunnel_pid = 0
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        data = json.loads(up.stdout)
        assert data["built"] is False and data["engine"] == f"ssh://{ALIAS}"    # the image found on that engine
        tunnel = data["tunnel"]
        tunnel_pid = tunnel["pid"]
        assert tunnel["open"] is True and _alive(tunnel_pid)
        forward = tunnel["forwards"][0]
        remote_port = next(p["port"] for p in data["ports"] if p["service"] == "jupyter")
        assert forward["service"] == "jupyter" and forward["remote"] == remote_port
        assert tunnel["command"].startswith("ssh -N") and tunnel["command"].endswith(f"-- {ALIAS}")
        assert f"-L 127.0.0.1:{forward['local']}:127.0.0.1:{remote_port}" in tunnel["command"]
        url = data["access"]["jupyter_url"]                     # the tunnel's local port, with the token
        assert url.startswith(f"http://127.0.0.1:{forward['local']}/lab?token=")
        token = url.split("token=", 1)[1]
        status = f"http://127.0.0.1:{forward['local']}/api/status"
        assert _get(f"{status}?token={token}") == 200 and _get(status) == 403
        names = server.engine.docker("ps", "--format", "{{.Names}}").stdout.split()   # started there, not here
        assert data["containers"] and set(data["containers"]) <= set(names)
        assert module_engine.docker("ps", "-q", "--filter", f"name={data['containers'][0]}").stdout.strip() == b""
        # the published port is on the server's 127.0.0.1 only: nothing listens on it in this namespace
        # unless the tunnel took the same number here
        here.mkdir()
        (here / "gpuenv.toml").write_text(SPEC.format(name=image))
        local = gpuenv("up", "--json", cwd=here, env=server.env)
        assert local.returncode == 0, local.stderr[-3000:]
        assert json.loads(local.stdout).get("tunnel") is None

        listed = gpuenv("ls", "--hosts", "lab2,here,gone", "--json", cwd=tmp_path, env=server.env)
        assert listed.returncode == 0, listed.stderr
        hosts = {h["host"]: h for h in json.loads(listed.stdout)["hosts"]}
        assert list(hosts) == ["lab2", "here", "gone"]
        assert [e["name"] for e in hosts["lab2"]["environments"]] == [image]
        assert image in [e["name"] for e in hosts["here"]["environments"]]
        assert hosts["lab2"]["error"] is None and hosts["here"]["error"] is None
        assert hosts["gone"]["environments"] == [] and "Connection refused" in hosts["gone"]["error"]
        table = gpuenv("ls", "--all-hosts", cwd=tmp_path, env=server.env)
        assert table.returncode == 0 and "gone (ssh://nobody@127.0.0.1:1): no answer" in table.stdout
        # which server has a free GPU now: each host's GPUs seen on that host (through a container there for
        # the ssh one); neither has a GPU here, and each says why; the dead one is a line
        found = gpuenv("gpus", "--hosts", "lab2,here,gone", "--json", cwd=tmp_path, env=server.env)
        assert found.returncode == 0, found.stderr
        seen = {h["host"]: h for h in json.loads(found.stdout)["hosts"]}
        assert seen["lab2"]["error"] is None and seen["lab2"]["survey"]["gpus"] == []
        assert seen["lab2"]["survey"]["where"].startswith("the engine's host, through a container of")
        assert "nvidia-smi" in seen["lab2"]["survey"]["error"]
        assert seen["here"]["survey"]["where"] == "this host"
        assert seen["gone"]["survey"] is None and "Connection refused" in seen["gone"]["error"]
        assert server.engine.docker("ps", "-aq", "--filter", "label=org.gpuenv.probe=1").stdout.strip() == ""
        bad = gpuenv("ls", "--hosts", "lab2,nope", cwd=tmp_path, env=server.env)
        assert bad.returncode == 2 and "no docker context named nope" in bad.stderr and "lab2" in bad.stderr

        down_local = gpuenv("down", cwd=here, env=server.env)
        assert down_local.returncode == 0, down_local.stderr
        down = gpuenv("down", "--json", cwd=there, env=server.env, **remote)
        assert down.returncode == 0, down.stderr
        assert f"ssh tunnel (pid {tunnel_pid})" in json.loads(down.stdout)["removed"]
        deadline = time.monotonic() + 10
        while _alive(tunnel_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(tunnel_pid)
        assert not list((Path(server.env["XDG_STATE_HOME"]) / "gpuenv" / "tunnels").glob("*.json"))
        assert server.engine.docker("ps", "-aq").stdout.strip() == ""
    finally:
        if tunnel_pid and _alive(tunnel_pid):
            os.kill(tunnel_pid, 15)
        if here.exists():
            gpuenv("down", cwd=here, env=server.env)
        for c in module_engine.docker("ps", "-aq", "--filter", f"label=io.gpuenv.name={image}").stdout.split():
            module_engine.docker("rm", "-f", c.decode(), check=False)


def test_up_over_ssh_without_tunnel_waits_through_one_and_shows_its_command(server: Server, image: str,
                                                                          tmp_path: Path) -> None:
    (tmp_path / "gpuenv.toml").write_text(SPEC.format(name=image))
    remote = {"DOCKER_HOST": f"ssh://{ALIAS}"}
    try:
        up = gpuenv("up", "--json", cwd=tmp_path, env=server.env, **remote)
        assert up.returncode == 0, up.stderr[-3000:]
        tunnel = json.loads(up.stdout)["tunnel"]
        assert tunnel["open"] is False and tunnel["pid"] is None and tunnel["command"].startswith("ssh -N")
        assert not list((Path(server.env["XDG_STATE_HOME"]) / "gpuenv" / "tunnels").glob("*.json"))
        ps = subprocess.run(["pgrep", "-f", tunnel["command"].split("-L ", 1)[1]], capture_output=True, text=True)
        assert ps.stdout.strip() == ""                          # the wait's tunnel is closed again
        shown = gpuenv("up", cwd=tmp_path, env=server.env, **remote)    # already running: the text form
        assert shown.returncode == 0 and "tunnel   ssh -N" in shown.stdout and "gpuenv up --tunnel" in shown.stdout
    finally:
        gpuenv("down", cwd=tmp_path, env=server.env, **remote)
    assert server.engine.docker("ps", "-aq").stdout.strip() == ""


def test_tunnel_on_an_engine_not_reached_over_ssh_is_refused(server: Server, tmp_path: Path) -> None:
    (tmp_path / "gpuenv.toml").write_text(SPEC.format(name="no-tunnel-here"))
    run = gpuenv("up", "--tunnel", cwd=tmp_path, env=server.env)
    assert run.returncode == 2 and "--tunnel needs an engine reached over ssh" in run.stderr
    assert "Traceback" not in run.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["gpuenv.toml"]
