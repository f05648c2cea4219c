"""The GPU smoke test: a short-lived container, in the best GPU mode found, that lists the GPUs and runs
a small computation on each (doctor/smoke_program.py). It needs an image with python3 on the engine:
the one asked for (--smoke-image, GPUENV_SMOKE_IMAGE), else the first of the engine's images that has
python3, preferring names that suggest one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Optional

from gpuenv.host import access
from gpuenv.host.probe import HostReport

LIKELY_PYTHON = re.compile(r"python|pytorch|torch|tensorflow|jupyter|cuda|gpuenv|conda|ubuntu|debian", re.I)


@dataclass(frozen=True)
class SmokeResult:
    mode: str
    image: Optional[str]
    ran: bool
    ok: bool
    detail: str                          # what failed, or a one-line summary
    gpus: list[dict[str, Any]] = field(default_factory=list)
    nvidia_smi: str = ""
    command: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def program() -> str:
    return resources.files("gpuenv.doctor").joinpath("smoke_program.py").read_text()


def docker_argv(report: HostReport, image: str, name: str) -> list[str]:
    """`docker run` for the smoke test in the report's best mode; the program comes on stdin."""
    args = access.run_args(report.mode.name, report.driver, report.files)
    argv = [report.engine.client or "docker", "run", "--rm", "-i", "--name", name, "--network", "none",
            "--label", "org.gpuenv.smoke=1", "--user", "0:0", *args.flags]
    if report.system.selinux == "enforcing":
        argv += ["--security-opt", "label=disable"]
    for key, value in args.env:
        argv += ["--env", f"{key}={value}"]
    exports = "".join(f'export {k}="{v}${{{k}:+:${k}}}"; ' for k, v in args.prepend)
    return argv + ["--entrypoint", "/bin/sh", image, "-c", exports + "exec python3 -"]


def candidate_images(client: str) -> list[str]:
    done = subprocess.run([client, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                          text=True, timeout=30, check=False)
    refs = [r for r in done.stdout.split() if "<none>" not in r]
    return sorted(refs, key=lambda r: 0 if LIKELY_PYTHON.search(r) else 1)


def has_python(client: str, image: str) -> bool:
    done = subprocess.run([client, "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c",
                           "command -v python3"], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0


def pick_image(client: str, asked: Optional[str]) -> Optional[str]:
    chosen = asked or os.environ.get("GPUENV_SMOKE_IMAGE")
    if chosen:
        return chosen
    return next((ref for ref in candidate_images(client)[:5] if has_python(client, ref)), None)


def run_smoke(report: HostReport, image: Optional[str] = None, timeout: float = 300) -> SmokeResult:
    mode = report.mode.name
    client = report.engine.client or "docker"
    chosen = pick_image(client, image)
    if chosen is None:
        return SmokeResult(mode, None, False, False, "no image with python3 on the engine to run it in")
    name = f"gpuenv-smoke-{uuid.uuid4().hex[:10]}"
    argv = docker_argv(report, chosen, name)
    try:
        done = subprocess.run(argv, input=program(), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        subprocess.run([client, "rm", "--force", name], capture_output=True, check=False)
        return SmokeResult(mode, chosen, True, False, f"no answer within {timeout:g} s", command=tuple(argv))
    return parse_output(mode, chosen, done.returncode, done.stdout, done.stderr, tuple(argv))


def parse_output(mode: str, image: str, code: int, stdout: str, stderr: str,
                 command: tuple[str, ...] = ()) -> SmokeResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("@@gpuenv-smoke@@")), None)
    if line is None:
        said = (stderr.strip() or stdout.strip() or f"exit {code}").splitlines()[-1]
        return SmokeResult(mode, image, True, False, f"the container failed: {said}", command=command)
    data = json.loads(line[len("@@gpuenv-smoke@@"):])
    gpus = data.get("gpus", [])
    if data.get("error") or not gpus:
        return SmokeResult(mode, image, True, False, data.get("error") or "the container sees no GPU", gpus,
                           data.get("nvidia_smi", ""), command)
    failed = [g for g in gpus if not g.get("ok")]
    if failed:
        first = failed[0]
        return SmokeResult(mode, image, True, False, f"GPU {first['index']}: "
                           f"{first.get('error') or str(first.get('wrong')) + ' wrong results'}", gpus,
                           data.get("nvidia_smi", ""), command)
    summary = ", ".join(f"GPU {g['index']} {g['name']} (cc {g['cc']}): saxpy of {g['n']} ok in {g['kernel_ms']} ms"
                        for g in gpus)
    return SmokeResult(mode, image, True, True, summary, gpus, data.get("nvidia_smi", ""), command)
