"""An environment's life on this machine's real engine, where it used to go wrong: SSH when the user
is root, a service that dies as it starts (up must stop at once, with its log, and leave nothing
restarting), an environment whose containers run as another UID (still its starter's to manage; the
ssh host keys volume follows the UID), two `up`s of one folder at once, `rm` after `down`.

Every environment is JAX on the CPU with sshd only, so UID 0, 4321 and 1234 share every layer above
the user's. gpuenv runs as UID 4321 (sudo's SUDO_UID) unless a test says root, with its own HOME.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

UID = 4321
SSH_OPTIONS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]


def gpuenv_env(env: dict, root: bool = False) -> dict:
    full = {**os.environ, **env}
    for key in ("SUDO_UID", "SUDO_GID", "SUDO_USER"):
        full.pop(key, None)
    return full if root else {**full, "SUDO_UID": str(UID), "SUDO_GID": str(UID)}


def gpuenv(*args: str, cwd: Path, env: dict, root: bool = False, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=gpuenv_env(env, root),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spec(name: str, user: str = "host") -> str:
    return f"""\
name = "{name}"
python = "3.11"
frameworks = ["jax"]

[gpu]
devices = "none"

[workspace]
user = "{user}"

[access.ssh]
port = {free_port()}
authorized_key = "auto"
"""


def ssh(data: dict, remote: str) -> subprocess.CompletedProcess:
    command = shlex.split(data["access"]["ssh_command"])
    return subprocess.run([command[0], *SSH_OPTIONS, *command[1:], remote], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def inspect_project(engine, project: str) -> list[dict]:
    ids = engine.docker("ps", "-a", "-q", "--filter", f"label=io.gpuenv.project={project}").stdout.decode().split()
    return json.loads(engine.docker("inspect", *ids).stdout) if ids else []


def images(engine, repository: str) -> list[str]:
    return engine.docker("images", "-q", repository).stdout.decode().split()


def volume_of(container: dict) -> str:
    """sshd's host keys volume (the container also has HOME's)."""
    return next(m["Name"] for m in container["Mounts"] if m["Type"] == "volume" and m["Name"].endswith("-ssh-host-keys"))


@pytest.fixture(scope="module")
def made(module_engine, tmp_path_factory):
    """A fresh environment per call: (name, folder, env); everything named after them is removed at
    the end, whatever a test left."""
    names: list[str] = []

    def make(prefix: str, user: str = "host", owner: int = UID) -> tuple[str, Path, dict]:
        name = module_engine.unique(prefix)
        names.append(name)
        folder = tmp_path_factory.mktemp(prefix)
        (folder / "gpuenv.toml").write_text(spec(name, user))
        os.chown(folder, owner, owner)
        home = tmp_path_factory.mktemp("home")
        env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state"),
               "XDG_CONFIG_HOME": str(home / ".config")}
        return name, folder, env

    yield make
    for name in names:
        module_engine.remove_environment(name)


def test_ssh_as_root_starts_and_takes_the_key(made):
    """The invoking user is root (no sudo): sshd runs as root in the container, which needs its
    privilege-separation folder; it used to restart-loop while up waited 180 s."""
    name, folder, env = made("root-ssh", owner=0)
    run = gpuenv("up", "--json", cwd=folder, env=env, root=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(run.stdout)
    login = ssh(data, 'python3 -c "import os, jax; print(os.getuid(), jax.__version__)"; test -d /run/sshd')
    assert login.returncode == 0, login.stderr
    assert login.stdout.split()[0] == "0"
    assert gpuenv("down", "--volumes", cwd=folder, env=env, root=True).returncode == 0


def test_a_service_that_dies_at_start_stops_up_at_once_with_its_log(made, module_engine):
    """sshd exits as it starts (its host key is a folder): the engine restarts it over and over, while
    State.Running stays true. up stops within seconds, says why, and leaves the container stopped."""
    name, folder, env = made("crash")
    first = gpuenv("up", "--json", cwd=folder, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    project = json.loads(first.stdout)["project"]
    volume = volume_of(inspect_project(module_engine, project)[0])
    assert gpuenv("down", cwd=folder, env=env).returncode == 0
    module_engine.docker("run", "--rm", "--volume", f"{volume}:/keys", module_engine.base_image, "sh", "-c",
                         "rm -rf /keys/ssh_host_ed25519_key* && mkdir /keys/ssh_host_ed25519_key")
    start = time.monotonic()
    run = gpuenv("up", cwd=folder, env=env)
    took = time.monotonic() - start
    assert run.returncode == 1, run.stderr[-3000:]
    print(f"up noticed the restart loop in {took:.1f} s")
    assert took < 30, f"up took {took:.0f} s to notice"          # it waited 180 s (at best 65 s) before
    assert "restart-looping" in run.stderr or "exited with code" in run.stderr, run.stderr
    assert "ssh_host_ed25519_key" in run.stderr and "its last lines" in run.stderr, run.stderr
    assert "likely cause" in run.stderr and "Traceback" not in run.stderr
    assert "stopped" in run.stderr
    time.sleep(3)                                 # a container left restarting would be seen again by now
    left = inspect_project(module_engine, project)
    assert left, "the failed container should stay (stopped) for `gpuenv logs`"
    for c in left:
        assert not c["State"]["Running"] and not c["State"]["Restarting"], c["State"]
    logs = gpuenv("logs", cwd=folder, env=env)
    assert logs.returncode == 0 and "ssh_host_ed25519_key" in logs.stdout + logs.stderr


def test_ctrl_c_while_up_waits_leaves_nothing_restarting(made, module_engine):
    """Ctrl-C (SIGINT) once the restart-looping container has started: up ends (130, or 1 when it saw
    the loop first) and no container of it is left running or restarting."""
    name, folder, env = made("ctrl-c")
    first = gpuenv("up", "--json", cwd=folder, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    project = json.loads(first.stdout)["project"]
    volume = volume_of(inspect_project(module_engine, project)[0])
    assert gpuenv("down", cwd=folder, env=env).returncode == 0
    module_engine.docker("run", "--rm", "--volume", f"{volume}:/keys", module_engine.base_image, "sh", "-c",
                         "rm -rf /keys/ssh_host_ed25519_key* && mkdir /keys/ssh_host_ed25519_key")
    up = subprocess.Popen([sys.executable, "-m", "gpuenv", "up"], cwd=folder, env=gpuenv_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300

    def started() -> bool:
        states = [c["State"] for c in inspect_project(module_engine, project)]
        return any(state.get("StartedAt", "0001").startswith("20") for state in states)
    while not started() and up.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)                               # past `docker run`: in the wait (it used to take 65 to 180 s)
    up.send_signal(signal.SIGINT)
    out, err = up.communicate(timeout=300)
    assert up.returncode in (130, 1), err[-3000:]
    assert "Traceback" not in err
    time.sleep(3)
    for c in inspect_project(module_engine, project):
        assert not c["State"]["Running"] and not c["State"]["Restarting"], c["State"]


def test_an_environment_run_as_another_uid_stays_its_starters(made, module_engine):
    """workspace.user = 1234:1234, started by UID 4321: status, logs, down and rm find it. Then the
    user becomes the host's (4321): the ssh host keys volume, 1234's, is given to 4321 and sshd starts."""
    name, folder, env = made("other-uid", user="1234:1234")
    run = gpuenv("up", "--json", cwd=folder, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(run.stdout)
    assert ssh(data, "id -u").stdout.strip() == "1234"
    status = gpuenv("status", "--json", cwd=folder, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["project"] == data["project"]
    assert json.loads(status.stdout)["state"] == "running"
    listed = json.loads(gpuenv("ls", "--json", cwd=folder, env=env).stdout)["environments"]
    assert data["project"] in [e["project"] for e in listed]
    logs = gpuenv("logs", name, cwd=Path("/"), env=env)
    assert logs.returncode == 0 and "Server listening" in logs.stdout + logs.stderr, logs.stderr

    (folder / "gpuenv.toml").write_text((folder / "gpuenv.toml").read_text().replace('"1234:1234"', '"host"'))
    again = gpuenv("up", "--json", cwd=folder, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    again_data = json.loads(again.stdout)
    assert ssh(again_data, "id -u").stdout.strip() == str(UID)
    down = gpuenv("down", cwd=folder, env=env)
    assert down.returncode == 0, down.stderr
    assert inspect_project(module_engine, data["project"]) == []


def test_rm_after_down_removes_what_the_environment_left(made, module_engine):
    """`gpuenv up REQUEST` (files in the state folder), then `down`: the containers are gone, and `rm`
    still finds the environment and removes its images, host keys volume, build log and state folder."""
    name, folder, env = made("rm-after-down")
    (folder / "gpuenv.toml").unlink()
    run = gpuenv("up", "jax", "--python", "3.11", "--devices", "none", "--ssh", "--ssh-port", str(free_port()),
                 "--name", name, "--json", cwd=folder, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(run.stdout)
    files = Path(data["folder"])
    assert files.parent == Path(env["XDG_STATE_HOME"]) / "gpuenv" / "envs"
    volume = volume_of(inspect_project(module_engine, data["project"])[0])
    log = Path(env["XDG_CACHE_HOME"]) / "gpuenv" / "logs" / f"{data['project']}-build.log"
    assert log.is_file() and images(module_engine, f"gpuenv-{name}")
    assert gpuenv("down", cwd=folder, env=env).returncode == 0
    assert inspect_project(module_engine, data["project"]) == []

    removed = gpuenv("rm", "--json", cwd=folder, env=env)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["project"] == data["project"]
    assert images(module_engine, f"gpuenv-{name}") == []
    assert module_engine.docker("volume", "inspect", volume, check=False).returncode != 0
    assert not log.exists() and not files.exists()
    assert sorted(p.name for p in folder.iterdir()) == []        # the workspace is the user's: untouched
    again = gpuenv("rm", cwd=folder, env=env)       # nothing is left here: never another folder's environment
    assert again.returncode == 2 and "hint:" in again.stderr and "removed" not in again.stdout, again.stderr


def test_two_ups_of_one_folder_at_once_both_succeed_with_one_environment(made, module_engine):
    """The second waits for the first (a lock on the folder), then finds it running."""
    name, folder, env = made("two-ups")
    both = [subprocess.Popen([sys.executable, "-m", "gpuenv", "up", "--json"], cwd=folder, env=gpuenv_env(env),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
            for _ in range(2)]
    done = [p.communicate(timeout=1800) for p in both]
    for process, (out, err) in zip(both, done):
        assert process.returncode == 0, out[-2000:] + err[-3000:]
    datas = [json.loads(out) for out, _ in done]
    assert datas[0]["project"] == datas[1]["project"]
    assert sorted(d["reused"] for d in datas) == [False, True]
    assert any("waiting for another gpuenv up or build of this folder (pid" in err for _, err in done)
    containers = inspect_project(module_engine, datas[0]["project"])
    assert [c["Name"].lstrip("/") for c in containers] == datas[0]["containers"]
    assert all(c["State"]["Running"] for c in containers)
    assert gpuenv("rm", cwd=folder, env=env).returncode == 0
    assert inspect_project(module_engine, datas[0]["project"]) == []


def test_rm_removes_only_the_images_built_for_its_user(engine, tmp_path):
    """On a shared server two users' environments may share a name (gpuenv-torch:...): `rm` of one
    removes the images built for its UID:GID (their USER) and never the other user's."""
    from gpuenv.environment import remove_images
    from gpuenv.run.docker import Docker

    repository = engine.unique("rm-images")
    built = {}
    for user in ("4321:4321", "1234:1234"):
        (tmp_path / "Dockerfile").write_text(f"FROM {engine.base_image}\nUSER {user}\nLABEL who={user}\n")
        tag = engine.track_image(f"{repository}:{user.split(':')[0]}")
        engine.docker("build", "-q", "-t", tag, str(tmp_path))
        built[user] = tag
    removed = remove_images(Docker(engine.client), repository, "4321:4321", built["4321:4321"])
    assert removed == [built["4321:4321"]]
    assert engine.docker("image", "inspect", built["1234:1234"], check=False).returncode == 0
    assert engine.docker("image", "inspect", built["4321:4321"], check=False).returncode != 0


