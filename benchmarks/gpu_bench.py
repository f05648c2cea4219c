"""A bf16 matmul and a device-to-device copy on the first GPU, several runs each; one JSON line out.

Runs the same inside a gpuenv container and on the host (scripts/gpu/up-run does both, interleaved),
so that their ratio shows what the container costs: nothing, when the GPU is passed through right.
Needs only torch. Usage: python3 gpu_bench.py [RUNS]
"""

import json
import sys
import time

import torch


def timed(step, reps):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n, reps = 8192, 30
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    out = torch.empty(n, n, dtype=torch.bfloat16, device="cuda")
    size = 1 << 30
    src = torch.empty(size, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    timed(lambda: torch.matmul(a, b, out=out), 5)          # warm-up: cuBLAS picks its kernel
    timed(lambda: dst.copy_(src), 5)
    matmul = [2 * n ** 3 * reps / timed(lambda: torch.matmul(a, b, out=out), reps) / 1e12 for _ in range(runs)]
    copy = [size * reps / timed(lambda: dst.copy_(src), reps) / 1e9 for _ in range(runs)]
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "cuda": torch.version.cuda, "matmul_bf16_tflops": matmul, "copy_d2d_gb_per_s": copy,
                      "matmul_shape": [n, n, n], "copy_bytes": size, "reps_per_run": reps}))


if __name__ == "__main__":
    main()
