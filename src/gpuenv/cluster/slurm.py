"""Slurm: the batch script of a job that runs the environment, the partition's GPUs, and the Slurm commands.

A job is a batch script that runs on the node in two steps:

  1. `gpuenv job-config EXPORT JOBDIR -- CMD` (cluster/node.py): the node's driver and GPUs are read there
     and checked against the image's labels (a misfit ends the job before its command, exit 3), and the
     job's config.json is written with the GPUs Slurm gave the job (SLURM_JOB_GPUS): Slurm adds no GPU
     device to a container, and the allocation is known only in the job.
  2. the OCI runtime (runc; GPUENV_OCI_RUNTIME names another) runs that bundle in the foreground; the
     script deletes the container when the job ends or is cancelled (scancel's SIGTERM), so nothing is
     left running.

Why not `srun --container`: Slurm 22.05 runs BUNDLE/rootfs whatever config.json's root says (and runc
refuses a symlinked rootfs), so a per-job config.json with the job's GPUs would need a copy of the rootfs
per job; it also replaces config.json's environment with the job's. The export's own bundle does run
under `srun --container` for a job that needs no GPU (README: Clusters).

Pure parts (the script, the GRES of `sinfo`) are tested without Slurm; `Slurm` runs the commands.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from gpuenv.errors import SchedulerError

COMMENT = "gpuenv:"                    # --comment of every job gpuenv submits: gpuenv:ENV


@dataclass(frozen=True)
class JobRequest:
    name: str                          # the environment's name
    export: Path                       # the folder `gpuenv export` wrote (shared with the nodes)
    command: tuple[str, ...]           # what runs (the image's entrypoint and CMD when none was given)
    gpus: int = 0
    partition: str = ""
    time: str = ""
    chdir: str = ""
    output: str = ""                   # the job's log file ("" = Slurm's default, slurm-%j.out in chdir)
    python: str = sys.executable       # the Python that has gpuenv, as the nodes see it
    jupyter: str = ""                  # "lab" or "notebook": the interactive Jupyter job (`up --on slurm`)


def gpu_lines(gpus: int) -> list[str]:
    """The #SBATCH lines that ask for `gpus` GPUs on one node: a generic resource (GRES) of type gpu, the
    form every Slurm since 2.x reads; none for 0."""
    return [f"#SBATCH --gres=gpu:{gpus}"] if gpus > 0 else []


def job_script(job: JobRequest) -> str:
    q = shlex.quote
    lines = ["#!/bin/sh", f"#SBATCH --job-name={q('gpuenv-' + job.name)}", f"#SBATCH --comment={q(COMMENT + job.name)}",
             "#SBATCH --nodes=1", "#SBATCH --ntasks=1"]
    lines += [f"#SBATCH --partition={q(job.partition)}"] * bool(job.partition)
    lines += [f"#SBATCH --time={q(job.time)}"] * bool(job.time)
    lines += [f"#SBATCH --chdir={q(job.chdir)}"] * bool(job.chdir)
    lines += [f"#SBATCH --output={q(job.output)}"] * bool(job.output)
    lines += gpu_lines(job.gpus)
    command = " ".join(q(c) for c in job.command)
    step = (f"--jupyter {q(job.jupyter)} \"$export_dir\" \"$job_dir\"" if job.jupyter
            else f"\"$export_dir\" \"$job_dir\" -- {command}")
    lines += [
        "# written by gpuenv submit: the node is checked, then the command runs in the environment's image",
        "set -eu",
        f"export_dir={q(str(job.export))}",
        'job_dir="$export_dir/jobs/$SLURM_JOB_ID"',
        'runtime="${GPUENV_OCI_RUNTIME:-runc}"',
        'state="${TMPDIR:-/tmp}/gpuenv-oci-$(id -u)"',
        'name="gpuenv-$SLURM_JOB_ID"',
        'ready=""',
        "trap '[ -z \"$ready\" ] || kill \"$ready\" 2>/dev/null || true; "
        "\"$runtime\" --root \"$state\" delete --force \"$name\" 2>/dev/null; rm -rf \"$job_dir\"' EXIT",
        "trap 'exit 143' TERM INT",
        f"{q(job.python)} -m gpuenv job-config {step}",
        '"$runtime" --root "$state" run --bundle "$job_dir" "$name" &',
        "pid=$!",
    ]
    if job.jupyter:                    # marks the job ready once Jupyter answers its token on the node
        lines += [f"{q(job.python)} -m gpuenv job-ready \"$job_dir\" &", "ready=$!"]
    lines += ["wait $pid"]
    return "\n".join(lines) + "\n"


def gres_of(sinfo: str) -> list[str]:
    """The generic resources of a partition's nodes (`sinfo -h -o %G` prints one line a node group;
    "(null)" when there are none)."""
    return [g for line in sinfo.splitlines() for g in line.strip().split(",") if g and g != "(null)"]


def has_gpus(gres: Sequence[str]) -> bool:
    return any(re.match(r"gpu(:|$)", g) for g in gres)


@dataclass(frozen=True)
class Job:
    id: str
    name: str               # the environment's (from the comment)
    state: str
    elapsed: str
    node: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "env": self.name, "state": self.state, "elapsed": self.elapsed, "node": self.node,
                "reason": self.reason}


SQUEUE_FORMAT = "%i|%T|%M|%N|%r|%k"


def parse_squeue(text: str) -> list[Job]:
    """`squeue -h -o %i|%T|%M|%N|%r|%k`: gpuenv's jobs only (their comment starts gpuenv:)."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", 5)
        if len(parts) == 6 and parts[5].startswith(COMMENT):
            job_id, state, elapsed, node, reason, comment = parts
            jobs.append(Job(job_id, comment[len(COMMENT):], state, elapsed, node, "" if reason == "None" else reason))
    return jobs


