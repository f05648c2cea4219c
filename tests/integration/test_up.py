"""`gpuenv up` -> `verify` -> `down` of the torch example on this machine's real engine, as a user would
run them: no GPU here, so CPU mode (the image is the real CUDA build of torch from PyPI; verify checks
the CPU path). Docker Hub is unreachable, so the base is built from the Debian mirror (mmdebstrap) the
first time: the path an air-gapped lab server takes. Run as UID 4321 (sudo's SUDO_UID), so that the
files the container writes must come out as that user's, not root's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
UID = 4321
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def gpuenv(*args: str, cwd: Path, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    full = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID), **(env or {})}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def status(url: str) -> int:
    try:
        with OPENER.open(url, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def project_containers(engine, project: str) -> list[str]:
    run = engine.docker("ps", "-a", "--filter", f"label=io.gpuenv.project={project}", "--format", "{{.Names}}")
    return run.stdout.decode().split()


@pytest.fixture(scope="module")
def held_port():
    """A port something else already listens on: the spec asks for it, so up must move to the next."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="module")
def torch_env(module_engine, held_port, tmp_path_factory):
    folder = tmp_path_factory.mktemp("torch-project")
    spec = (ROOT / "examples/torch/gpuenv.toml").read_text().replace("port = 8888", f"port = {held_port}")
    (folder / "gpuenv.toml").write_text(spec)
    os.chown(folder, UID, UID)
    home = tmp_path_factory.mktemp("home")
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state")}
    run = gpuenv("up", "--json", cwd=folder, env=env)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    if data.get("project"):
        module_engine.images.append(data["image"])
    yield {"folder": folder, "env": env, "run": run, "data": data}
    if data.get("project"):
        gpuenv("down", "--volumes", cwd=folder, env=env)
        for name in project_containers(module_engine, data["project"]):
            module_engine.docker("rm", "-f", name, check=False)


def test_up_starts_jupyter_on_the_next_free_port_and_says_so(torch_env, held_port):
    run, data = torch_env["run"], torch_env["data"]
    assert run.returncode == 0, run.stderr[-3000:]
    port = next(p for p in data["ports"] if p["service"] == "jupyter")
    assert port["wanted"] == held_port and port["port"] != held_port and port["taken_by"] == "another program"
    assert f"port {held_port} on 127.0.0.1 is taken" in run.stderr
    assert data["gpu_mode"] == "none" and data["built"] is True
    assert data["access"]["jupyter_url"].startswith(f"http://127.0.0.1:{port['port']}/lab?token=")


def test_jupyter_answers_its_token_only(torch_env):
    url = torch_env["data"]["access"]["jupyter_url"]
    base, token = url.split("/lab?token=")
    assert status(f"{base}/api/status?token={token}") == 200
    assert status(f"{base}/api/status") == 403
    assert status(f"{base}/api/status?token={'0' * len(token)}") == 403


