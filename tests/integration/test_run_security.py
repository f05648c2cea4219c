"""`gpuenv up` on a shared server, seen by its other users: no secret on any command line while it runs
(an unprivileged UID reads every /proc/PID/cmdline and environ it can, in a tight loop, during the whole
`up`), a missing workspace made as the user it is for, and no system folder mounted. JAX on the CPU on
this machine's real engine, run as UID 4321 (sudo's SUDO_UID), as tests/integration/test_access.py does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

UID = 4321
NOBODY = 65534
# Runs as NOBODY: every readable cmdline and environ, until SIGTERM; then what it saw, as JSON on stdout.
POLLER = r"""
import json, os, signal, sys
seen, state = set(), {"stop": False, "rounds": 0}
signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
print("ready", flush=True)
while not state["stop"]:
    for pid in os.listdir("/proc"):
        for part in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (pid, part), "rb") as f:
                    seen.add(f.read().replace(b"\0", b" ").decode("latin-1"))
            except OSError:
                pass
    state["rounds"] += 1
json.dump({"uid": os.getuid(), "rounds": state["rounds"], "seen": sorted(seen)}, sys.stdout)
"""


def gpuenv(*args: str, cwd: Path, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    full = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID), **env}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_home(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state")}


def start_poller() -> subprocess.Popen:
    poller = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               "/usr/bin/python3", "-c", POLLER], cwd="/", stdout=subprocess.PIPE, text=True)
    assert poller.stdout is not None and poller.stdout.readline().strip() == "ready"
    return poller


def stop_poller(poller: subprocess.Popen) -> dict:
    poller.send_signal(signal.SIGTERM)
    out, _ = poller.communicate(timeout=120)
    return json.loads(out)


def env_file_values(folder: Path) -> dict:
    lines = (folder / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.fixture(scope="module")
def watched_up(module_engine, tmp_path_factory):
    """`gpuenv up` of Jupyter and the kernel gateway, watched by NOBODY; its workspace does not exist yet."""
    name = module_engine.unique("runsec")
    folder = tmp_path_factory.mktemp("runsec-project")
    (folder / "gpuenv.toml").write_text(f"""\
name = "{name}"
python = "3.11"
frameworks = ["jax"]

[gpu]
devices = "none"

[access.jupyter]
port = {free_port()}

[access.gateway]
port = {free_port()}

