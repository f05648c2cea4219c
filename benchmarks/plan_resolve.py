"""How fast `gpuenv plan` resolves a whole environment: torch and ten common packages, from a new process,
against the live package index (what a user sees). Issue 16 asks for a median <= 1.5 s with a warm
resolver cache and <= 6 s cold.

Warm: the same caches for every run after one untimed run: gpuenv's recent answers (resolve/answers.py)
and uv's cache. Warm, uv only: the recent answers off (GPUENV_RESOLVE_TTL=0), uv's cache warm (through a
proxy that strips PyPI's caching headers, as this machine's does, uv fetches every page again). Cold: a new,
empty uv cache and no recent answers for every run (the index's pages and metadata fetched again). In the same run, `gpuenv plan --offline` (the knowledge
base alone) and a bare `python -c pass` give the floor, so the ratios mean something on another machine.
Writes benchmarks/results/plan-resolve-<date>.json.

    python benchmarks/plan_resolve.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_file import write  # noqa: E402

REQUEST = ["torch", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "pillow", "tqdm", "requests",
           "pyyaml", "transformers", "--python", "3.12"]
WARM_LIMIT_S, COLD_LIMIT_S = 1.5, 6.0


def _once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-500:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("GPUENV_OFFLINE", "UV_CACHE_DIR")}
    base["GPUENV_KB_DIR"] = tempfile.mkdtemp()
    plan = [sys.executable, "-m", "gpuenv", "plan", *REQUEST]
    warm_env = {**base, "UV_CACHE_DIR": tempfile.mkdtemp(prefix="uv-warm-"), "XDG_CACHE_HOME": tempfile.mkdtemp()}
    uv_env = {**warm_env, "GPUENV_RESOLVE_TTL": "0"}
    _once(plan, warm_env)
    warm, warm_uv, cold, offline, bare = [], [], [], [], []
    for _ in range(args.runs):          # interleaved, so a slow minute of the network hits every kind alike
        warm.append(_once(plan, warm_env))
        warm_uv.append(_once(plan, uv_env))
        cold.append(_once(plan, {**base, "UV_CACHE_DIR": tempfile.mkdtemp(prefix="uv-cold-"),
                                 "GPUENV_RESOLVE_TTL": "0"}))
        offline.append(_once(plan + ["--offline"], base))
        bare.append(_once([sys.executable, "-c", "pass"], base))
    med = {name: round(statistics.median(xs), 3) for name, xs in
           (("warm", warm), ("warm_uv_only", warm_uv), ("cold", cold), ("offline", offline), ("bare", bare))}
    write("plan-resolve", "gpuenv plan: torch + 10 packages, whole-environment resolution", args.runs,
          request=" ".join(REQUEST), median_s=med,
          raw_s={"warm": warm, "warm_uv_only": warm_uv, "cold": cold, "offline": offline},
          warm_over_offline=round(med["warm"] / med["offline"], 2), limits_s={"warm": WARM_LIMIT_S, "cold": COLD_LIMIT_S},
          under_limits={"warm": med["warm"] <= WARM_LIMIT_S, "cold": med["cold"] <= COLD_LIMIT_S})
    return 0 if med["warm"] <= WARM_LIMIT_S and med["cold"] <= COLD_LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