def test_verify_checks_torch_on_the_cpu(torch_env):
    run = gpuenv("verify", "--json", cwd=torch_env["folder"], env=torch_env["env"], timeout=600)
    data = json.loads(run.stdout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert data["ok"] is True and data["cpu_only"] is True
    rows = {(r["check"], r["status"]) for r in data["checks"]}
    assert any(status == "ok" and "import" in check for check, status in rows), rows
    human = gpuenv("verify", cwd=torch_env["folder"], env=torch_env["env"], timeout=600)
    assert human.returncode == 0 and "no GPU: checked the CPU path" in human.stdout


def test_files_made_inside_belong_to_the_host_user(torch_env):
    run = gpuenv("exec", "--", "python3", "-c", "open('made-inside.txt', 'w').write('hi')",
                 cwd=torch_env["folder"], env=torch_env["env"])
    assert run.returncode == 0, run.stderr
    made = torch_env["folder"] / "made-inside.txt"
    assert made.read_text() == "hi" and (made.stat().st_uid, made.stat().st_gid) == (UID, UID)
    failing = gpuenv("exec", "--", "python3", "-c", "raise SystemExit(7)", cwd=torch_env["folder"],
                     env=torch_env["env"])
    assert failing.returncode == 7


def test_ls_and_status_read_the_labels(torch_env):
    run = gpuenv("ls", "--json", cwd=torch_env["folder"], env=torch_env["env"])
    envs = json.loads(run.stdout)["environments"]
    mine = [e for e in envs if e["project"] == torch_env["data"]["project"]]
    assert len(mine) == 1 and mine[0]["state"] == "running" and mine[0]["gpu_mode"] == "none"
    assert mine[0]["workspace"] == str(torch_env["folder"])
    status_run = gpuenv("status", torch_env["data"]["project"], "--json", cwd=ROOT, env=torch_env["env"])
    assert json.loads(status_run.stdout)["project"] == torch_env["data"]["project"]


def test_up_again_reuses_the_running_environment(torch_env):
    start = time.monotonic()
    run = gpuenv("up", "--json", cwd=torch_env["folder"], env=torch_env["env"])
    data = json.loads(run.stdout)
    assert run.returncode == 0 and data["reused"] is True and data["built"] is False
    assert data["access"] == torch_env["data"]["access"]
    assert time.monotonic() - start < 30


def test_down_leaves_nothing_running(module_engine, torch_env):
    project = torch_env["data"]["project"]
    assert project_containers(module_engine, project)
    run = gpuenv("down", "--volumes", "--json", cwd=torch_env["folder"], env=torch_env["env"])
    assert run.returncode == 0, run.stderr
    assert project_containers(module_engine, project) == []
    again = gpuenv("down", project, cwd=torch_env["folder"], env=torch_env["env"])
    assert again.returncode == 2 and f"no environment named '{project}'" in again.stderr


def test_a_stopped_engine_is_a_clear_error(tmp_path):
    (tmp_path / "gpuenv.toml").write_text((ROOT / "examples/jax-cpu/gpuenv.toml").read_text())
    elsewhere = tmp_path / "elsewhere"                    # not in the workspace: a folder holding the engine's
    (tmp_path / "project").mkdir()                        # socket is refused as a workspace
    (tmp_path / "project" / "gpuenv.toml").write_text((tmp_path / "gpuenv.toml").read_text())
    tmp_path = tmp_path / "project"
    gone = {"DOCKER_HOST": f"unix://{elsewhere}/no-dockerd.sock"}
    for args in (("up",), ("build",), ("ls",), ("verify",)):
        run = gpuenv(*args, cwd=tmp_path, env=gone, timeout=120)
        assert run.returncode == 1, (args, run.stderr)
        assert f"the Docker engine at DOCKER_HOST={gone['DOCKER_HOST']} does not answer" in run.stderr
        assert "Traceback" not in run.stderr and "hint:" in run.stderr and "dockerd &" not in run.stderr
    assert not (tmp_path / "Dockerfile").exists()



def test_up_from_a_short_request_with_no_spec(module_engine, tmp_path):
    """`gpuenv up REQUEST` in a folder with no gpuenv.toml: JupyterLab by default, the folder mounted,
    the spec and files kept in the state folder, not in the user's folder."""
    folder = tmp_path / "my project"
    folder.mkdir()
    os.chown(folder, UID, UID)
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = gpuenv("up", "jax", "--python", "3.11", "--devices", "none", "--json", cwd=folder, env=env)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        module_engine.images.append(data["image"])
        assert data["name"] == "my-project" and "jupyter_url" in data["access"]
        files = Path(data["folder"])
        assert files.parent == tmp_path / "state" / "gpuenv" / "envs" and (files / "gpuenv.toml").is_file()
        assert sorted(p.name for p in folder.iterdir()) == []
        base, token = data["access"]["jupyter_url"].split("/lab?token=")
        assert status(f"{base}/api/status?token={token}") == 200
        made = gpuenv("exec", "--", "python3", "-c", "import os; print(os.getcwd())", cwd=folder, env=env)
        assert made.stdout.strip() == "/workspace"
    finally:
        gpuenv("down", "--volumes", cwd=folder, env=env)
    assert project_containers(module_engine, data.get("project", "none")) == []


def test_init_jupyter_with_no_framework_then_up_serves_a_cpu_notebook(module_engine, tmp_path):
    """`gpuenv init --jupyter` (no framework) then `up`: a CPU-only environment with its packages, as
    written; Jupyter answers its token and the package imports (issue 16: no framework is valid)."""
    folder = tmp_path / "notes"
    folder.mkdir()
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert gpuenv("init", "--jupyter", "--python", "3.11", cwd=folder, env=env).returncode == 0
    text = (folder / "gpuenv.toml").read_text()            # a package (a top-level key), and no GPU
    (folder / "gpuenv.toml").write_text('packages = ["six"]\n' + text + '\n[gpu]\ndevices = "none"\n')
    os.chown(folder, UID, UID)
    run = gpuenv("up", "--json", cwd=folder, env=env)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        module_engine.images.append(data["image"])
        base, token = data["access"]["jupyter_url"].split("/lab?token=")
        assert status(f"{base}/api/status?token={token}") == 200 and status(f"{base}/api/status") == 403
        made = gpuenv("exec", "--", "python3", "-c", "import six, sys; print(sys.version_info[:2])", cwd=folder, env=env)
        assert made.returncode == 0 and made.stdout.strip() == "(3, 11)", made.stderr
        verified = gpuenv("verify", "--json", cwd=folder, env=env)
        checks = json.loads(verified.stdout)["checks"] if verified.stdout.strip().startswith("{") else []
        assert verified.returncode == 0 and [c["check"] for c in checks] == ["python"], verified.stdout[-2000:]
    finally:
        gpuenv("down", "--volumes", cwd=folder, env=env)
    assert project_containers(module_engine, data.get("project", "none")) == []
