"""Offline bundles (issue 7, section 6): `gpuenv save` + `gpuenv load` of an image of about 2 GB against
plain `docker save | docker load`, both into a second Docker engine on this machine (its own data root;
scripts/second_engine.py), the image removed there before every load (an engine that already has the
layers does not load them). Rounds alternate which goes first.

    python benchmarks/bundle_speed.py [--rounds 3] [--keep]

The image is a real gpuenv environment (the spec below: JAX on the CPU with SciPy, pandas, scikit-learn,
pyarrow, matplotlib, OpenCV, numba, polars, SymPy, ONNX Runtime and DuckDB, on gpuenv's Debian 12 base):
shared objects, Python sources and data files as pip installs them, so zstd meets the compressibility of
real images.

Measured:
  throughput ratio   plain seconds / gpuenv seconds (save + load, the load including its checksum pass
                     over the whole bundle); target >= 0.8
  size ratio         bundle bytes / the plain `docker save` tar's bytes; target <= 0.6
  peak memory        the RSS high-water of each gpuenv process (wait4's ru_maxrss: the largest of the
                     process and the docker clients it ran); target < 200 MB
The bundle is written to /tmp and read back by the load, so it may be in the page cache; the plain pipe
never touches the disk. Writes benchmarks/results/bundle-speed-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "scripts"))
from results_file import write  # noqa: E402
from run_env import docker_client, host_info  # noqa: E402

import second_engine  # noqa: E402

SPEC = """# benchmarks/bundle_speed.py: about 2 GB of real Python software on the CPU
name = "bundle-bench"
python = "3.11"
frameworks = ["jax"]
packages = ["scipy", "pandas", "scikit-learn", "pyarrow", "matplotlib", "opencv-python-headless", "numba", "polars",
            "sympy", "onnxruntime", "duckdb"]

[gpu]
devices = "none"
"""
THROUGHPUT = 0.8
SIZE = 0.6
MEMORY_MB = 200


def run_gpuenv(*args: str, cwd: Path, host: str = "") -> tuple[float, dict[str, Any], int]:
    """Run gpuenv --json as a process; (seconds, its JSON, its peak RSS in bytes from wait4)."""
    env = {**os.environ, "GPUENV_DOCKER": docker_client()}
    if host:
        env["DOCKER_HOST"] = host
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "gpuenv", "--json", *args], cwd=cwd, env=env,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"gpuenv {' '.join(args)} failed:\n{err.read().decode()[-1500:]}")
        return took, json.loads(out.read()), int(usage.ru_maxrss * 1024)


def plain(image: str, refs: list[str], host: str) -> float:
    """`docker save IMAGE BASE | docker -H SECOND load`, timed."""
    client = docker_client()
    start = time.perf_counter()
    save = subprocess.Popen([client, "save", *refs], stdout=subprocess.PIPE)
    load = subprocess.run([client, "-H", host, "load"], stdin=save.stdout, capture_output=True)
    save.stdout.close()   # type: ignore[union-attr]
    if save.wait() != 0 or load.returncode != 0:
        raise SystemExit(f"plain docker save | docker load of {image} failed: {load.stderr.decode()[-800:]}")
    return time.perf_counter() - start


def empty(engine: second_engine.SecondEngine, refs: list[str]) -> None:
    """The second engine without the benchmark's images (their layers deleted), checked."""
    found = engine.docker("images", "-aq").stdout.split()
    if found:
        engine.docker("rmi", "--force", *found)
    left = engine.docker("images", "-aq").stdout.split()
    if left:
        raise SystemExit(f"the second engine still has images {left}")