def test_down_without_a_name_takes_only_this_folders_environment(engine, tmp_path):
    """`gpuenv down` typed in a folder with no environment must not remove the user's only environment of
    another folder (status may still show it): a verb that removes acts on what it was told."""
    project = engine.unique("elsewhere")
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir()
    here.mkdir()
    labels = {"project": project, "env": project, "service": "shell", "main": "true", "owner": str(UID),
              "files": str(elsewhere), "workspace": str(elsewhere)}
    engine.docker("run", "--detach", "--name", engine.track_container(f"{project}-shell"),
                  *[w for k, v in labels.items() for w in ("--label", f"io.gpuenv.{k}={v}")],
                  engine.base_image, "sleep", "600")
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"), "GPUENV_DOCKER": engine.client}
    listed = gpuenv("ls", "--json", cwd=here, env=env)
    assert project in [e["name"] for e in json.loads(listed.stdout)["environments"]], listed.stderr
    down = gpuenv("down", cwd=here, env=env)
    assert down.returncode == 2 and "belongs to this folder" in down.stderr and project in down.stderr, down.stderr
    assert engine.docker("inspect", f"{project}-shell", check=False).returncode == 0
    named = gpuenv("down", project, cwd=here, env=env)
    assert named.returncode == 0, named.stderr
    assert engine.docker("inspect", f"{project}-shell", check=False).returncode != 0
