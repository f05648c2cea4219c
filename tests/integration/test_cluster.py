"""The environment on a cluster, with real parts: `gpuenv export` (skopeo + umoci from this engine) gives a
bundle that runc runs here as the user; a real one-node Slurm (slurm_cluster.py, started once for the
session) runs `gpuenv submit`'s job in that image, `gpuenv jobs` lists it and `gpuenv cancel` ends it with
nothing left running. No GPU exists here: the GPU lines are tested as text (unit tests), the refusal of a
partition without GPUs and of a recorded old-driver node for real."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration import slurm_cluster
from tests.integration.test_generate_build import DEBIAN_SOURCES

pytestmark = [pytest.mark.docker, pytest.mark.slurm]

BASE = os.environ.get("GPUENV_TEST_BASE_IMAGE", "gpuenv-test/debian:bookworm")
UID = 4321
OLD_DRIVER = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "upstream-openpai-2x-gtx1070-384"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
SPEC = f"""name = "{{name}}"
python = "3.11"

[gpu]
devices = "none"

[workspace]
host = "ws"
user = "{UID}:{UID}"
"""


def gpuenv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GPUENV_DOCKER": os.environ.get("GPUENV_DOCKER", "/usr/bin/docker"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=full)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slurm_cluster.Cluster]:
    missing = slurm_cluster.available()
    if missing:
        pytest.fail(f"{missing} not installed: scripts/setup.sh (ensure_cluster_tools) installs them")
    with slurm_cluster.running(Path(f"/tmp/gpuenv-slurm-{uuid.uuid4().hex[:8]}")) as running:
        yield running


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment's folder (CPU, workspace ./ws of user 4321), readable by that user."""
    top = tmp_path_factory.mktemp("gpuenv-cluster-it")
    for path in (top, *top.parents):
        if path != Path("/"):
            os.chmod(path, os.stat(path).st_mode | 0o011)     # the job's user may pass through
    (top / "gpuenv.toml").write_text(SPEC.format(name=f"clu{uuid.uuid4().hex[:6]}"))
    (top / "ws").mkdir()
    os.chown(top / "ws", UID, UID)
    return top


def _runc_list(root: Path) -> list[str]:
    if not root.exists():
        return []
    done = subprocess.run([RUNC, "--root", str(root), "list", "-q"], capture_output=True, text=True)
    return done.stdout.split()


def _partials(where: Path) -> list[str]:
    return [p.name for p in where.iterdir() if ".partial-" in p.name]