def build(folder: Path) -> str:
    (folder / "gpuenv.toml").write_text(SPEC)
    _, doc, _ = run_gpuenv("build", cwd=folder)
    return doc["image"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's image on this engine")
    args = parser.parse_args()
    host = host_info()
    work = Path(tempfile.mkdtemp(prefix="gpuenv-bundle-bench-", dir="/tmp"))
    image = ""
    try:
        image = build(work)
        result = measure(image, work, args.rounds)
    finally:
        if image and not args.keep:
            subprocess.run([docker_client(), "rmi", image], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    host["load_average_at_end"] = list(os.getloadavg())
    write("bundle-speed", "gpuenv save + load against docker save | docker load, into a second engine",
          args.rounds, host=host, **result)


def measure(image: str, work: Path, rounds: int) -> dict[str, Any]:
    info = json.loads(subprocess.run([docker_client(), "image", "inspect", image], capture_output=True,
                                     text=True).stdout)[0]
    bundle = work / "bench.gpuenv"
    rows = []
    with second_engine.running() as engine:
        for n in range(rounds):
            row: dict[str, Any] = {"round": n + 1, "first": "plain" if n % 2 == 0 else "gpuenv"}
            for which in (("plain", "gpuenv") if n % 2 == 0 else ("gpuenv", "plain")):
                empty(engine, [])
                if which == "plain":
                    row["plain_s"] = plain(image, _refs(bundle, image), engine.host)
                else:
                    row.update(_gpuenv_round(image, work, bundle, engine))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        empty(engine, [])
    return _summary(image, info, rows)


def _refs(bundle: Path, image: str) -> list[str]:
    """What the plain pipe saves: the same images the bundle holds (the image and its base's tag)."""
    if bundle.exists():
        import tarfile

        with tarfile.open(bundle) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())   # type: ignore[union-attr]
        return [image] + [b["tag"] for b in manifest["bases"]]
    return [image, "gpuenv-base/debian:bookworm"]


def _gpuenv_round(image: str, work: Path, bundle: Path, engine: second_engine.SecondEngine) -> dict[str, Any]:
    save_s, saved, save_rss = run_gpuenv("save", "-o", str(bundle), "--force", cwd=work)
    load_s, loaded, load_rss = run_gpuenv("load", str(bundle), "--into", str(work / "loaded"), "--force",
                                          cwd=work, host=engine.host)
    if not loaded["loaded"] or loaded["image_id"] != saved["image_id"]:
        raise SystemExit(f"the load did not load {image}: {loaded}")
    return {"gpuenv_s": save_s + load_s, "save_s": save_s, "load_s": load_s, "bundle_bytes": saved["size"],
            "tar_bytes": saved["image_bytes"], "save_peak_rss": save_rss, "load_peak_rss": load_rss}


def _summary(image: str, info: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    plain_s = statistics.median(r["plain_s"] for r in rows)
    ours_s = statistics.median(r["gpuenv_s"] for r in rows)
    tar = rows[-1]["tar_bytes"]
    size_ratio = rows[-1]["bundle_bytes"] / tar
    peak = max(max(r["save_peak_rss"], r["load_peak_rss"]) for r in rows)
    ratio = plain_s / ours_s
    return {
        "image": {"tag": image, "id": info["Id"], "bytes": info["Size"],
                  "holds": "gpuenv-base/debian:bookworm (Debian 12, python3.11) + jax (CPU), scipy, pandas, "
                           "scikit-learn, pyarrow, matplotlib, opencv-python-headless, numba, polars, sympy, "
                           "onnxruntime, duckdb as pip installs them"},
        "rounds": rows,
        "plain_median_s": round(plain_s, 2), "gpuenv_median_s": round(ours_s, 2),
        "plain_mb_per_s": round(tar / plain_s / 1e6, 1), "gpuenv_mb_per_s": round(tar / ours_s / 1e6, 1),
        "throughput_ratio": round(ratio, 3), "throughput_target": THROUGHPUT,
        "tar_bytes": tar, "bundle_bytes": rows[-1]["bundle_bytes"], "size_ratio": round(size_ratio, 3),
        "size_target": SIZE,
        "peak_rss_mb": round(peak / 1e6, 1), "peak_rss_target_mb": MEMORY_MB,
        "pass": {"throughput": ratio >= THROUGHPUT, "size": size_ratio <= SIZE, "memory": peak / 1e6 < MEMORY_MB},
    }


if __name__ == "__main__":
    main()
