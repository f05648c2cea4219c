"""The other runtimes HPC clusters run images with, and the commands that hand them the environment's image:
NVIDIA's enroot (a squashfs file; pyxis gives Slurm `srun --container-image`) and Apptainer (a SIF file;
`--nv` brings the driver in). gpuenv does not run them: it says what would run, and whether the tool is
on this host's PATH."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Runtime:
    tool: str
    present: bool
    commands: tuple[str, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "present": self.present, "commands": list(self.commands), "note": self.note}


def runtimes(image: str, workspace: str, mount: str) -> list[Runtime]:
    q = shlex.quote
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", image.rsplit("/", 1)[-1]).strip("-") or "env"
    binds = f"{workspace}:{mount}"
    enroot = (f"enroot import -o {q(stem + '.sqsh')} {q('dockerd://' + image)}",
              f"srun --container-image=./{q(stem + '.sqsh')} --container-mounts={q(binds)} "
              f"--container-workdir={q(mount)} --gres=gpu:1 nvidia-smi")
    apptainer = (f"apptainer build {q(stem + '.sif')} {q('docker-daemon://' + image)}",
                 f"apptainer exec --nv --bind {q(binds)} --pwd {q(mount)} {q(stem + '.sif')} nvidia-smi")
    return [Runtime("enroot", shutil.which("enroot") is not None, enroot,
                    "pyxis (Slurm's plugin for enroot) runs the .sqsh with srun --container-image; enroot also "
                    "imports from a registry: gpuenv push, then enroot import docker://REGISTRY#IMAGE"),
            Runtime("apptainer", shutil.which("apptainer") is not None, apptainer,
                    "--nv mounts the node's driver and GPUs; apptainer build also reads docker://REGISTRY/IMAGE "
                    "after gpuenv push")]
