"""The interactive Jupyter job (`gpuenv up --on slurm`): on its node, the job picks a free port on the node's
127.0.0.1, runs the image's Jupyter there with the token gpuenv handed it, and marks itself ready in
JOBDIR/jupyter.json once Jupyter answers that token; the login node reads that file (the export folder is
shared with the nodes) and reports the node, the port and the SSH tunnel.

The token travels in the job's environment (GPUENV_JUPYTER_TOKEN, set for sbatch by `up`, never in the job
script or on a command line): on the node it goes into the container's environment through config.json
(mode 600 in a folder of mode 700). jupyter.json holds no secret.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from gpuenv.errors import GpuenvError

TOKEN_VARIABLE = "GPUENV_JUPYTER_TOKEN"   # the job's environment -> JUPYTER_TOKEN in the container
RECORD = "jupyter.json"
MODES = ("lab", "notebook")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # 127.0.0.1: never through a proxy


def free_port() -> int:
    """A port nothing listens on at the node's 127.0.0.1 now (Jupyter takes it a moment later and, with
    --port-retries=0, fails rather than moving to another one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(mode: str, port: int) -> list[str]:
    """The image's Jupyter on the node's 127.0.0.1 (the container has the node's network): the command line
    wins over /etc/jupyter's listen-on-all of a gpuenv image, which is for a container's own network."""
    if mode not in MODES:
        raise GpuenvError(f"Jupyter mode {mode!r} is not one of {', '.join(MODES)}", "set [access.jupyter] mode")
    return ["jupyter", mode, "--ip=127.0.0.1", f"--port={port}", "--port-retries=0", "--no-browser"]


def token_of(env: Mapping[str, str]) -> str:
    token = env.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise GpuenvError(f"the job has no {TOKEN_VARIABLE} in its environment: Jupyter would start without a token",
                          "start it with `gpuenv up --on slurm` (it hands the job a token); on a cluster where "
                          "SBATCH_EXPORT=NONE, unset it for that command")
    return token


@dataclass(frozen=True)
class Ready:
    node: str
    port: int
    ready: bool


def write_record(job_dir: Path, node: str, port: int, ready: bool) -> None:
    """JOBDIR/jupyter.json, replaced whole (a reader never sees half of it)."""
    partial = job_dir / f".{RECORD}.partial"
    partial.write_text(json.dumps({"node": node, "port": port, "ready": ready}) + "\n")
    os.replace(partial, job_dir / RECORD)


def read_record(job_dir: Path) -> Optional[Ready]:
    """What the job wrote (None while it has not); a file not of gpuenv's form is None too."""
    try:
        data = json.loads((job_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    port = data.get("port") if isinstance(data, dict) else None
    if type(port) is not int or not 0 < port < 65536:     # bool is an int too
        return None
    return Ready(str(data.get("node") or ""), port, data.get("ready") is True)


def answers(port: int, token: str) -> int:
    """The HTTP status of /api/status on 127.0.0.1:PORT with the token (0: nothing answers)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                     headers={"Authorization": f"token {token}"})
    try:
        with _OPENER.open(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


def wait_ready(job_dir: Path, env: Mapping[str, str], timeout: float = 900) -> bool:
    """On the node, beside Jupyter: mark the job ready once Jupyter answers its token (200)."""
    token = token_of(env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read_record(job_dir)
        if found is not None and answers(found.port, token) == 200:
            write_record(job_dir, found.node, found.port, True)
            return True
        time.sleep(0.5)
    return False