def test_the_exported_bundle_runs_under_runc_as_the_user_and_leaves_nothing(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    done = gpuenv("export", "--image", BASE, "-o", str(out), "--json", "--",
                  "sh", "-c", "id -u > from-runc.txt; id -g >> from-runc.txt; pwd >> from-runc.txt", cwd=folder)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    index = json.loads((out / "oci" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "bookworm"
    assert {o["tool"] for o in data["others"]} == {"enroot", "apptainer"}
    assert any("apptainer build" in c for o in data["others"] for c in o["commands"])
    state = tmp_path / "runc-state"
    run = subprocess.run([RUNC, "--root", str(state), "run", "--bundle", str(out / "bundle"), f"it-{uuid.uuid4().hex[:6]}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    written = folder / "ws" / "from-runc.txt"
    try:
        assert written.read_text().split() == [str(UID), str(UID), "/workspace"]
        assert (written.stat().st_uid, written.stat().st_gid) == (UID, UID)
        assert _runc_list(state) == [] and _partials(tmp_path) == []
    finally:
        written.unlink(missing_ok=True)


def test_an_image_for_a_newer_driver_is_refused_for_a_recorded_old_node(folder: Path, tmp_path: Path) -> None:
    tag = f"gpuenv-it-labels:{uuid.uuid4().hex[:8]}"
    labels = ("LABEL io.gpuenv.min-driver=525.60.13 io.gpuenv.cuda=12.1 io.gpuenv.cuda-source=wheels "
              "io.gpuenv.gpu-archs=sm_80,sm_90")
    docker = os.environ.get("GPUENV_DOCKER", "/usr/bin/docker")
    built = subprocess.run([docker, "build", "-q", "-t", tag, "-"], input=f"FROM {BASE}\n{labels}\n",
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    try:
        out = tmp_path / "refused"
        done = gpuenv("export", "--image", tag, "-o", str(out), "--node-facts", str(OLD_DRIVER), cwd=folder)
        assert done.returncode == 3, done.stderr
        assert "driver 384.66 is older than the 525.60.13" in done.stderr and "hint:" in done.stderr
        assert "Traceback" not in done.stderr
        assert not out.exists() and _partials(tmp_path) == []
    finally:
        subprocess.run([docker, "image", "rm", "--force", tag], capture_output=True)


def _wait_gone(cluster: slurm_cluster.Cluster, job: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if job not in cluster.run("squeue", "-h", "-o", "%i").stdout.split():
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job} still in the queue: {cluster.run('squeue').stdout}")


def _state() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"gpuenv-oci-{os.getuid()}"


def test_a_batch_job_writes_into_the_workspace_as_the_user(cluster: slurm_cluster.Cluster, folder: Path) -> None:
    done = gpuenv("submit", "--image", BASE, "--json", "--", "sh", "-c",
                  'id -u > from-slurm.txt; echo "$SLURM_JOB_ID $HOME" >> from-slurm.txt', cwd=folder, env=cluster.env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["job"]
    _wait_gone(cluster, job)
    written = folder / "ws" / "from-slurm.txt"
    log = folder / f"slurm-{job}.out"
    assert written.is_file(), log.read_text() if log.exists() else "no log"
    assert written.read_text().split() == [str(UID), job, "/home/gpuenv"]
    assert written.stat().st_uid == UID
    export = Path(json.loads(done.stdout)["export"])
    assert not (export / "jobs" / job).exists() and f"gpuenv-{job}" not in _runc_list(_state())


def test_jobs_lists_a_running_job_and_cancel_leaves_nothing_running(cluster: slurm_cluster.Cluster,
                                                                     folder: Path) -> None:
    marker = str(3000 + uuid.uuid4().int % 900)           # `sleep N`: a process to look for
    done = gpuenv("submit", "--image", BASE, "--json", "--", "sleep", marker, cwd=folder, env=cluster.env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["job"]
    name = json.loads(done.stdout)["env"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and f"gpuenv-{job}" not in _runc_list(_state()):
        time.sleep(0.5)
    listed = json.loads(gpuenv("jobs", "--json", cwd=folder, env=cluster.env).stdout)["jobs"]
    assert {"id": job, "env": name, "state": "RUNNING"}.items() <= next(j for j in listed if j["id"] == job).items()
    assert _sleeping(marker)
    cancelled = gpuenv("cancel", name, "--json", cwd=folder, env=cluster.env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["cancelled"] == [job]
    _wait_gone(cluster, job)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_sleeping(marker) or f"gpuenv-{job}" in _runc_list(_state())):
        time.sleep(0.5)
    assert not _sleeping(marker) and f"gpuenv-{job}" not in _runc_list(_state())
    assert json.loads(gpuenv("jobs", "--json", cwd=folder, env=cluster.env).stdout)["jobs"] == []


def _sleeping(marker: str) -> bool:
    return subprocess.run(["pgrep", "-x", "-f", f"sleep {marker}"], capture_output=True).returncode == 0


def test_a_gpu_job_is_refused_on_a_partition_without_gpus_before_anything_is_submitted(
        cluster: slurm_cluster.Cluster, folder: Path) -> None:
    before = cluster.run("squeue", "-h", "-o", "%i").stdout
    done = gpuenv("submit", "--image", BASE, "--gpus", "2", "--", "nvidia-smi", cwd=folder, env=cluster.env)
    assert done.returncode == 3, done.stderr
    assert "partition debug has no GPUs" in done.stderr and "--gpus 0" in done.stderr
    assert cluster.run("squeue", "-h", "-o", "%i").stdout == before


def test_without_slurm_submit_says_so_and_how_to_fix_it(folder: Path, tmp_path: Path) -> None:
    done = gpuenv("submit", "--image", BASE, "--", "true", cwd=folder, env={"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "Slurm's commands are not on PATH" in done.stderr and "hint: log in to the cluster's login node" in done.stderr
    assert "Traceback" not in done.stderr


JUPYTER_SPEC = SPEC + """
[access.jupyter]
mode = "notebook"
"""


@pytest.fixture(scope="module")
def jupyter_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test base image with Debian's Jupyter Notebook: the smallest image with a Jupyter (a full gpuenv
    build would add minutes; what `up --on slurm` runs does not depend on how the image was made)."""
    context = tmp_path_factory.mktemp("jupyter-image")
    (context / "debian.sources").write_text(DEBIAN_SOURCES)
    (context / "Dockerfile").write_text("\n".join([
        f"FROM {BASE}",
        "COPY debian.sources /etc/apt/sources.list.d/debian.sources",
        "RUN rm -f /etc/apt/sources.list && apt-get update \\",
        " && apt-get install -y --no-install-recommends jupyter-notebook && rm -rf /var/lib/apt/lists/*", ""]))
    tag = f"gpuenv-it-jupyter:{uuid.uuid4().hex[:8]}"
    docker = os.environ.get("GPUENV_DOCKER", "/usr/bin/docker")
    built = subprocess.run([docker, "build", "-q", "-t", tag, str(context)], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    yield tag
    subprocess.run([docker, "image", "rm", "--force", tag], capture_output=True)


def _status(url: str) -> int:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_up_on_slurm_runs_jupyter_as_a_job_that_answers_its_token_and_cancel_leaves_nothing(
        cluster: slurm_cluster.Cluster, jupyter_image: str, tmp_path: Path) -> None:
    env_folder = tmp_path / "notebook"
    env_folder.mkdir()
    for path in (env_folder, tmp_path):
        os.chmod(path, 0o755)
    (env_folder / "gpuenv.toml").write_text(JUPYTER_SPEC.format(name=f"nb{uuid.uuid4().hex[:6]}"))
    (env_folder / ".env").write_text(f"GPUENV_IMAGE={jupyter_image}\n")      # what `gpuenv build` leaves
    (env_folder / "ws").mkdir()
    os.chown(env_folder / "ws", UID, UID)
    done = gpuenv("up", "--on", "slurm", "--json", cwd=env_folder, env=cluster.env)
    data = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    job = data.get("job", "")
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        assert data["ready"] is True and data["node"] == "localhost"
        port, token = data["port"], data["jupyter_url"].rsplit("?token=", 1)[1]
        assert data["jupyter_url"] == f"http://127.0.0.1:{port}/tree?token={token}" and len(token) >= 32
        assert data["tunnel"] == f"ssh -N -L {port}:127.0.0.1:{port} localhost"
        assert _status(f"http://127.0.0.1:{port}/api/status?token={token}") == 200
        assert _status(f"http://127.0.0.1:{port}/api/status") == 403
        assert _status(f"http://127.0.0.1:{port}/api/status?token=not-{token}") == 403
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        local = [line.split()[3] for line in listening.splitlines() if len(line.split()) >= 5]   # Local Address:Port
        assert local == [f"127.0.0.1:{port}"], listening                  # the node's loopback only
        script = cluster.run("scontrol", "write", "batch_script", job, "-").stdout
        assert "#SBATCH" in script and token not in script              # the token is not in the job script
        listed = json.loads(gpuenv("jobs", "--json", cwd=env_folder, env=cluster.env).stdout)["jobs"]
        assert any(j["id"] == job and j["state"] == "RUNNING" for j in listed)
        downed = gpuenv("down", "--on", "slurm", "--json", cwd=env_folder, env=cluster.env)
        assert downed.returncode == 0 and json.loads(downed.stdout)["cancelled"] == [job], downed.stderr
        _wait_gone(cluster, job)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_answering(port) or f"gpuenv-{job}" in _runc_list(_state())):
            time.sleep(0.5)
        assert not _answering(port) and f"gpuenv-{job}" not in _runc_list(_state())
        assert not (Path(data["export"]) / "jobs" / job).exists()
        assert subprocess.run(["pgrep", "-f", f"job-ready {data['export']}/jobs/{job}"]).returncode == 1
    finally:
        if job:
            cluster.run("scancel", job)


def _answering(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
