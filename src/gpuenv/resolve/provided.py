"""Base images that already hold a framework or a system CUDA, recognised from their names, so that the
plan installs nothing twice.

Tag grammars (read from the images' own pages):
  tensorflow/tensorflow:<version>-gpu[-py3][-jupyter]  (https://hub.docker.com/r/tensorflow/tensorflow)
  pytorch/pytorch:<version>-cuda<X.Y>-cudnn<N>-runtime|devel  (https://hub.docker.com/r/pytorch/pytorch)
  nvcr.io/nvidia/pytorch:<YY.MM>-py3, nvcr.io/nvidia/tensorflow:<YY.MM>-tf1|tf2-py3  (NGC)
  nvidia/cuda:<version>[-cudnn<N>]-base|runtime|devel-<os>  (https://hub.docker.com/r/nvidia/cuda)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from gpuenv.kb import load_table
from gpuenv.resolve.versions import major_minor, matches


@dataclass(frozen=True)
class Provided:
    image: str
    family: Optional[str]       # the framework it holds, None for a plain CUDA image
    version: Optional[str]      # its version; None when the tag does not say (NGC)
    cuda: Optional[str]         # system CUDA it carries
    cudnn: Optional[str]
    python: Optional[str]       # its Python when known
    what: str                   # said in reasons: "TensorFlow's own GPU image"


def _name(image: str) -> tuple[str, str]:
    ref = image.split("@", 1)[0]
    repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    repo = re.sub(r"^(docker\.io/)?(library/)?", "", repo)
    return repo, tag


def recognise(image: str) -> Optional[Provided]:
    repo, tag = _name(image)
    if repo == "tensorflow/tensorflow":
        return _tensorflow(image, tag)
    if repo == "pytorch/pytorch":
        found = re.fullmatch(r"(\d+\.\d+(?:\.\d+)?)-cuda(\d+\.\d+)-cudnn(\d+)-(runtime|devel)", tag)
        if found:
            return Provided(image, "torch", found.group(1), found.group(2), found.group(3), None,
                            "PyTorch's own image")
        return Provided(image, "torch", None, None, None, None, "PyTorch's own image")
    if repo in ("nvcr.io/nvidia/pytorch", "nvcr.io/nvidia/tensorflow"):
        family = "torch" if repo.endswith("pytorch") else "tensorflow"
        return Provided(image, family, None, None, None, None, f"the NGC container {tag}")
    if repo == "nvidia/cuda":
        found = re.fullmatch(r"(\d+\.\d+(?:\.\d+)?)(?:-cudnn(\d*))?-(base|runtime|devel)(?:-(.+))?", tag)
        if found:
            cudnn = {None: None, "": "9"}.get(found.group(2), found.group(2))  # "-cudnn-" (12.4.1 on) is cuDNN 9
            return Provided(image, None, None, major_minor(found.group(1)), cudnn, None, "an NVIDIA CUDA image")
    return None


def _tensorflow(image: str, tag: str) -> Optional[Provided]:
    found = re.fullmatch(r"(\d+\.\d+\.\d+)-gpu(-py3)?(-jupyter)?", tag)
    if not found:
        return Provided(image, "tensorflow", None, None, None, None, "TensorFlow's own image")
    version = found.group(1)
    build = next((b for b in load_table("tensorflow")["build"] if b["version"] == major_minor(version)), None)
    python = None
    for row in load_table("tensorflow").get("image", ()):
        if matches(row["versions"], version) and ("-py3" in row["tag"]) == bool(found.group(2)):
            python = row["python"]
            break
    cuda, cudnn = (major_minor(build["cuda"]), build["cudnn"]) if build is not None else (None, None)
    return Provided(image, "tensorflow", version, cuda, cudnn, python, "TensorFlow's own GPU image")
