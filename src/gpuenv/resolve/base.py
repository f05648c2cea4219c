"""Choosing the base image: an nvidia/cuda tag when a framework needs system CUDA, a slim Python image
when every framework brings CUDA in its wheels, so that CUDA never ships twice by gpuenv's choice.
A deleted tag falls back to a newer patch of the same CUDA that still exists, else to building the
tag locally from NVIDIA's end-of-life recipe; either way the plan says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, Optional

from gpuenv.errors import ImpossibleRequest
from gpuenv.kb import load_table
from gpuenv.kb.tables import Row
from gpuenv.resolve import nvidia
from gpuenv.resolve.builds import Build
from gpuenv.resolve.provided import Provided, recognise
from gpuenv.resolve.request import Target
from gpuenv.resolve.versions import V, major, major_minor, minor_key

# The nvidia/cuda tag's status on Docker Hub (kb cuda_images.toml): "eol" is scheduled for deletion,
# "deleted" is gone from Docker Hub (a registry mirror may have kept it: BaseBuild).
# A slim base, a spec's own base and a base built here are "available".
TagStatus = Literal["available", "eol", "deleted"]

# How a base no registry serves is to be made: a deleted nvidia/cuda tag from NVIDIA's end-of-life recipe.
# Only said (plan JSON, reasons): nothing builds it yet (docs/decisions.md); a registry mirror that kept the
# tag, or `base`, is the way.
BaseBuild = Literal["nvidia-eol-recipe"]
Flavor = Literal["runtime", "devel"]      # nvidia/cuda flavors gpuenv plans on (the toolkit level)

_STATUS_RANK: dict[TagStatus, int] = {"available": 0, "eol": 1, "deleted": 2}


@dataclass(frozen=True)
class Base:
    image: str                          # what FROM says: "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    os: str                             # "ubuntu22.04", "debian12"; the spec's own base: "(unknown)" or
                                        # "(from the image)"
    python_in_base: Optional[str]       # the python3 the base OS/image ships
    cuda: Optional[str] = None          # system CUDA (major.minor), None for a slim base
    toolkit: Optional[str] = None       # "8.0.61"
    cudnn: Optional[str] = None         # cuDNN inside, "5.1.10"
    status: TagStatus = "available"
    build: Optional[BaseBuild] = None   # a deleted tag's recipe; None: a registry serves it
    reasons: tuple[str, ...] = field(default=())

    def min_driver(self) -> Optional[str]:
        return nvidia.toolkit_min_driver(self.toolkit) if self.toolkit else None


@lru_cache(maxsize=None)
def _os_python() -> dict[str, str]:
    return {r["os"]: r["python"] for r in load_table("bases")["os_python"]}


def slim_base(python: str, cuda_from_wheels: bool = True) -> Base:
    """The slim Python image: CUDA, when any, comes from the frameworks' wheels."""
    row = next((r for r in load_table("bases")["python_image"] if r["python"] == python), None)
    if row is None:
        raise ImpossibleRequest(f"gpuenv knows no slim base image with Python {python}", code="python-conflict",
                                hint="set `base` in gpuenv.toml to an image that has it")
    why = ("CUDA comes from the frameworks' pip wheels, so the base carries none (CUDA ships once)"
           if cuda_from_wheels else "nothing needs CUDA, so the base carries none")
    return Base(row["image"], row["os"], python, reasons=(f"base {row['image']}: {why}, and it has Python {python}",))