class Slurm:
    """The Slurm commands on PATH (sbatch, squeue, scancel, sinfo); SchedulerError when they are missing."""

    def __init__(self) -> None:
        missing = [t for t in ("sbatch", "squeue", "scancel", "sinfo", "srun") if shutil.which(t) is None]
        if missing:
            raise SchedulerError(f"Slurm's commands are not on PATH ({', '.join(missing)} missing): "
                                 "submit runs on a cluster's login node",
                                 "log in to the cluster's login node (or `module load slurm` there); Debian/Ubuntu "
                                 "have the client in the slurm-client package")

    def run(self, *argv: str, stdin: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> str:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, input=stdin, timeout=60,
                                  env={**os.environ, **env} if env else None)
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"{argv[0]} did not answer in 60 s", "is slurmctld up? `sinfo` says") from None
        if done.returncode != 0:
            said = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise SchedulerError(f"{' '.join(argv[:2])} failed (exit {done.returncode}): {said}",
                                 "`sinfo` and `scontrol show partition` show what the cluster offers")
        return done.stdout

    def partition_gres(self, partition: str) -> list[str]:
        return gres_of(self.run("sinfo", "-h", "-o", "%G", *(["-p", partition] if partition else [])))

    def default_partition(self) -> str:
        found = [p for p in self.run("sinfo", "-h", "-o", "%P").split() if p.endswith("*")]
        return found[0].rstrip("*") if found else ""

    def submit(self, script: str, env: Optional[Mapping[str, str]] = None) -> str:
        """sbatch reading the script from stdin, with `env` added to the environment it passes to the job
        (a secret goes there: never into the script or the command line); the job's id."""
        out = self.run("sbatch", "--parsable", stdin=script, env=env).strip()
        return out.split(";", 1)[0]

    def jobs(self, user: str) -> list[Job]:
        return parse_squeue(self.run("squeue", "-h", "-u", user, "-o", SQUEUE_FORMAT))

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.run("scancel", *job_ids)
