"""The interactive Jupyter job's parts on the node: its command, the port record the login node reads, and
the ready check against a real HTTP server that wants a token as Jupyter does."""

from __future__ import annotations

import json
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.cluster import jupyter
from gpuenv.cluster.export import record
from gpuenv.cluster.node import job_config
from gpuenv.cluster.runtime import ImageConfig, Settings
from gpuenv.errors import GpuenvError

TOKEN = "t0ken-of-the-job"


def test_jupyter_listens_on_the_nodes_loopback_on_the_port_given_and_never_moves() -> None:
    assert jupyter.command("lab", 41234) == ["jupyter", "lab", "--ip=127.0.0.1", "--port=41234", "--port-retries=0",
                                             "--no-browser"]
    assert jupyter.command("notebook", 1)[1] == "notebook"
    with pytest.raises(GpuenvError, match="not one of lab, notebook"):
        jupyter.command("lab; reboot", 1)


def test_the_free_port_is_free_on_loopback() -> None:
    port = jupyter.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))                          # would raise if something held it


def test_a_job_without_its_token_does_not_start_jupyter_open() -> None:
    with pytest.raises(GpuenvError, match="no GPUENV_JUPYTER_TOKEN"):
        jupyter.token_of({"JUPYTER_TOKEN": "the user's own, not handed by gpuenv"})
    assert jupyter.token_of({"GPUENV_JUPYTER_TOKEN": " abc\n"}) == "abc"


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"port": "80"}', '{"port": 0}', '{"port": 70000}',
                                  '{"port": true}'])
def test_a_record_not_of_gpuenvs_form_is_not_read(tmp_path: Path, text: str) -> None:
    (tmp_path / jupyter.RECORD).write_text(text)
    assert jupyter.read_record(tmp_path) is None


def test_the_job_writes_jupyters_command_and_token_into_its_private_config(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "bundle" / "rootfs").mkdir(parents=True)
    settings = Settings(1234, 1234, str(tmp_path / "ws"))
    (export / "gpuenv-export.json").write_text(json.dumps(record("img:1", "sha256:ab", ImageConfig(), settings)))
    job = tmp_path / "jobs" / "9"
    given = job_config(export, job, {"SLURM_JOB_ID": "9", "GPUENV_JUPYTER_TOKEN": TOKEN}, (), jupyter_mode="notebook")
    conf = json.loads((job / "config.json").read_text())
    port = given["port"]
    assert isinstance(port, int) and conf["process"]["args"] == jupyter.command("notebook", port)
    assert f"JUPYTER_TOKEN={TOKEN}" in conf["process"]["env"] and f"GPUENV_JUPYTER_PORT={port}" in conf["process"]["env"]
    assert not any(e.startswith("GPUENV_JUPYTER_TOKEN=") for e in conf["process"]["env"])
    assert stat.S_IMODE((job / "config.json").stat().st_mode) == 0o600 and stat.S_IMODE(job.stat().st_mode) == 0o700
    found = jupyter.read_record(job)
    assert found is not None and (found.port, found.ready) == (port, False)
    assert TOKEN not in (job / jupyter.RECORD).read_text()


class _Jupyterish(BaseHTTPRequestHandler):
    def do_GET(self) -> None:   # noqa: N802 (http.server's name)
        wanted = self.path == "/api/status" and self.headers.get("Authorization") == f"token {TOKEN}"
        self.send_response(200 if wanted else 403)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Jupyterish)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_the_job_is_marked_ready_once_jupyter_answers_its_token(tmp_path: Path, server: int) -> None:
    assert jupyter.answers(server, TOKEN) == 200 and jupyter.answers(server, "wrong") == 403
    jupyter.write_record(tmp_path, "node7", server, ready=False)
    assert jupyter.wait_ready(tmp_path, {"GPUENV_JUPYTER_TOKEN": TOKEN}, timeout=10)
    assert jupyter.read_record(tmp_path) == jupyter.Ready("node7", server, True)


def test_a_jupyter_that_refuses_the_token_is_never_ready(tmp_path: Path, server: int) -> None:
    jupyter.write_record(tmp_path, "node7", server, ready=False)
    assert not jupyter.wait_ready(tmp_path, {"GPUENV_JUPYTER_TOKEN": "wrong"}, timeout=1.5)
    assert jupyter.read_record(tmp_path) == jupyter.Ready("node7", server, False)
    assert jupyter.answers(jupyter.free_port(), TOKEN) == 0
