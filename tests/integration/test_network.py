"""The network policy on this machine's real network, which inspects TLS: outbound HTTPS is re-signed by a
proxy whose CA only this host trusts (/usr/local/share/ca-certificates). Both sides are proven:

- a build with network.ca_certificates = [] fails in pip with CERTIFICATE_VERIFY_FAILED, and gpuenv's hint
  names the fix; the same environment with the default ("auto") builds and starts;
- no CA, ~/.netrc password or Jupyter token is in any file of any layer (`docker save`, every layer read);
- pip inside the running environment works (the host's bundle mounted read-only at run time), and the same
  image without that mount fails: the CA is not in the image;
- `gpuenv doctor --network` against real sources: PyPI ok with the CA and a TLS failure without it, a name
  that does not resolve is blocked, a local server that delays its answer is slow.
"""

from __future__ import annotations

import glob
import http.server
import json
import os
import secrets
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROXY_CA_DIR = "/usr/local/share/ca-certificates"


def gpuenv(*args: str, cwd: Path, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def ca_bodies() -> list[bytes]:
    """A long base64 line from the middle of each CA this host added: what would show up in a layer."""
    bodies = []
    for path in sorted(glob.glob(f"{PROXY_CA_DIR}/*.crt")):
        lines = [x for x in Path(path).read_bytes().splitlines() if x and not x.startswith(b"-----")]
        bodies.append(lines[len(lines) // 2])
    return bodies


# --- builds and the running environment (real engine) ---------------------------------------------------

@pytest.fixture(scope="module")
def project(module_engine, tmp_path_factory):
    if not ca_bodies():
        pytest.skip("this host adds no CA of its own: there is no TLS-inspecting proxy to test against")
    folder = tmp_path_factory.mktemp("gpuenv-network-env")
    name = f"gpuenv-network-{secrets.token_hex(4)}"
    spec = (ROOT / "examples/jax-cpu/gpuenv.toml").read_text().replace('name = "jax-cpu"', f'name = "{name}"')
    password = f"netrc-pass-{secrets.token_hex(8)}"
    netrc = folder.parent / f"{name}.netrc"
    netrc.write_text(f"machine pypi.org login gpuenv-network-test password {password}\n")
    netrc.chmod(0o600)
    env = {"NETRC": str(netrc)}
    made: dict = {"folder": folder, "spec": spec, "password": password, "env": env, "name": name}
    yield made
    if made.get("up"):
        gpuenv("down", "--volumes", cwd=folder, env=env)
    for ref in made.get("images", []):
        module_engine.docker("image", "rm", "--force", ref, check=False)


@pytest.mark.docker
def test_a_build_without_the_ca_fails_in_pip_and_the_hint_names_the_fix(project, module_engine):
    folder = project["folder"]
    (folder / "gpuenv.toml").write_text(project["spec"] + "\n[network]\nca_certificates = []\n")
    run = gpuenv("build", "--no-cache", cwd=folder, env=project["env"])
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "CERTIFICATE_VERIFY_FAILED" in run.stderr, run.stderr[-3000:]
    assert 'network.ca_certificates = "auto"' in run.stderr
    assert "Traceback" not in run.stderr
    tag = next(line.split("=", 1)[1] for line in (folder / ".env").read_text().splitlines()
               if line.startswith("GPUENV_IMAGE="))
    assert module_engine.docker("image", "inspect", tag, check=False).returncode != 0, "a failed build left an image"


@pytest.fixture(scope="module")
def built(project, module_engine):
    folder = project["folder"]
    (folder / "gpuenv.toml").write_text(project["spec"])          # ca_certificates: the default, "auto"
    run = gpuenv("up", "--json", cwd=folder, env=project["env"])
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    if data.get("image"):
        project.setdefault("images", []).append(data["image"])
    project["up"] = bool(data.get("project"))
    assert run.returncode == 0, run.stderr[-3000:]
    token = next(line.split("=", 1)[1] for line in (folder / ".env").read_text().splitlines()
                 if line.startswith("JUPYTER_TOKEN="))
    return {**data, "token": token}


@pytest.mark.docker
def test_the_same_environment_builds_and_starts_with_the_hosts_ca(built):
    assert built["ok"] and built["image"]


def _scan(stream, needles: dict[str, bytes], found: dict[str, list[str]], where: str) -> None:
    """Every regular file in a tar stream (nested tars too), read in chunks that overlap by the longest needle."""
    overlap = max(len(n) for n in needles.values())
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            if member.name.endswith("layer.tar"):
                _scan(handle, needles, found, f"{where}{member.name}:")
                continue
            tail = b""
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                window = tail + chunk
                for label, needle in needles.items():
                    if needle in window:
                        found.setdefault(label, []).append(where + member.name)
                tail = window[-overlap:]


@pytest.mark.docker
def test_no_ca_password_or_token_is_in_any_layer(built, project, module_engine):
    needles = {f"ca{i}": body for i, body in enumerate(ca_bodies())}
    support = (ROOT / "src/gpuenv/render/files/healthcheck.py").read_bytes().splitlines()
    needles |= {"netrc": project["password"].encode(), "token": built["token"].encode(),
                "control": max(support, key=len)}   # a line of a file COPY'd into a layer: proves files are read
    save = subprocess.Popen([module_engine.client, "save", built["image"]], stdout=subprocess.PIPE)
    found: dict[str, list[str]] = {}
    try:
        _scan(save.stdout, needles, found, "")
    finally:
        save.stdout.close()
        save.wait()
    assert save.returncode == 0
    assert found.pop("control", None), "the scan read no file contents: it could not have found anything"
    assert found == {}, f"secrets found in the image: {found}"


@pytest.mark.docker
def test_pip_in_the_running_environment_works_behind_the_proxy(built, module_engine):
    container = f"{built['project']}-jupyter"
    pip = ["python3", "-m", "pip", "download", "--no-cache-dir", "--no-deps", "--dest", "/tmp/gpuenv-network-dl",
           "six"]
    run = module_engine.docker("exec", container, *pip, check=False, timeout=300)
    assert run.returncode == 0, run.stdout.decode()[-2000:] + run.stderr.decode()[-2000:]
    assert b"six-" in run.stdout


@pytest.mark.docker
def test_without_the_run_time_mount_the_image_does_not_trust_the_proxy(built, module_engine):
    name = module_engine.track_container(f"gpuenv-network-nomount-{secrets.token_hex(4)}")
    run = module_engine.docker("run", "--name", name, built["image"], "python3", "-m", "pip", "download",
                               "--no-cache-dir", "--no-deps", "--dest", "/tmp/x", "--retries", "0", "six",
                               check=False, timeout=300)
    assert run.returncode != 0
    assert b"CERTIFICATE_VERIFY_FAILED" in run.stdout + run.stderr


# --- doctor --network against real sources (no engine needed) ------------------------------------------

def doctor_network(folder: Path, spec: str) -> tuple[int, dict]:
    (folder / "gpuenv.toml").write_text(spec)
    run = gpuenv("doctor", "--network", "--json", "--skip", "net-docker-hub", cwd=folder, timeout=120)
    assert run.stdout.strip().startswith("{"), run.stderr
    return run.returncode, json.loads(run.stdout)


def by_source(data: dict, source: str) -> dict:
    return next(a for a in data["sources"] if a["source"]["id"] == source)


def test_doctor_network_pypi_is_ok_with_the_ca_and_a_tls_failure_without(tmp_path):
    if not ca_bodies():
        pytest.skip("no TLS-inspecting proxy on this host")
    code, data = doctor_network(tmp_path, 'name = "gpuenv-network-doctor"\n')
    pypi = by_source(data, "pip-index")
    assert pypi["status"] == "ok" and pypi["seconds"] is not None, pypi
    code, data = doctor_network(tmp_path, 'name = "gpuenv-network-doctor"\n[network]\nca_certificates = []\n')
    pypi = by_source(data, "pip-index")
    assert (pypi["status"], pypi["ca_fixes"]) == ("tls", True), pypi
    assert code == 1 and not data["ok"]
    found = next(f for f in data["findings"] if f["check"] == "net-pip-index")
    assert any('ca_certificates = "auto"' in line for line in found["fix"]) and found["failure_mode"] == 36


def test_doctor_network_a_name_that_does_not_resolve_is_blocked(tmp_path):
    code, data = doctor_network(tmp_path, '[network]\npip_extra_indexes = ["https://gpuenv-network.invalid/simple"]\n')
    extra = by_source(data, "pip-extra-index")
    assert extra["status"] == "blocked" and "resolve" in extra["detail"], extra
    assert code == 1


class _Slow(http.server.BaseHTTPRequestHandler):
    delay = 2.6

    def do_GET(self) -> None:             # noqa: N802 (the name http.server calls)
        time.sleep(self.delay)
        body = b"<html><body></body></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_doctor_network_a_server_that_delays_its_answer_is_slow(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple"
        code, data = doctor_network(tmp_path, f'[network]\npip_extra_indexes = ["{url}"]\n'
                                              'pip_trusted_hosts = ["127.0.0.1"]\n')
    finally:
        server.shutdown()
        server.server_close()
    extra = by_source(data, "pip-extra-index")
    assert extra["status"] == "slow" and extra["seconds"] > data["slow_after_s"], extra
    finding = next(f for f in data["findings"] if f["check"] == "net-pip-extra-index")
    assert finding["severity"] == "warning"
