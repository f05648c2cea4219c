"""The first step of a job on its node (`gpuenv job-config EXPORT JOBDIR`): the node's driver and GPUs are
read there and checked against the image's labels, then the job's bundle is written: a config.json (mode
600) whose root is the export's shared rootfs, with the GPUs Slurm gave this job and the job's command.

The job's GPUs: SLURM_JOB_GPUS (the node's GPU indexes Slurm allocated), else CUDA_VISIBLE_DEVICES (indexes
or UUIDs); neither set means the job has no GPU, and the container gets none.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Mapping, Optional, Sequence

from gpuenv.cluster import fit, jupyter
from gpuenv.cluster.export import read_record
from gpuenv.cluster.runtime import GpuFiles, config, gpu_files
from gpuenv.errors import BadInput, GpuenvError
from gpuenv.host import nvidia
from gpuenv.host.driver_files import driver_files
from gpuenv.host.nvidia import DriverState
from gpuenv.host.observe import Observations, observe_local

NODE_OBSERVATIONS = ("nvidia-smi-q.xml", "nvidia-smi-query-gpu.csv", "proc-driver-nvidia-version.txt",
                     "ldconfig-p.txt", "ldconfig-resolved.txt", "nvidia-tools.txt", "dev-nvidia.txt")


def allocated(env: Mapping[str, str]) -> Optional[list[str]]:
    """The GPUs Slurm gave the job (indexes or UUIDs), [] for none, from its variables."""
    for name in ("SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = env.get(name, "").strip()
        if value:
            return [] if value in ("NoDevFiles", "-1") else [v.strip() for v in value.split(",") if v.strip()]
    return []


def minors(driver: DriverState, wanted: list[str]) -> set[int]:
    """The /dev/nvidiaN minors of the GPUs `wanted` names (index or UUID)."""
    found = set()
    for want in wanted:
        for gpu in driver.gpus:
            if want in (str(gpu.index), gpu.uuid):
                found.add(gpu.minor if gpu.minor is not None else gpu.index)
    return found


def job_config(export: Path, job_dir: Path, env: Mapping[str, str], command: Sequence[str],
               obs: Optional[Observations] = None, jupyter_mode: str = "") -> dict[str, object]:
    """Check the node and write JOBDIR/config.json; what was given, as a dict. With `jupyter_mode` the
    command is the image's Jupyter on a free port of the node's 127.0.0.1, with the job's token
    (cluster/jupyter.py), and JOBDIR/jupyter.json says the port."""
    _, image, settings = read_record(export)
    extra: list[str] = []
    port = 0
    if jupyter_mode:
        token = jupyter.token_of(env)
        port = jupyter.free_port()
        command = jupyter.command(jupyter_mode, port)
        extra = [f"JUPYTER_TOKEN={token}", f"GPUENV_JUPYTER_PORT={port}"]
    wanted = allocated(env)
    observed = obs if obs is not None else (observe_local(NODE_OBSERVATIONS) if fit.needs_gpu(image) or wanted
                                            else None)
    driver = nvidia.from_observations(observed) if observed is not None else DriverState()
    if fit.needs_gpu(image):
        fit.check(image, driver, f"node {socket.gethostname()}")
    gpu = GpuFiles()
    if wanted and observed is not None:
        gpu = gpu_files(driver_files(observed, driver.version), minors(driver, wanted))
        if not gpu.any:
            raise GpuenvError(f"Slurm gave this job GPU(s) {','.join(wanted)}, but node {socket.gethostname()} "
                              f"shows no such NVIDIA device ({driver.error or 'driver ' + str(driver.version)})",
                              "tell the cluster's admins (gres.conf and the node's /dev/nvidia* disagree); "
                              "`gpuenv doctor` on the node says what it sees")
    rootfs = export / "bundle" / "rootfs"
    if not rootfs.is_dir():
        raise BadInput(f"{rootfs} is missing", "export again: gpuenv export -o FOLDER --force")
    data = config(image, settings, gpu, command, rootfs=str(rootfs.resolve()))
    slurm_vars = [f"{k}={v}" for k, v in sorted(env.items()) if k.startswith("SLURM_") and "\0" not in v]
    data["process"]["env"] += slurm_vars + extra            # the job's own (SLURM_JOB_ID...), for the command
    data["linux"]["cgroupsPath"] = f"gpuenv-{env.get('SLURM_JOB_ID', 'job')}"   # inside the job's cgroup
    job_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    _private(job_dir / "config.json", json.dumps(data, indent=2) + "\n")
    if port:
        jupyter.write_record(job_dir, socket.gethostname(), port, ready=False)
    return {"node": socket.gethostname(), "driver": driver.version, "gpus": gpu.visible or "none",
            "config": str(job_dir / "config.json"), "port": port or None}


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
