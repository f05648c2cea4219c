"""Observing the host of a remote engine: the same OBSERVATIONS, run in one short-lived container there.

The container sees that host's root read-only at /host and runs each command with `chroot /host`,
so it uses that host's own nvidia-smi, ldconfig and files; its device rule lets nvidia-smi open
/dev/nvidia* (major 195). It needs an image with /bin/sh and chroot (busybox, Debian, Ubuntu,
Alpine...) already on that engine: GPUENV_PROBE_IMAGE names one, else the smallest fitting image there.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from typing import Iterable, Optional

from gpuenv.errors import EngineError
from gpuenv.host.observe import Observations, Output, commands

MARK = "@@gpuenv@@"
PREFERRED = re.compile(r"(^|/)(busybox|alpine|debian|ubuntu|gpuenv[^:]*)(:|$)")


def script(cmds: dict[str, str], root: str = "/host", scratch: str = "/tmp") -> str:
    """A sh script that runs each command in `root` (through chroot; "/" runs it here) and prints its
    output between markers; `scratch` is a writable folder outside that root."""
    enter = "" if root == "/" else f"chroot {root} "
    lines = []
    for name, cmd in cmds.items():
        quoted = "'" + cmd.replace("'", "'\"'\"'") + "'"
        lines.append(f"{enter}/bin/sh -c {quoted} >{scratch}/o 2>{scratch}/e; rc=$?; "
                     f"echo '{MARK} {name}'; cat {scratch}/o; "
                     f"if [ $rc != 0 ]; then cat {scratch}/e; fi; echo; echo \"{MARK} exit $rc\"")
    return "\n".join(lines) + "\n"


def split(text: str, where: str) -> Observations:
    """The container's output back into observations."""
    outputs = {}
    parts = re.split(rf"^{MARK} (\S+)\n", text, flags=re.M)
    for name, body in zip(parts[1::2], parts[2::2]):
        match = re.search(rf"\n?{MARK} exit (\d+)\s*$", body)
        if not match:
            continue
        outputs[name] = Output(body[:match.start()], int(match.group(1)))
    return Observations(outputs, where)


def probe_images(client: str, context: str = "") -> list[str]:
    """Images on the engine that can run the probe, smallest first, preferred names first."""
    done = subprocess.run([*_cli(client, context), "image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.Size}}"],
                          capture_output=True, text=True, timeout=30, check=False)
    rows = []
    for line in done.stdout.splitlines():
        ref, _, size = line.partition("\t")
        if "<none>" in ref:
            continue
        rows.append((0 if PREFERRED.search(ref) else 1, _bytes(size), ref))
    return [ref for *_, ref in sorted(rows)]


def _bytes(size: str) -> float:
    match = re.match(r"([\d.]+)\s*([kMGT]?B)", size.strip())
    if not match:
        return float("inf")
    scale = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[match.group(2)]
    return float(match.group(1)) * scale


def _cli(client: str, context: str) -> list[str]:
    """The docker command, naming a context when one is given (a host of several: `--hosts`)."""
    return [client, "--context", context] if context else [client]


def observe_remote(client: str, docker_root: str, image: Optional[str] = None, timeout: float = 60,
                   names: Optional[Iterable[str]] = None, context: str = "") -> Observations:
    """Run the observations `names` (None: every one) on the engine's host (the engine of docker context
    `context`, "" the CLI's own); raises EngineError when no container can do it."""
    candidates = [image] if image else ([os.environ["GPUENV_PROBE_IMAGE"]] if os.environ.get("GPUENV_PROBE_IMAGE")
                                        else probe_images(client, context)[:3])
    if not candidates:
        raise EngineError("cannot probe the remote engine's host: it has no image to run the probe in",
                          "load any small image with /bin/sh and chroot there (busybox, debian), "
                          "or name one with GPUENV_PROBE_IMAGE")
    text = script(commands(names, docker_root=docker_root))
    errors = []
    for ref in candidates:
        name = f"gpuenv-probe-{uuid.uuid4().hex[:10]}"
        argv = [*_cli(client, context), "run", "--rm", "--name", name, "--network", "none", "--label", "org.gpuenv.probe=1",
                "--volume", "/:/host:ro", "--device-cgroup-rule", "c 195:* rmw", "--security-opt", "label=disable",
                "--user", "0:0", "--entrypoint", "/bin/sh", ref, "-c", text]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, errors="replace")
        except subprocess.TimeoutExpired:
            subprocess.run([*_cli(client, context), "rm", "--force", name], capture_output=True, check=False)
            errors.append(f"{ref}: no answer within {timeout:g} s")
            continue
        if MARK in done.stdout:
            return split(done.stdout, f"the engine's host, through a container of {ref}")
        errors.append(f"{ref}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}")
    raise EngineError("cannot probe the remote engine's host through a container: " + "; ".join(errors),
                      "name an image with /bin/sh and chroot on that engine with GPUENV_PROBE_IMAGE")