[workspace]
host = "work/new"
""")
    os.chown(folder, UID, UID)
    env = isolated_home(tmp_path_factory)
    poller = start_poller()
    try:
        run = gpuenv("up", "--json", cwd=folder, env=env)
    finally:
        watched = stop_poller(poller)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    yield {"folder": folder, "env": env, "run": run, "data": data, "watched": watched}
    gpuenv("down", "--volumes", cwd=folder, env=env, timeout=300)
    for cid in module_engine.docker("ps", "-aq", "--filter", f"name={name}").stdout.decode().split():
        module_engine.docker("rm", "-f", "-v", cid, check=False)
    for ref in module_engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}",
                                    f"gpuenv-{name}").stdout.decode().split():
        module_engine.docker("image", "rm", "--force", ref, check=False)


@pytest.fixture
def watched(watched_up):
    assert watched_up["run"].returncode == 0, watched_up["run"].stderr[-4000:]
    return watched_up


def test_another_user_never_sees_a_token_on_a_command_line_during_up(watched):
    tokens = env_file_values(watched["folder"])
    secrets = [tokens["JUPYTER_TOKEN"], tokens["GPUENV_GATEWAY_TOKEN"]]
    assert all(len(s) >= 32 for s in secrets)
    seen = watched["watched"]
    assert seen["uid"] == NOBODY and seen["rounds"] > 10
    leaked = [text[:300] for text in seen["seen"] for secret in secrets if secret in text]
    assert leaked == []
    # the poller did see the `docker run`s, so a token on them would have been caught
    runs = [text for text in seen["seen"] if " run " in text and watched["data"]["project"] in text]
    assert len(runs) >= 2 and all("--env-file" in text for text in runs), runs


def test_up_of_the_defaults_warns_of_nothing(watched):
    assert "warning:" not in watched["run"].stderr


def test_the_environment_reaches_the_container_from_the_file(watched):
    tokens = env_file_values(watched["folder"])
    run = gpuenv("exec", "--", "sh", "-c", "echo $JUPYTER_TOKEN", cwd=watched["folder"], env=watched["env"])
    assert run.returncode == 0 and run.stdout.strip() == tokens["JUPYTER_TOKEN"], run.stderr
    assert "token=" + tokens["JUPYTER_TOKEN"] in watched["data"]["access"]["jupyter_url"]


def test_a_missing_workspace_is_made_by_gpuenv_as_the_user(watched):
    folder = watched["folder"]
    for made in (folder / "work", folder / "work" / "new"):
        assert made.is_dir() and (made.stat().st_uid, made.stat().st_gid) == (UID, UID), made
    run = gpuenv("exec", "--", "touch", "/workspace/from-inside", cwd=folder, env=watched["env"])
    assert run.returncode == 0, run.stderr
    assert (folder / "work" / "new" / "from-inside").stat().st_uid == UID


@pytest.mark.parametrize("host", ["/", "/etc", "gone/../../../../../../../../usr", "to-etc", "to-etc/ssl", "~"])
def test_up_refuses_a_system_folder_as_the_workspace_before_anything_runs(module_engine, tmp_path, host):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "to-etc").symlink_to("/etc")
    name = module_engine.unique("sysdir")
    (folder / "gpuenv.toml").write_text(f'name = "{name}"\npython = "3.11"\nframeworks = ["jax"]\n[gpu]\n'
                                        f'devices = "none"\n[access]\njupyter = true\n'
                                        f'[workspace]\nhost = "{host}"\nuser = "0:0"\n')
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "home").mkdir()
    run = gpuenv("up", "--no-wait", cwd=folder, env=env, timeout=900)
    left = module_engine.docker("ps", "-aq", "--filter", f"name={name}").stdout.decode().split()
    for cid in left:                          # what an `up` that went ahead started
        module_engine.docker("rm", "-f", "-v", cid, check=False)
    assert run.returncode == 2, run.stderr
    assert "workspace.host" in run.stderr and "workspace.allow_system_folder = true" in run.stderr
    assert "Traceback" not in run.stderr and not (folder / "Dockerfile").exists() and left == []


def test_a_request_typed_in_the_home_folder_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "state")}
    run = gpuenv("up", "jax", "--devices", "none", "--no-wait", cwd=home, env=env, timeout=900)
    if run.returncode == 0:                   # it went ahead: take down what it started
        gpuenv("down", "--volumes", cwd=home, env=env, timeout=300)
    assert run.returncode == 2 and f"{home} is your home folder" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def global_addresses() -> list[str]:
    """This host's addresses as `ip` lists them, less loopback, link-local and the engine's bridges."""
    lines = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    rows = [line.split() for line in lines]
    return [r[3].split("/")[0] for r in rows if not r[1].startswith(("docker", "br-", "veth"))]


def test_up_warns_for_a_root_container_and_for_ports_on_every_address_and_names_them(module_engine, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    name = module_engine.unique("exposed")
    (folder / "gpuenv.toml").write_text(f'name = "{name}"\npython = "3.11"\nframeworks = ["jax"]\n[gpu]\n'
                                        f'devices = "none"\n[access]\nbind = "0.0.0.0"\n[access.jupyter]\n'
                                        f'port = {free_port()}\n[workspace]\nuser = "0:0"\n')
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    try:
        run = gpuenv("up", "--no-wait", cwd=folder, env=env)
    finally:
        gpuenv("down", "--volumes", cwd=folder, env=env, timeout=300)
        for cid in module_engine.docker("ps", "-aq", "--filter", f"name={name}").stdout.decode().split():
            module_engine.docker("rm", "-f", "-v", cid, check=False)   # `down` may not see a root container
        for ref in module_engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}",
                                        f"gpuenv-{name}").stdout.decode().split():
            module_engine.docker("image", "rm", "--force", ref, check=False)
    said = " ".join(run.stderr.split())           # the console wraps long lines
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'warning: workspace.user = "0:0" runs the container as root' in said
    ipv4 = [a for a in global_addresses() if ":" not in a]
    assert ipv4 and f'warning: access.bind = "0.0.0.0": the ports are open to other machines, at {", ".join(ipv4)} (' \
        in said