def cuda_base(builds: tuple[Build, ...], python: str, target: Target, flavor: Flavor = "runtime",
              compiler_for: Optional[str] = None) -> Base:
    """The nvidia/cuda tag for the system CUDA the builds need: `runtime`, or `devel` (nvcc, headers: the
    spec's toolkit level, resolve/toolchain.py), of the same CUDA, cuDNN and OS."""
    system = [b for b in builds if b.cuda_source == "base-image"]
    if compiler_for is not None:         # CUDA from the wheels, the compiler of that CUDA from the image
        cuda, cudnn = major_minor(compiler_for), None
    else:
        cuda = max((major_minor(b.cuda) for b in system if b.cuda), key=minor_key)
        cudnn = _strictest_cudnn([b.cudnn for b in system if b.cudnn])
    rows = [r for r in load_table("cuda_images")["image"] if _cuda_fits(r["cuda"], cuda)
            and flavor in r["flavors"] and _cudnn_fits(r.get("cudnn"), cudnn)]
    if target.driver:
        rows = [r for r in rows if V(nvidia.toolkit_min_driver(r["toolkit"]) or "0") <= V(target.driver)] or rows
    if not rows:
        need = f" with cuDNN {cudnn}" if cudnn else ""
        raise ImpossibleRequest(f"no nvidia/cuda {flavor} image is known for CUDA {cuda}{need}", code="conflict",
                                hint="set `base` in gpuenv.toml to an image with that CUDA and cuDNN")
    row = min(rows, key=lambda r: _preference(r, cuda, cudnn, python))
    tag = _tag(row, flavor)
    why = (f"the compiler of the wheels' CUDA {cuda} (NVIDIA publishes nvcc as pip packages only from CUDA 13); "
           "the frameworks' wheels keep their own CUDA libraries, so CUDA is in the image twice"
           if compiler_for is not None else ", ".join(_why(b) for b in system))
    reasons = [f"base nvidia/cuda:{tag}: {why}"]
    os_python = _os_python().get(row["os"])
    build: Optional[BaseBuild] = None
    if row["status"] == "deleted":
        build = "nvidia-eol-recipe"
        reasons.append(f"nvidia/cuda:{tag} was deleted from Docker Hub (NVIDIA removes end-of-life tags); "
                       "no newer tag of this CUDA exists, so it is built locally from NVIDIA's end-of-life "
                       "recipe (gitlab.com/nvidia/container-images/cuda, dist/end-of-life), or pulled from a "
                       "registry mirror that still holds it")
    elif row["status"] == "eol":
        reasons.append(f"nvidia/cuda:{tag} is end-of-life: NVIDIA may delete it; `gpuenv save` keeps a copy")
    return Base(f"nvidia/cuda:{tag}", row["os"], os_python, row["cuda"], row["toolkit"],
                row.get("cudnn"), row["status"], build, tuple(reasons))


def _why(build: Build) -> str:
    cudnn = f" and cuDNN {build.cudnn}" if build.cudnn else ""
    return f"{build.label} needs system CUDA {major_minor(build.cuda or '')}{cudnn}"


def _strictest_cudnn(values: list[str]) -> Optional[str]:
    return max(values, key=minor_key) if values else None


def _cuda_fits(image: str, needed: str) -> bool:
    """Before 11 the runtime's soname names the minor (libcudart.so.9.0); from 11 one major serves."""
    if major(needed) >= 11:
        return major(image) == major(needed) and minor_key(image) >= minor_key(needed)
    return image == needed


def _cudnn_fits(image: Optional[str], needed: Optional[str]) -> bool:
    if needed is None:
        return True
    if image is None:
        return False
    return image.split(".")[0] == needed.split(".")[0] and minor_key(image)[:2] >= minor_key(needed)[:2]


def _preference(row: Row, cuda: str, cudnn: Optional[str], python: str) -> tuple:
    return (
        row["status"] == "deleted",                          # a tag that still exists first
        row["cuda"] != cuda,                                # then the exact minor: libraries' sonames
        _STATUS_RANK.get(row["status"], 3),                  # change within 11.x (libcusolver.so.10 -> 11)
        minor_key(row["cuda"]),                              # else the nearest newer one
        (row.get("cudnn") is not None) != (cudnn is not None),  # no cuDNN when none is needed
        _os_python().get(row["os"]) != python,               # an OS that ships the planned Python
        not row["os"].startswith("ubuntu"),
        not _lts(row["os"]),                                 # Ubuntu LTS releases before interim ones
        tuple(-x for x in minor_key(row["os"].replace("ubuntu", ""))),  # then the newest OS
        tuple(-x for x in minor_key(row["version"])),
    )


def _tag(row: Row, flavor: Flavor = "runtime") -> str:
    parts = [row["version"]]
    if row.get("cudnn_token"):
        parts.append(row["cudnn_token"])
    parts += [flavor, row["os"]]
    return "-".join(parts)


def given_base(image: str, builds: tuple[Build, ...], python: str, holds: tuple[Provided, ...] = ()) -> Base:
    """The spec's own `base`, with what gpuenv found inside it (`holds`) or can tell from its name."""
    held = holds[0] if holds else recognise(image)
    if held is None:
        return Base(image, "(unknown)", None, reasons=(
            f"base {image}: given by the spec; gpuenv cannot tell its CUDA or Python from its name, "
            "so `gpuenv verify` checks them after the build",))
    toolkit = None
    if held.cuda:
        same = [t.version for t in nvidia.toolkits() if t.cuda == held.cuda]
        toolkit = same[-1] if same else None
    return Base(image, "(from the image)", held.python, held.cuda, toolkit, held.cudnn, "available", None,
                (f"base {image}: given by the spec; {held.what}"
                 + (f" with CUDA {held.cuda}" if held.cuda else "") + (f", cuDNN {held.cudnn}" if held.cudnn else ""),))


def _lts(os_name: str) -> bool:
    """ubuntu16.04, ubuntu18.04 ... are long-term releases; ubuntu17.04 was not."""
    found = re.fullmatch(r"ubuntu(\d+)\.04", os_name)
    return found is not None and int(found.group(1)) % 2 == 0
