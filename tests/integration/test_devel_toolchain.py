"""A devel environment on the real engine (issue 18): torch from PyPI with its CUDA from NVIDIA's wheels, and
the compiler of that same CUDA from NVIDIA's own pip packages (cuda-toolkit[nvcc,cudart,cccl], resolved with
the framework) arranged as CUDA_HOME. Inside the built image, with no GPU: a one-kernel PyTorch extension
compiles and links through torch's cpp_extension (JIT `load()`, and the project's own `pip install
--no-build-isolation -e .`), a CMake CUDA project configures, builds and links, and each binary holds
exactly the planned GPU code (sm_90 SASS and compute_90 PTX), as cuobjdump (shipped in Triton's wheel)
lists it. Resolved against the live index through this machine's proxy, as a user's `gpuenv build` is.

torch 2.11.0 is the release of the GPU machine's own torch (cu130): the JIT-built operator library is the
one scripts/gpu/devel-run loads and runs there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.docker
UID = 4321
SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "compile"
SPEC = '''name = "{name}"
python = "3.11"
frameworks = ["torch==2.11.0"]
packages = ["cmake"]

[gpu]
toolkit = "devel"
compute_capability = ["9.0"]
'''
INSIDE = r'''
set -euo pipefail
cd /w
echo "== nvcc"; command -v nvcc; nvcc --version | tail -n 2
echo "== env"; echo "CUDA_HOME=$CUDA_HOME TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST CUDAARCHS=$CUDAARCHS"
cuobjdump="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump"))')"
echo "== jit"; mkdir -p /w/jit
python3 -c 'from torch.utils.cpp_extension import load; load(name="gpuenv_saxpy_jit", sources=["/w/torch_ext/saxpy.cu"], is_python_module=False, build_directory="/w/jit")'
python3 -c 'import torch; torch.ops.load_library("/w/jit/gpuenv_saxpy_jit.so"); print("jit op:", torch.ops.gpuenv_test.saxpy.default._schema)'
echo "== pip"
(cd /w/torch_ext && python3 -m pip install --no-build-isolation -e . >/w/pip.log 2>&1) || { tail -n 40 /w/pip.log; exit 1; }
python3 -c 'import torch, gpuenv_saxpy; print("pip module:", gpuenv_saxpy.__file__, torch.ops.gpuenv_test.saxpy.default._schema)'
echo "== cmake"
cmake -S /w/cmake -B /w/cmake/build >/w/cmake.log 2>&1 || { tail -n 40 /w/cmake.log; exit 1; }
grep "gpuenv-test:" /w/cmake.log
cmake --build /w/cmake/build >>/w/cmake.log 2>&1 || { tail -n 40 /w/cmake.log; exit 1; }
for so in /w/jit/gpuenv_saxpy_jit.so "$(python3 -c 'import torch, gpuenv_saxpy; print(gpuenv_saxpy.__file__)' 2>/dev/null)" /w/cmake/build/libscale.so; do
  echo "== gpu code $so"; "$cuobjdump" --list-elf --list-ptx "$so"
done
echo "== ldd"; ldd /w/cmake/build/scale_main | grep -E "libscale|libcudart"
'''


def gpuenv(*args: str, cwd: Path, timeout: int = 2400) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID)}
    env.pop("GPUENV_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def devel(module_engine, tmp_path_factory) -> Iterator[tuple[dict, str]]:
    """(the plan, the built image) of the devel spec."""
    folder = tmp_path_factory.mktemp("devel")
    (folder / "gpuenv.toml").write_text(SPEC.format(name=f"devel-{uuid.uuid4().hex[:8]}"))
    os.chown(folder, UID, UID)
    planned = gpuenv("plan", "--json", cwd=folder)
    assert planned.returncode == 0, planned.stderr
    built = gpuenv("build", "--json", cwd=folder)
    assert built.returncode == 0, built.stderr[-4000:]
    image = json.loads(built.stdout)["image"]
    module_engine.images.append(image)
    yield json.loads(planned.stdout), image


def test_the_plan_takes_the_compiler_of_the_frameworks_own_cuda_in_its_own_step(devel):
    plan, _ = devel
    chain = plan["toolchain"]
    assert (chain["level"], chain["cuda"], chain["cuda_source"]) == ("devel", "13.0", "wheels")
    assert chain["packages"] == ["nvidia-cuda-nvcc==13.0.*", "nvidia-cuda-crt==13.0.*", "nvidia-nvvm==13.0.*",
                                 "nvidia-cuda-runtime==13.0.*", "nvidia-cuda-cccl==13.0.*"]
    assert chain["archs"]["torch"] == "9.0+PTX" and chain["archs"]["cmake"] == "90"
    assert chain["gcc"] == "12" and chain["env"]["CUDA_HOME"] == "/usr/local/cuda"
    steps = {s["id"]: {p["name"]: p["version"] for p in s["packages"]} for s in plan["resolved"]["steps"]}
    assert list(steps)[:2] == ["frameworks", "toolchain"]
    compiler = {n: v for n, v in steps["toolchain"].items() if n.startswith("nvidia-")}
    assert set(compiler) == {"nvidia-cuda-nvcc", "nvidia-cuda-crt", "nvidia-nvvm", "nvidia-cuda-cccl"}
    assert all(v.startswith("13.0.") for v in compiler.values()), compiler     # the framework's CUDA release
    assert steps["frameworks"]["nvidia-cuda-runtime"].startswith("13.0.")    # the runtime is the framework's,
    assert "nvidia-cuda-runtime" not in steps["toolchain"] and "torch" not in steps["toolchain"]  # shipped once
    assert {"ninja", "setuptools"} <= set(steps["toolchain"]) | set(steps["frameworks"])


def test_an_extension_and_a_cmake_project_compile_for_exactly_the_planned_gpus(devel, module_engine, tmp_path):
    _, image = devel
    work = tmp_path / "w"
    shutil.copytree(SOURCES, work)
    for path in [work, *work.rglob("*")]:
        os.chown(path, UID, UID)
    run = subprocess.run([module_engine.client, "run", "--rm", "--network", "none", "-v", f"{work}:/w", image,
                          "bash", "-c", INSIDE], capture_output=True, text=True, timeout=1800)
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-4000:]
    assert "/usr/local/cuda/bin/nvcc" in out and "release 13.0" in out
    assert "TORCH_CUDA_ARCH_LIST=9.0+PTX CUDAARCHS=90" in out
    assert "jit op: gpuenv_test::saxpy(float a, Tensor x, Tensor y) -> Tensor" in out
    assert "pip module: /w/torch_ext/gpuenv_saxpy" in out
    assert re.search(r"gpuenv-test: toolkit 13\.0\.\d+ at /usr/local/cuda/bin, archs 90", out), out
    blocks = out.split("== gpu code ")[1:]
    assert len(blocks) == 3
    for block in blocks:
        name, listing = block.split("\n", 1)
        listing = listing.split("\n== ", 1)[0]
        elf = set(re.findall(r"ELF file\s+\d+: \S+\.(sm_\w+)\.cubin", listing))
        ptx = set(re.findall(r"PTX file\s+\d+: \S+\.(sm_\w+)\.ptx", listing))
        assert (elf, ptx) == ({"sm_90"}, {"sm_90"}), (name, listing)
    assert "libscale.so" in out and "libcudart.so.13" in out
    keep = os.environ.get("GPUENV_TEST_DEVEL_OUT")        # for scripts/gpu/devel-run: the library the GPU runs
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "jit" / "gpuenv_saxpy_jit.so", Path(keep) / "gpuenv_saxpy_jit.so")
