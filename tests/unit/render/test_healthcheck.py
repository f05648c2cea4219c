"""The container's health check (render/files/healthcheck.py), run as Docker runs it, against a real
HTTP server that asks for a token as the kernel gateway does: it authenticates with the token from the
environment (a refusal would be a warning in the server's log every 10 s), never from its command line.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parents[3] / "src/gpuenv/render/files/healthcheck.py"
TOKEN = "5e" * 24


class Gateway(http.server.BaseHTTPRequestHandler):
    """GET /api: 200 with `Authorization: token TOKEN`, else 401; every request is remembered."""

    seen: list[tuple[str, str, int]] = []

    def do_GET(self):
        status = 200 if self.headers.get("Authorization") == f"token {TOKEN}" and self.path == "/api" else 401
        self.seen.append((self.path, self.headers.get("Authorization", ""), status))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    Gateway.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def check(port: int, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("KG_AUTH_TOKEN", "JUPYTER_TOKEN")}
    return subprocess.run([sys.executable, str(CHECK), "http", str(port)], env={**clean, **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("variable", ["KG_AUTH_TOKEN", "JUPYTER_TOKEN"])
def test_the_check_authenticates_with_the_token_from_the_environment(server, variable):
    run = check(server.server_port, **{variable: TOKEN})
    assert run.returncode == 0, run.stderr
    assert Gateway.seen == [("/api", f"token {TOKEN}", 200)]     # one call, authenticated: nothing refused


def test_a_refused_check_is_unhealthy_and_says_why(server):
    run = check(server.server_port, KG_AUTH_TOKEN="0" * 48)
    assert run.returncode == 1 and "401" in run.stderr, run.stderr
    assert TOKEN not in run.stderr


def test_a_server_that_does_not_answer_is_unhealthy(server):
    port = server.server_port
    server.shutdown()
    server.server_close()
    run = check(port, KG_AUTH_TOKEN=TOKEN)
    assert run.returncode == 1 and "does not answer" in run.stderr
