"""Issue 18's two measures of a devel environment, in one run on this machine.

1. Compile time of the test extension (tests/fixtures/compile/torch_ext/saxpy.cu, one kernel, torch's JIT
   `load()`) with the target's architecture list (TORCH_CUDA_ARCH_LIST=9.0+PTX, what gpuenv sets for an
   H100/H200) against the framework's own full list (the list torch's wheel was built for, read from
   torch._C._cuda_getArchFlags(), PTX of its newest), same image, same container, rounds alternating
   their order, a fresh build folder each time. Expected well under 0.5.
2. Size: the devel image against the runtime image of the same spec (what the compiler costs), and against
   "CUDA twice": the runtime image plus a whole CUDA toolkit beside the wheels' CUDA, as an nvidia/cuda
   devel base under pip's torch carries. No registry is reachable here, so that devel base cannot be pulled;
   the toolkit it would add is measured as NVIDIA's own `cuda-toolkit[all]` pip packages of the same release
   (the same components as the devel image's /usr/local/cuda, NVIDIA's pip packaging of them) installed into
   a folder of their own in a container of the runtime image: the sum is reported as an estimate and
   labelled so.

    python benchmarks/devel_compile.py [--rounds 3]

Builds both images through gpuenv (the spec of tests/integration/test_devel_toolchain.py: torch 2.11.0, its
CUDA 13.0 from the wheels, compute capability 9.0); results/devel-compile-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results_file import write  # noqa: E402
from run_env import docker, gpuenv  # noqa: E402

SOURCES = HERE.parent / "tests" / "fixtures" / "compile"
SPEC = '''name = "bench-{level}"
python = "3.11"
frameworks = ["torch==2.11.0"]

[gpu]
toolkit = "{level}"
compute_capability = ["9.0"]
'''
TIMER = r'''
import json, os, shutil, subprocess, sys
import torch
flags = torch._C._cuda_getArchFlags().split()
ccs = sorted({f.split("_")[1] for f in flags if f.startswith("sm_")}, key=int)
full = ";".join(f"{c[:-1]}.{c[-1]}" for c in ccs) + "+PTX"
lists = {"target": "9.0+PTX", "full": full}
order = [("target", "full"), ("full", "target")]
times = {"target": [], "full": []}
# each build in a process of its own: the library registers the operator namespace gpuenv_test, once a process
child = ("import sys, time; from torch.utils.cpp_extension import load; start = time.monotonic(); "
         "load(name=sys.argv[1], sources=['/w/torch_ext/saxpy.cu'], is_python_module=False, build_directory=sys.argv[2]); "
         "print(time.monotonic() - start)")
for r in range(int(sys.argv[1])):
    for which in order[r % 2]:
        folder = f"/tmp/bench-{which}-{r}"
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        env = {**os.environ, "TORCH_CUDA_ARCH_LIST": lists[which]}
        done = subprocess.run([sys.executable, "-c", child, f"saxpy_{which}_{r}", folder], env=env,
                              capture_output=True, text=True, check=True)
        times[which].append(float(done.stdout.strip().splitlines()[-1]))
print(json.dumps({"lists": lists, "seconds": times, "torch": torch.__version__, "cuda": torch.version.cuda}))
'''


def build(level: str, folder: Path) -> str:
    folder.mkdir(parents=True)
    (folder / "gpuenv.toml").write_text(SPEC.format(level=level))
    _, data, _ = gpuenv("build", cwd=folder)
    return data["image"]


def image_bytes(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def toolkit_bytes(runtime: str, cuda: str) -> int:
    """NVIDIA's whole CUDA toolkit of this release as its pip packages, installed apart (the estimate of what
    an nvidia/cuda devel base adds under the wheels' own CUDA); pip through this host's CA bundle."""
    ca = "/etc/ssl/certs/ca-certificates.crt"
    script = (f"python3 -m pip install -q --target /tmp/ctk 'cuda-toolkit[all]=={cuda}.*' "
              "&& du -sb /tmp/ctk | cut -f1")
    found = docker("run", "--rm", "--user", "0", "-v", f"{ca}:/tmp/ca.crt:ro", "-e", "PIP_CERT=/tmp/ca.crt",
                   "-e", "PIP_BREAK_SYSTEM_PACKAGES=1", runtime, "sh", "-c", script, timeout=3600)
    return int(found.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gpuenv-bench-devel-"))
    try:
        devel = build("devel", work / "devel")
        runtime = build("runtime", work / "runtime")
        shutil.copytree(SOURCES, work / "w")
        ran = docker("run", "--rm", "--user", "0", "--network", "none", "-v", f"{work / 'w'}:/w", devel,
                     "python3", "-c", TIMER, str(args.rounds), timeout=7200)
        timing: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
        target, full = (statistics.median(timing["seconds"][k]) for k in ("target", "full"))
        sizes = {"devel": image_bytes(devel), "runtime": image_bytes(runtime)}
        cuda = ".".join(timing["cuda"].split(".")[:2])
        sizes["cuda_toolkit_pip_all"] = toolkit_bytes(runtime, cuda)
        twice = sizes["runtime"] + sizes["cuda_toolkit_pip_all"]
        write("devel-compile", "issue 18: a devel environment's compile time and size", args.rounds,
              compile={"lists": timing["lists"], "seconds": timing["seconds"], "median_target_s": round(target, 2),
                       "median_full_s": round(full, 2), "ratio_target_over_full": round(target / full, 3),
                       "torch": timing["torch"], "cuda": timing["cuda"]},
              size_bytes=sizes,
              size_ratios={"devel_over_runtime": round(sizes["devel"] / sizes["runtime"], 3),
                           "devel_over_cuda_twice_estimate": round(sizes["devel"] / twice, 3)},
              notes=["cuda twice = the runtime image + NVIDIA's whole CUDA toolkit of the same release as pip "
                     "packages (cuda-toolkit[all]) in a folder of its own: an estimate of an nvidia/cuda devel "
                     "base under pip's torch, which cannot be pulled here"])
        for image in (devel, runtime):
            docker("image", "rm", "--force", image, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
