"""`gpuenv kb refresh` against real local indexes: real HTTP and HTTPS servers (a private CA made with the
openssl CLI), a real CONNECT proxy, real wheels (zip files) read by ranges or PEP 658, the real CLI as a
process, and the real loader reading what it wrote. Nothing is mocked; nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest

from gpuenv.kb import refresh, tables

# --- a package index in a folder -----------------------------------------------------------------


def make_wheel(filename: str, requires: list[str], padding: int = 0, extras: tuple[str, ...] = ()) -> bytes:
    """A real wheel: METADATA first, then `padding` incompressible bytes (so a whole-wheel read shows)."""
    name, version = filename.split("-")[:2]
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Provides-Extra: {e}\n" for e in extras)
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", metadata, compress_type=zipfile.ZIP_DEFLATED)
        wheel.writestr(f"{name}/_C.so", os.urandom(padding))
        wheel.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        wheel.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return buffer.getvalue()


TORCH_PINS = {
    "2.5.1": ['nvidia-cuda-runtime-cu12==12.4.127; platform_system == "Linux" and platform_machine == "x86_64"',
              'nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux" and platform_machine == "x86_64"'],
    "2.4.0": ['nvidia-cuda-runtime-cu12==12.1.105; platform_system == "Linux"',
              'nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux"', "filelock"],
}
BIG = 1 << 20


def build_index(root: Path) -> dict[str, int]:
    """simple/torch (PEP 691 JSON and HTML), simple/tensorflow-gpu (HTML only, as some mirrors); wheel sizes."""
    sizes = {}
    packages = root / "packages"
    packages.mkdir(parents=True)
    files = []
    for version, pins in TORCH_PINS.items():
        name = f"torch-{version}-cp312-cp312-manylinux1_x86_64.whl"
        data = make_wheel(name, pins, padding=BIG)
        (packages / name).write_bytes(data)
        sizes[name] = len(data)
        entry = {"filename": name, "url": f"../../packages/{name}", "requires-python": ">=3.8", "yanked": False,
                 "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
        if version == "2.5.1":  # PEP 658: the metadata beside the wheel, announced with its hash
            with zipfile.ZipFile(packages / name) as wheel:
                metadata = wheel.read(f"torch-{version}.dist-info/METADATA")
            (packages / f"{name}.metadata").write_bytes(metadata)
            entry["core-metadata"] = {"sha256": hashlib.sha256(metadata).hexdigest()}
        files.append(entry)
    others = [("torch-2.5.1-cp312-cp312-win_amd64.whl", False),
              ("torch-2.6.0rc1-cp312-cp312-manylinux1_x86_64.whl", False),  # a pre-release
              ("torch-2.3.0-cp312-cp312-manylinux1_x86_64.whl", "broken"),  # yanked
              ("torch-2.2.0-cp312-cp312-macosx_11_0_arm64.whl", False),
              ("torch-2.1.0.tar.gz", False)]
    for name, yanked in others:
        (packages / name).write_bytes(b"not used")
        files.append({"filename": name, "url": f"../../packages/{name}", "hashes": {}, "yanked": yanked})
    torch = root / "simple" / "torch"
    torch.mkdir(parents=True)
    (torch / "index.json").write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": "torch", "files": files}))
    (torch / "index.html").write_text("<html><body>" + "".join(
        f'<a href="{f["url"]}">{f["filename"]}</a>' for f in files if not f["yanked"]) + "</body></html>")
    tf = root / "simple" / "tensorflow-gpu"
    tf.mkdir(parents=True)
    (tf / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        '<a href="../../packages/tensorflow_gpu-1.2.1-cp36-cp36m-manylinux1_x86_64.whl#sha256=00">'
        "tensorflow_gpu-1.2.1-cp36-cp36m-manylinux1_x86_64.whl</a><br/>\n"
        '<a href="../../packages/tensorflow_gpu-1.2.1-cp27-cp27mu-manylinux1_x86_64.whl">'
        "tensorflow_gpu-1.2.1-cp27-cp27mu-manylinux1_x86_64.whl</a><br/>\n"
        '<a href="../../packages/tensorflow_gpu-2.4.0-cp38-cp38-manylinux2010_x86_64.whl" '
        'data-requires-python="&gt;=3.6">tensorflow_gpu-2.4.0-cp38-cp38-manylinux2010_x86_64.whl</a><br/>\n'
        '<a href="../../packages/tensorflow-gpu-2.12.0.tar.gz">tensorflow-gpu-2.12.0.tar.gz</a><br/>\n'
        "</body></html>\n")
    _jax_project(root, packages, sizes)
    return sizes


JAX_EXTRAS = ("cpu", "cuda", "cuda12_pip", "cuda12_local", "tpu")  # not cuda12, which the real jax 0.4.30 declares


def _jax_project(root: Path, packages: Path, sizes: dict[str, int]) -> None:
    """simple/jax (PEP 691): a pure wheel whose METADATA declares its extras (read by ranges), and an sdist-only 0.4.1."""
    name = "jax-0.4.30-py3-none-any.whl"
    data = make_wheel(name, ['jaxlib==0.4.30; extra == "cuda12_pip"'], padding=BIG, extras=JAX_EXTRAS)
    (packages / name).write_bytes(data)
    sizes[name] = len(data)
    (packages / "jax-0.4.1.tar.gz").write_bytes(b"not used")
    files = [{"filename": name, "url": f"../../packages/{name}", "requires-python": ">=3.9", "hashes": {}},
             {"filename": "jax-0.4.1.tar.gz", "url": "../../packages/jax-0.4.1.tar.gz", "hashes": {}}]
    jax = root / "simple" / "jax"
    jax.mkdir(parents=True)
    (jax / "index.json").write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": "jax", "files": files}))


@dataclass
class Served:
    path: str
    accept: str
    range: Optional[str]
    status: int
    sent: int


class Index:
    """A simple index served from a folder by http.server in a thread, over http or https."""

    def __init__(self, root: Path, tls: Optional[ssl.SSLContext] = None) -> None:
        self.root, self.log = root, []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                index.serve(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/simple"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        accept = handler.headers.get("Accept", "")
        wanted = handler.headers.get("Range")
        target = self.root / path.lstrip("/")
        status, body, kind, extra = 404, b"not found", "text/plain", {}
        if path.startswith("/redirect/"):  # to the same server under a name that is not trusted
            status, body, kind = 302, b"", "text/plain"
            extra["Location"] = f"http://localhost:{self.port}/simple/{path[len('/redirect/'):]}"
        elif path.endswith("/") and target.is_dir():
            if "application/vnd.pypi.simple.v1+json" in accept and (target / "index.json").exists():
                status, body, kind = 200, (target / "index.json").read_bytes(), "application/vnd.pypi.simple.v1+json"
            elif (target / "index.html").exists():
                status, body, kind = 200, (target / "index.html").read_bytes(), "text/html; charset=utf-8"
        elif target.is_file():
            data, kind = target.read_bytes(), "application/octet-stream"
            status, body = 200, data
            if wanted and wanted.startswith("bytes="):
                first, _, last = wanted[6:].partition("-")
                start = len(data) - int(last) if first == "" else int(first)
                end = len(data) - 1 if first == "" or last == "" else min(int(last), len(data) - 1)
                status, body = 206, data[max(start, 0): end + 1]
                extra["Content-Range"] = f"bytes {max(start, 0)}-{end}/{len(data)}"
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        for key, value in extra.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)
        self.log.append(Served(path, accept, wanted, status, len(body)))


# --- a CONNECT proxy -----------------------------------------------------------------------------


@dataclass
class Proxy:
    """A forward proxy for https (CONNECT only) in a thread; records every CONNECT; may refuse them all."""

    refuse: bool = False
    connects: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)  # Proxy-Authorization headers seen

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ")[:2]
            if method != b"CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.connects.append(target.decode())
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "proxy-authorization":
                    self.credentials.append(value.strip())
            if self.refuse:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.decode().rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                back.start()
                _pipe(conn, upstream)
                back.join(timeout=30)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A private CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to make a private CA")
    where = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=gpuenv test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (where / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return where


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("index")
    return root, build_index(root)


@pytest.fixture
def http_index(tree) -> Iterator[Index]:
    served = Index(tree[0])
    yield served
    served.close()


@pytest.fixture
def https_index(tree, pki) -> Iterator[Index]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    served = Index(tree[0], context)
    yield served
    served.close()


@pytest.fixture
def kb_dir(tmp_path, monkeypatch) -> Iterator[Path]:
    """GPUENV_KB_DIR for the CLI process and for the loader in this one."""
    folder = tmp_path / "kb"
    monkeypatch.setenv("GPUENV_KB_DIR", str(folder))
    tables.load_table.cache_clear()
    yield folder
    tables.load_table.cache_clear()


def gpuenv(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
             and k not in ("PIP_INDEX_URL", "PIP_TRUSTED_HOST")}
    return subprocess.run([sys.executable, "-m", "gpuenv", "kb", "refresh", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**clean, **(env or {})})


def write_spec(folder: Path, **network: object) -> Path:
    lines = ["[network]"] + [f"{key} = {json.dumps(value)}" for key, value in network.items()]
    path = folder / "gpuenv.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def local_rows(index: Index) -> dict[tuple[str, str], dict]:
    rows = tables.load_table("pypi")["release"]
    return {(r["project"], r["version"]): r for r in rows if str(index.port) in r["source"] + r.get("note", "")}


PROJECTS = ("--project", "torch", "--project", "tensorflow-gpu", "--project", "mxnet-cu90")


# --- tests ---------------------------------------------------------------------------------------


def test_plain_http_to_a_trusted_host(http_index, kb_dir, tmp_path, tree):
    spec = write_spec(tmp_path, pip_index=http_index.url, pip_trusted_hosts=["127.0.0.1"])
    run = gpuenv("--file", str(spec), "--json", *PROJECTS, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["index"] == http_index.url and report["index_origin"] == "network.pip_index"
    assert report["projects"] == ["torch", "tensorflow-gpu"] and report["missing"] == ["mxnet-cu90"]
    assert report["warnings"] == []  # an MXNet variant the index lacks is no news
    assert report["file"] == str(kb_dir / "pypi.json") and report["retrieved"] == dt.date.today().isoformat()
    assert report["read"]["pages_json"] == 1 and report["read"]["pages_html"] == 1
    assert (report["read"]["metadata_pep658"], report["read"]["metadata_range"]) == (1, 1)

    rows = local_rows(http_index)  # through the real loader, which prefers the table in GPUENV_KB_DIR
    assert sorted(rows) == [("tensorflow-gpu", "1.2.1"), ("tensorflow-gpu", "2.12.0"), ("tensorflow-gpu", "2.4.0"),
                            ("torch", "2.1.0"), ("torch", "2.4.0"), ("torch", "2.5.1")]
    # no yanked 2.3.0, rc 2.6.0rc1, macOS-only 2.2.0; the sdist-only releases as rows without Pythons
    assert rows["torch", "2.1.0"]["sdist_only"] is True and rows["torch", "2.1.0"]["python"] == []
    assert rows["tensorflow-gpu", "2.12.0"]["sdist_only"] is True
    assert rows["torch", "2.5.1"]["cuda"] == "12.4" and rows["torch", "2.5.1"]["cudnn"] == "9.1.0.70"  # PEP 658
    assert rows["torch", "2.4.0"]["cuda"] == "12.1"  # from the wheel by ranges
    assert rows["torch", "2.5.1"]["python"] == ["3.12"] and rows["torch", "2.5.1"]["requires_python"] == ">=3.8"
    assert rows["tensorflow-gpu", "1.2.1"]["python"] == ["2.7", "3.6"]
    assert rows["tensorflow-gpu", "2.4.0"]["requires_python"] == ">=3.6"
    row = rows["torch", "2.5.1"]
    assert row["source"] == "https://pypi.org/simple/torch/"  # the loader wants https: what the mirror copies...
    assert row["note"] == f"read from {http_index.url}/torch/ (a plain-http mirror)"  # ...and what was read
    assert not any(p == "mxnet-cu90" for p, _ in rows)
    assert refresh.snapshot_date() == dt.date.today()

    # never a whole wheel: every wheel request asked for a range, and far less than the wheel came back
    sizes = tree[1]
    for name, size in sizes.items():
        served = [s for s in http_index.log if s.path.endswith(name)]
        assert all(s.range and s.status == 206 for s in served)
        assert sum(s.sent for s in served) < size / 2
    assert not [s for s in http_index.log if s.path.endswith("torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl")]
    assert any("vnd.pypi.simple.v1+json" in s.accept for s in http_index.log if s.path == "/simple/torch/")


def test_plain_http_to_an_untrusted_host_is_refused(http_index, kb_dir, tmp_path):
    run = gpuenv("--index", http_index.url, *PROJECTS, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "not a trusted host" in run.stderr and "pip_trusted_hosts" in run.stderr
    assert http_index.log == [] and not (kb_dir / "pypi.json").exists()


def test_https_with_a_private_ca(https_index, pki, kb_dir, tmp_path):
    kb_dir.mkdir()
    old = kb_dir / "pypi.json"
    old.write_text("the old table\n")
    spec = write_spec(tmp_path, pip_index=https_index.url)
    run = gpuenv("--file", str(spec), "--json", *PROJECTS, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    error = json.loads(run.stdout)["error"]
    assert error["type"] == "IndexTlsError" and "TLS verification of 127.0.0.1 failed" in error["message"]
    assert "network.ca_certificates" in error["hint"] and "PIP_CERT" in error["hint"]
    assert old.read_text() == "the old table\n"  # a failed refresh leaves the old table as it was
    assert [p.name for p in kb_dir.iterdir()] == ["pypi.json"]

    shutil.copy(pki / "ca.crt", tmp_path / "corp-ca.crt")
    spec = write_spec(tmp_path, pip_index=https_index.url, ca_certificates=["corp-ca.crt"])  # relative to the spec
    run = gpuenv("--json", *PROJECTS, cwd=tmp_path)  # ./gpuenv.toml is read without --file
    assert run.returncode == 0, run.stderr
    rows = local_rows(https_index)
    assert rows["torch", "2.5.1"]["source"] == f"{https_index.url}/torch/" and "note" not in rows["torch", "2.5.1"]
    assert rows["torch", "2.4.0"]["cuda"] == "12.1"


def test_pip_cert_from_the_environment(https_index, pki, kb_dir, tmp_path):
    run = gpuenv("--index", https_index.url, "--project", "torch", cwd=tmp_path, env={"PIP_CERT": str(pki / "ca.crt")})
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stdout and f"{https_index.url} (--index)" in run.stdout


def test_the_proxy_of_the_spec_is_used(https_index, pki, kb_dir, tmp_path):
    proxy = Proxy()
    try:
        spec = write_spec(tmp_path, pip_index=https_index.url, https_proxy=proxy.url,
                          ca_certificates=[str(pki / "ca.crt")])
        run = gpuenv("--file", str(spec), "--project", "torch", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert f"127.0.0.1:{https_index.port}" in proxy.connects  # the page and the wheels went through it
        assert len(proxy.connects) >= 3
        assert local_rows(https_index)["torch", "2.5.1"]["cuda"] == "12.4"
    finally:
        proxy.close()


def test_proxy_credentials_go_to_the_proxy_only(https_index, pki, kb_dir, tmp_path):
    proxy = Proxy()
    try:
        url = proxy.url.replace("http://", "http://gpu%40lab:s3cret@")
        spec = write_spec(tmp_path, pip_index=https_index.url, https_proxy=url, ca_certificates=[str(pki / "ca.crt")])
        run = gpuenv("--file", str(spec), "--project", "torch", "--json", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert proxy.credentials and set(proxy.credentials) == {"Basic " + base64.b64encode(b"gpu@lab:s3cret").decode()}
        assert "s3cret" not in run.stdout and "s3cret" not in (kb_dir / "pypi.json").read_text()
    finally:
        proxy.close()


def test_a_redirect_to_an_untrusted_plain_http_host_is_refused(http_index, kb_dir, tmp_path):
    spec = write_spec(tmp_path, pip_index=f"http://127.0.0.1:{http_index.port}/redirect",
                      pip_trusted_hosts=["127.0.0.1"])
    run = gpuenv("--file", str(spec), "--project", "torch", "--json", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    error = json.loads(run.stdout)["error"]
    assert error["type"] == "InsecureIndex" and "localhost is not a trusted host" in error["message"]
    assert [s.path for s in http_index.log] == ["/redirect/torch/"]


def test_the_proxy_of_the_environment_and_no_proxy(https_index, pki, kb_dir, tmp_path):
    proxy = Proxy()
    try:
        env = {"HTTPS_PROXY": proxy.url, "PIP_CERT": str(pki / "ca.crt")}
        run = gpuenv("--index", https_index.url, "--project", "torch", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        assert proxy.connects and set(proxy.connects) == {f"127.0.0.1:{https_index.port}"}
        before = len(proxy.connects)
        env["NO_PROXY"] = "127.0.0.1"
        run = gpuenv("--index", https_index.url, "--project", "torch", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        assert len(proxy.connects) == before
    finally:
        proxy.close()


def test_a_proxy_that_refuses(https_index, pki, kb_dir, tmp_path):
    proxy = Proxy(refuse=True)
    try:
        spec = write_spec(tmp_path, pip_index=https_index.url, https_proxy=proxy.url,
                          ca_certificates=[str(pki / "ca.crt")])
        run = gpuenv("--file", str(spec), "--project", "torch", "--json", cwd=tmp_path)
        assert run.returncode == 1 and "Traceback" not in run.stderr
        error = json.loads(run.stdout)["error"]
        assert error["type"] == "ProxyError" and "403" in error["message"] and "https_proxy" in error["hint"]
    finally:
        proxy.close()
    run = gpuenv("--file", str(spec), "--project", "torch", "--json", cwd=tmp_path)  # nothing listens there now
    assert run.returncode == 1 and json.loads(run.stdout)["error"]["type"] == "ProxyError"


def test_an_index_without_the_projects_and_one_that_is_down(http_index, kb_dir, tmp_path):
    trusted = write_spec(tmp_path, pip_index=http_index.url + "/nothing-here", pip_trusted_hosts=["127.0.0.1"])
    run = gpuenv("--file", str(trusted), "--json", cwd=tmp_path)
    assert run.returncode == 2
    error = json.loads(run.stdout)["error"]
    assert error["type"] == "IndexNotFound" and "PEP 503" in error["hint"]

    run = gpuenv("--file", str(write_spec(tmp_path, pip_index=http_index.url, pip_trusted_hosts=["127.0.0.1"])),
                 "--json", "--project", "torch", "--project", "no-such-framework", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["warnings"] == ["no-such-framework: not on the index"]

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run = gpuenv("--index", f"https://127.0.0.1:{port}/simple", "--project", "torch", cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"cannot reach https://127.0.0.1:{port}/simple/torch/" in run.stderr and "hint:" in run.stderr


def test_out_and_the_rows_kept_for_projects_not_read(http_index, kb_dir, tmp_path):
    out = tmp_path / "snapshot.json"
    kept = {"project": "jax", "version": "0.4.33", "python": ["py3"], "source": "https://pypi.org/simple/jax/",
            "retrieved": "2026-01-02"}
    stale = {**kept, "project": "torch", "version": "0.0.1"}
    out.write_text(refresh.render([kept, stale], {"retrieved": "2026-01-02"}))
    spec = write_spec(tmp_path, pip_index=http_index.url, pip_trusted_hosts=["127.0.0.1"])
    run = gpuenv("--file", str(spec), "--out", str(out), "--project", "torch", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["kept"] == ["jax"]
    data = json.loads(out.read_text())
    assert [(r["project"], r["version"]) for r in data["release"]] == [("jax", "0.4.33"), ("torch", "2.1.0"),
                                                                       ("torch", "2.4.0"), ("torch", "2.5.1")]
    assert data["meta"]["index"] == http_index.url and data["meta"]["retrieved"] == dt.date.today().isoformat()
    assert not kb_dir.exists()  # --out wrote there, not to the user's table
    tables.parse_table("pypi", (out.read_text(), "json"))


def test_the_extras_a_release_declares_and_its_sdist_only_releases(http_index, kb_dir, tmp_path, tree):
    spec = write_spec(tmp_path, pip_index=http_index.url, pip_trusted_hosts=["127.0.0.1"])
    run = gpuenv("--file", str(spec), "--json", "--project", "jax", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["read"]["metadata_range"] == 1  # the pure wheel's METADATA, by ranges
    rows = local_rows(http_index)
    assert rows["jax", "0.4.30"]["extras"] == ["cpu", "cuda", "cuda12-pip", "cuda12-local", "tpu"]
    assert rows["jax", "0.4.1"] == {**rows["jax", "0.4.1"], "python": [], "sdist_only": True}
    assert "extras" not in rows["jax", "0.4.1"]
    served = [s for s in http_index.log if s.path.endswith("jax-0.4.30-py3-none-any.whl")]
    assert served and all(s.range and s.status == 206 for s in served)
    assert sum(s.sent for s in served) < tree[1]["jax-0.4.30-py3-none-any.whl"] / 2  # never the whole wheel

    # the planner takes the extras from this table, not from gpuenv's code: jax 0.4.30 here declares no cuda12
    def plan(request: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gpuenv", "plan", request, "--json"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "GPUENV_KB_DIR": str(kb_dir)}, cwd=tmp_path)
    refused = plan("jax[cuda12]==0.4.30")
    assert refused.returncode == 3, refused.stdout
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "no-such-version" and "not [cuda12]" in error["message"]
    assert "jax[cuda12_pip]==0.4.30" in error["alternatives"]
    assert json.loads(plan("jax[cuda12_pip]==0.4.30").stdout)["packages"][0] == "jax[cuda12_pip]==0.4.30"
