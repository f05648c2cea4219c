"""How fast `gpuenv doctor --json` answers on a host with no GPU, against the one `docker info` it needs.

Issue 4 asks for under 1 s. Each variant runs N times as a new process in the same run, with the same
engine: the full doctor (network checks included: Docker Hub, TLS interception), the doctor --offline,
and a bare `docker info --format '{{json .}}'` (the floor: gpuenv cannot know the engine faster than
its CLI answers). Ratios to that floor stay meaningful on another machine.
Writes benchmarks/results/doctor-probe-<date>.json.

    python benchmarks/doctor_probe.py [--runs 15]     (a Docker engine must answer: scripts/test starts one)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_file import write  # noqa: E402

LIMIT_S = 1.0


def _time(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    docker = os.environ.get("GPUENV_DOCKER") or shutil.which("docker") or "docker"
    floor = _time([docker, "info", "--format", "{{json .}}"], args.runs)
    rows = []
    for name, extra in (("doctor --json", []), ("doctor --json --offline", ["--offline"])):
        times = _time([sys.executable, "-m", "gpuenv", "doctor", "--json", *extra], args.runs)
        median = statistics.median(times)
        rows.append({"command": f"gpuenv {name}", "median_s": round(median, 4), "max_s": round(max(times), 4),
                     "ratio_to_docker_info": round(median / statistics.median(floor), 2),
                     "under_limit": median < LIMIT_S})
    write("doctor-probe", "doctor probe on a host without GPU", args.runs,
          docker_info_median_s=round(statistics.median(floor), 4), limit_s=LIMIT_S, variants=rows)
    return 0 if all(r["under_limit"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
