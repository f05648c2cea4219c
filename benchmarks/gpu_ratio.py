"""Container/host ratios of gpu_bench.py's runs (scripts/gpu/up-run makes them on the GPU machine).

Reads the JSON lines (each with "where": host|container), takes the median of every run of each side,
and writes the result with the date and the machine. Goal: container/host >= 0.98 for both.
Usage: python3 gpu_ratio.py RUNS.jsonl RESULT.json
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

GOAL = 0.98


def machine():
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    return {"gpu": smi, "cpus": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)}


def main(src, dst):
    rows = [json.loads(line) for line in open(src) if line.strip().startswith("{")]
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "goal": f"container/host >= {GOAL}",
              "method": "gpu_bench.py: bf16 8192^3 matmul (30 per run) and a 1 GiB device-to-device copy (30 per "
                        "run), 5 runs per call, 3 calls per side interleaved host/container; medians of all runs"}
    for key, unit in (("matmul_bf16_tflops", "TFLOP/s"), ("copy_d2d_gb_per_s", "GB/s")):
        host = [v for r in rows if r["where"] == "host" for v in r[key]]
        box = [v for r in rows if r["where"] == "container" for v in r[key]]
        ratio = statistics.median(box) / statistics.median(host)
        result[key] = {"unit": unit, "host_median": statistics.median(host), "container_median": statistics.median(box),
                       "ratio": round(ratio, 4), "pass": ratio >= GOAL, "host_runs": host, "container_runs": box}
        print(f"{key:22} host {statistics.median(host):9.1f} {unit:8} container {statistics.median(box):9.1f} "
              f"{unit:8} ratio {ratio:.4f} {'ok' if ratio >= GOAL else 'BELOW GOAL'}")
    result["runs"] = rows
    with open(dst, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
