"""What a user meets when the machine says no, with the real CLI in a process: a folder they may not write
(as an unprivileged UID), a read-only file system, a full disk (small tmpfs mounts), an engine that
DOCKER_HOST names and that does not answer, Ctrl-C, and `exec` passing `--json` to its command.
Each says the cause with `error:` and `hint:`, exits 1 (130 for Ctrl-C), and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
JAX = ROOT / "examples" / "jax-cpu"
NOBODY = 65534


def gpuenv(*args: str, cwd: Path, env: dict | None = None, user: int | None = None,
           timeout: int = 300) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "gpuenv", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
    run = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    return run


@pytest.fixture
def open_tmp():
    """A folder under /tmp that every user may reach (pytest's own tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="gpuenv-cli-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def home(open_tmp):
    """An empty home of its own (state, cache, SSH keys), the unprivileged user's."""
    folder = open_tmp / "home"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    return {"HOME": str(folder), "XDG_CACHE_HOME": str(folder / ".cache"), "XDG_STATE_HOME": str(folder / ".state")}


@pytest.fixture
def mounted(tmp_path):
    """`mount(name, options)`: a tmpfs (64 KiB unless told) at a folder of tmp_path, unmounted afterwards."""
    made: list[Path] = []

    def mount(name: str, options: str = "size=64k") -> Path:
        where = tmp_path / name
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
        made.append(where)
        return where

    yield mount
    for where in made:
        subprocess.run(["umount", str(where)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


# -- a folder this user cannot write -------------------------------------------------------------------

def test_generate_and_init_into_a_folder_this_user_may_not_write(open_tmp, home):
    locked = open_tmp / "theirs"
    locked.mkdir(mode=0o755)                               # root's, as the tests run: not the user's
    shutil.copy(JAX / "gpuenv.toml", locked / "gpuenv.toml")
    for args, cwd in ((("generate", "-f", str(JAX), "--out", str(locked / "out")), open_tmp),
                      (("generate",), locked), (("init", "torch", "--force"), locked)):
        run = gpuenv(*args, cwd=cwd, env=home, user=NOBODY)
        assert run.returncode == 1, (args, run.stderr)
        lines = run.stderr.splitlines()                   # generate may say first that it pulls the base
        first, hint = lines[next(i for i, line in enumerate(lines) if line.startswith("error:")):][:2]
        assert first.startswith(f"error: cannot write {locked}") and first.endswith("permission denied"), first
        assert hint.startswith("hint:") and f"ls -ld {locked}" in hint
    assert sorted(p.name for p in locked.iterdir()) == ["gpuenv.toml"]


# -- a read-only file system ---------------------------------------------------------------------------

def test_generate_up_lock_and_init_on_a_read_only_file_system(mounted, home, engine):
    folder = mounted("ro", "size=64k")
    shutil.copy(JAX / "gpuenv.toml", folder / "gpuenv.toml")
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    for args in (("generate",), ("up", "--no-wait"), ("lock",), ("build",), ("init", "torch", "--force")):
        start = time.monotonic()
        run = gpuenv(*args, cwd=folder, env=home)
        assert run.returncode == 1, (args, run.stderr)
        assert "read-only" in run.stderr.splitlines()[0] and str(folder) in run.stderr, (args, run.stderr)
        assert "findmnt -T" in run.stderr
        assert time.monotonic() - start < 60, f"{args}: said only after planning and pulling"
    json_run = gpuenv("generate", "--json", cwd=folder, env=home)
    error = json.loads(json_run.stdout)["error"]
    assert (error["type"], error["cause"], error["exit_code"]) == ("StorageError", "read-only", 1)


# -- a full disk ---------------------------------------------------------------------------------------

def test_generate_and_init_on_a_full_disk_leave_nothing_behind(mounted, tmp_path, home):
    full = mounted("full")
    _fill(full)
    before = sorted(p.name for p in full.iterdir())
    for args, cwd in ((("generate", "-f", str(JAX), "--out", str(full / "out" / "deep")), tmp_path),
                      (("init", "torch"), full)):
        run = gpuenv(*args, cwd=cwd, env=home)
        assert run.returncode == 1, (args, run.stderr)
        lines = run.stderr.splitlines()                   # generate may say first that it pulls the base
        first, hint = lines[next(i for i, line in enumerate(lines) if line.startswith("error:")):][:2]
        assert "no space left on the device" in first and str(full) in first, first
        assert f"df -h {full}" in hint
    assert sorted(p.name for p in full.iterdir()) == before         # no temporary file, no half folder


def test_generate_into_an_existing_folder_on_a_full_disk_keeps_its_old_files(mounted, tmp_path, home):
    full = mounted("full", "size=1m")         # the files with every pinned step's hashes outgrow 64 KiB
    first = gpuenv("generate", "-f", str(JAX), "--out", str(full), cwd=tmp_path, env=home)
    assert first.returncode == 0, first.stderr
    kept = {p.name: p.read_bytes() for p in full.iterdir() if p.is_file()}
    (full / "Dockerfile").write_text((full / "Dockerfile").read_text() + "# grown\n")
    kept["Dockerfile"] = (full / "Dockerfile").read_bytes()
    _fill(full)
    again = gpuenv("generate", "-f", str(JAX), "--out", str(full), "--force", cwd=tmp_path, env=home)
    assert again.returncode == 1 and "no space left" in again.stderr, again.stderr
    now = {p.name: p.read_bytes() for p in full.iterdir() if p.is_file() and p.name != "filler"}
    assert now == kept                                              # all or nothing: the old files stand


# -- an engine DOCKER_HOST names that does not answer --------------------------------------------------

@pytest.mark.parametrize("dead", ["tcp://127.0.0.1:1", "unix:///nonexistent/gpuenv-test.sock"])
def test_a_dead_docker_host_is_named_with_its_value_and_checked_there(dead, tmp_path, home):
    shutil.copy(JAX / "gpuenv.toml", tmp_path / "gpuenv.toml")
    env = {**home, "DOCKER_HOST": dead}
    for args in (("up",), ("build",), ("ls",), ("status",), ("verify",), ("lock",), ("exec", "ls"), ("down",)):
        run = gpuenv(*args, cwd=tmp_path, env=env, timeout=120)
        assert run.returncode == 1, (args, run.stderr)
        lines = run.stderr.splitlines()                   # generate may say first that it pulls the base
        first, hint = lines[next(i for i, line in enumerate(lines) if line.startswith("error:")):][:2]
        assert first.startswith(f"error: the Docker engine at DOCKER_HOST={dead} does not answer"), first
        assert "dockerd" not in hint and "systemctl" not in hint and "unset DOCKER_HOST" in hint, hint
    assert not (tmp_path / "Dockerfile").exists()


@pytest.mark.parametrize("dead", ["tcp://127.0.0.1:1", "unix:///nonexistent/gpuenv-test.sock"])
def test_doctor_checks_the_engine_docker_host_names_and_never_starts_another(dead, tmp_path, home):
    run = gpuenv("doctor", "--offline", "--no-smoke", "--json", cwd=tmp_path, env={**home, "DOCKER_HOST": dead})
    data = json.loads(run.stdout)
    assert run.returncode == 1 and data["host"]["engine"]["status"] != "not-installed"
    (finding,) = [f for f in data["findings"] if f["check"] == "engine-running"]
    assert finding["problem"] == f"the Docker engine at DOCKER_HOST={dead} does not answer"
    assert not any("dockerd" in line or "systemctl" in line for line in finding["fix"]), finding["fix"]
    assert any(dead in line for line in finding["fix"]) and "unset DOCKER_HOST" in finding["fix"]
    human = gpuenv("doctor", "--offline", "--no-smoke", cwd=tmp_path, env={**home, "DOCKER_HOST": dead})
    assert "dockerd" not in human.stdout and f"DOCKER_HOST={dead}" in human.stdout


# -- exec and its command's own options; Ctrl-C ----------------------------------------------------------

@pytest.fixture
def labelled(engine, tmp_path):
    """A running container that carries an environment's labels (this user's): what exec, logs reach."""
    name = engine.track_container(engine.unique("cli"))
    labels = {"project": name, "env": name, "owner": str(os.getuid()), "main": "true", "service": "main",
              "workspace": str(tmp_path), "files": str(tmp_path)}
    args = [f"--label=io.gpuenv.{k}={v}" for k, v in labels.items()]
    engine.docker("run", "-d", "--name", name, *args, engine.base_image, "sh", "-c", "echo ready; sleep 600")
    return name


def test_exec_passes_json_after_its_command_to_the_command(labelled, tmp_path):
    run = gpuenv("exec", "-e", labelled, "echo", "--json", "--debug", cwd=tmp_path)
    assert (run.returncode, run.stdout) == (0, "--json --debug\n"), run.stderr
    before = gpuenv("exec", "--json", "-e", labelled, "echo", "hi", cwd=tmp_path)
    assert (before.returncode, before.stdout) == (0, "hi\n"), before.stderr
    failing = gpuenv("exec", "-e", labelled + "-none", "echo", "--json", cwd=tmp_path)
    assert failing.returncode == 2 and not failing.stdout and failing.stderr.startswith("error:")
    as_json = gpuenv("--json", "exec", "-e", labelled + "-none", "echo", "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout)["error"]["exit_code"] == 2


@pytest.mark.parametrize("args", [("exec", "sleep", "300"), ("logs", "-f"), ("--json", "exec", "sleep", "300")])
def test_ctrl_c_exits_130_and_stops_what_it_started(labelled, engine, tmp_path, args):
    verb_at = args.index("exec") if "exec" in args else args.index("logs")
    argv = [*args[:verb_at + 1], *(("-e", labelled) if args[verb_at] == "exec" else (labelled,)), *args[verb_at + 1:]]
    proc = subprocess.Popen([sys.executable, "-m", "gpuenv", *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(4)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)                         # as a terminal's Ctrl-C: the whole group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "error: interrupted" in err
    if "--json" in args:
        assert json.loads(out)["error"]["exit_code"] == 130
    assert not _clients_of(labelled), "a docker client gpuenv started is still running"


def _clients_of(container: str) -> list[str]:
    """Command lines of this host's processes that name the container (gpuenv's docker client would)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = proc.read_bytes().split(b"\0")
        except OSError:
            continue
        if container.encode() in words and any(w.endswith(b"docker") for w in words[:1]):
            found.append(b" ".join(words).decode(errors="replace"))
    return found
