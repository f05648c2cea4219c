"""`gpuenv kb refresh` reads PaddlePaddle's and CuPy's projects, so their next releases plan without a new gpuenv.

A real HTTP index on 127.0.0.1 (PEP 691 JSON pages in a folder), the real CLI as a process, the user's table in a
temporary GPUENV_KB_DIR: a CuPy release that the shipped snapshot does not have appears in `matrix` and `plan`.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.kb import load_table
from gpuenv.kb.refresh import PROJECTS
from gpuenv.resolve.builds import published

ROOT = Path(__file__).resolve().parents[2]
NEW = "14.9.0"   # not on PyPI when the snapshot was taken


def test_refresh_reads_every_paddle_and_cupy_project_the_tables_name():
    named = {r["project"] for r in load_table("cupy")["package"]} | {"paddlepaddle", "paddlepaddle-gpu"}
    assert named <= set(PROJECTS)
    assert "cupy" not in PROJECTS   # a source distribution: no wheel to list
    assert all(published(p) for p in named), "the shipped snapshot lacks a project the tables name"


def _page(project: str, versions: list[str]) -> dict:
    files = [{"filename": f"{project.replace('-', '_')}-{v}-cp313-cp313-manylinux2014_x86_64.whl",
              "url": f"../../files/{project}-{v}.whl", "hashes": {}, "requires-python": ">=3.10"} for v in versions]
    return {"meta": {"api-version": "1.1"}, "name": project, "files": files}


@pytest.fixture()
def index(tmp_path: Path) -> Iterator[str]:
    page = tmp_path / "simple" / "cupy-cuda13x" / "index.json"
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps(_page("cupy-cuda13x", ["14.2.0", NEW])))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def send_head(self):  # the folder's index.json as the project page, with PEP 691's content type
            if self.path.rstrip("/").count("/") == 2:
                self.path = self.path.rstrip("/") + "/index.json"
            return super().send_head()

        def guess_type(self, path):
            return "application/vnd.pypi.simple.v1+json"

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def gpuenv(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_new_cupy_release_plans_after_a_refresh(index, tmp_path):
    env = {**os.environ, "GPUENV_KB_DIR": str(tmp_path / "kb"), "PIP_TRUSTED_HOST": "127.0.0.1"}
    before = gpuenv("plan", f"cupy-cuda13x=={NEW}", "--json", env=env)
    assert before.returncode == 3, before.stderr   # the shipped snapshot does not know it
    run = gpuenv("kb", "refresh", "--index", index, "--project", "cupy-cuda13x", "--json", env=env)
    assert run.returncode == 0, run.stderr
    matrix = gpuenv("matrix", "cupy-cuda13x", "--json", env=env)
    assert [r["version"] for r in json.loads(matrix.stdout)["versions"]] == [NEW, "14.2.0"]
    plan = gpuenv("plan", f"cupy-cuda13x=={NEW}", "--driver", "580.65.06", "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["packages"] == [f"cupy-cuda13x=={NEW}"] and data["cuda"].startswith("13.")
    assert data["python"] == "3.13"   # the new release's wheels
