"""Cold build and one-package rebuild of a small torch-free environment (numpy, pandas, requests on the
CPU): gpuenv's Dockerfile with its pip steps pinned by the resolver and installed by uv, against the same
Dockerfile installed by pip (the pinned files unchanged: what uv alone gives), and against a hand-written
Dockerfile in the articles' style (pip, one RUN per step, no cache mounts), all FROM the same local base,
in the same run, rounds alternating. Issue 16.

    python benchmarks/pinned_build.py [--rounds 2] [--keep]

Cold builds are `--no-cache` with cache mounts of ids new to the engine (run_env.fresh_mounts): nothing
comes from BuildKit's cache or a download cache. The rebuild adds one package (tqdm) to the spec (a new
resolution, one new pip step) or, by hand, one `RUN pip3 install tqdm` line, and builds with the cache.
Until planning attaches the resolution itself, it is made here by the real resolver
(tests/integration/uv_resolution.py: uv pip compile against PyPI). Results: results/pinned-build-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import secrets as random_tokens
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
from run_env import docker, docker_build, fresh_mounts, host_info, remove_images  # noqa: E402
from results_file import write  # noqa: E402

PACKAGES = ("numpy", "pandas", "requests")
ADDED = "tqdm"
SPEC = 'name = "{name}"\npython = "3.11"\npackages = [{packages}]\n\n[gpu]\ndevices = "none"\n'
# The round's own ENV line: BuildKit's cache of an earlier round's rebuild is not this round's (gpuenv's
# Dockerfiles differ by their cache-mount ids already).
HANDWRITTEN = """FROM {base}
ENV DEBIAN_FRONTEND=noninteractive BENCH_ROUND={tag}
RUN apt-get update
RUN apt-get install -y --no-install-recommends ca-certificates python3 python3-pip
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install --upgrade pip
""" + "".join(f"RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install {p}\n" for p in PACKAGES)


def render(folder: Path, name: str, packages: tuple[str, ...]) -> Any:
    """gpuenv's files for the spec, written into `folder`, with the resolution (made here when the plan
    has none); the Prepared."""
    from gpuenv import environment, planning
    from gpuenv.cli.common import engine
    from uv_resolution import resolve

    (folder / "gpuenv.toml").write_text(SPEC.format(name=name, packages=", ".join(f'"{p}"' for p in packages)))
    planned = planning.plan

    def with_resolution(*a: Any, **k: Any) -> Any:
        plan = planned(*a, **k)
        if plan.resolved is not None and plan.resolved.status == "resolved":
            return plan
        steps = [(f"packages-{i}", packages[:i]) for i in range(1, len(packages) + 1)]
        return dataclasses.replace(plan, resolved=resolve(steps, plan.python))

    planning.plan = with_resolution
    try:
        return environment.prepare(folder / "gpuenv.toml", engine, lambda _: None, force=True)
    finally:
        planning.plan = planned


def gpuenv_variants(prepared: Any, tag: str) -> dict[str, Path]:
    """The rendered Dockerfile (uv) and the same with pip installing the same pinned files, each with
    cache mounts of ids of their own."""
    from gpuenv.render.dockerfile import dockerfile

    folder, recipe = prepared.folder, prepared.rendered.recipe
    out = {}
    for installer in ("uv", "pip"):
        text = dockerfile(dataclasses.replace(recipe, installer=installer))
        path = folder / f"Dockerfile.{installer}"
        path.write_text(fresh_mounts(text, f"{tag}-{installer}")[0])
        out[installer] = path
    return out


def one_round(work: Path, n: int) -> dict[str, Any]:
    tag = f"bench-pinned-{random_tokens.token_hex(3)}"
    folder = work / f"gpuenv-{n}"
    folder.mkdir()
    prepared = render(folder, tag, PACKAGES)
    base = prepared.rendered.recipe.base
    hand = work / f"hand-{n}"
    hand.mkdir()
    (hand / "Dockerfile").write_text(HANDWRITTEN.format(base=base, tag=tag))
    files = gpuenv_variants(prepared, tag)
    order = ["uv", "pip", "hand"] if n % 2 == 0 else ["hand", "pip", "uv"]
    cold = {}
    for kind in order:
        where, dockerfile = (hand, None) if kind == "hand" else (folder, files[kind])
        cold[kind] = docker_build(where, f"{tag}-{kind}:cold", True, work / f"{kind}-{n}-cold.log", dockerfile)
    again = render(folder, tag, PACKAGES + (ADDED,))
    files = gpuenv_variants(again, tag)
    (hand / "Dockerfile").write_text(HANDWRITTEN.format(base=base, tag=tag) + f"RUN --mount=type=secret,id=ca "
                                     f"PIP_CERT=/run/secrets/ca pip3 install {ADDED}\n")
    rebuild = {}
    for kind in order:
        where, dockerfile = (hand, None) if kind == "hand" else (folder, files[kind])
        rebuild[kind] = docker_build(where, f"{tag}-{kind}:added", False, work / f"{kind}-{n}-added.log", dockerfile)
    for kind in order:
        remove_images(f"{tag}-{kind}")
    installs = {phase: {k: install_seconds((work / f"{k}-{n}-{phase}.log").read_text()) for k in order}
                for phase in ("cold", "added")}
    return {"base": base, "order": order, "cold_s": cold, "rebuild_s": rebuild, "pip_steps_s": installs}


def install_seconds(log: str) -> float:
    """The seconds BuildKit gave the steps that install Python packages (pip's or uv's; not pip's own
    upgrade, not uv's stage), from the build's plain log."""
    steps = dict(re.findall(r"(?m)^#(\d+) \[[^\]]*\] RUN (.*)$", log))
    done = dict(re.findall(r"(?m)^#(\d+) DONE ([0-9.]+)s$", log))
    wanted = [n for n, run in steps.items() if "install" in run and "--upgrade pip" not in run
              and "--target /opt/uv" not in run and ("pip3 install" in run or "-r /tmp/gpuenv-lock" in run)]
    return round(sum(float(done.get(n, 0)) for n in wanted), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    host = host_info()
    work = Path(tempfile.mkdtemp(prefix="gpuenv-bench-pinned-"))
    rounds = [one_round(work, n) for n in range(args.rounds)]
    med = {phase: {k: round(statistics.median(r[phase][k] for r in rounds), 2) for k in ("uv", "pip", "hand")}
           for phase in ("cold_s", "rebuild_s")}
    med["cold_pip_steps_s"] = {k: statistics.median(r["pip_steps_s"]["cold"][k] for r in rounds)
                               for k in ("uv", "pip", "hand")}
    ratios = {"cold_gpuenv_uv_over_handwritten": round(med["cold_s"]["uv"] / med["cold_s"]["hand"], 3),
              "cold_gpuenv_uv_over_gpuenv_pip": round(med["cold_s"]["uv"] / med["cold_s"]["pip"], 3),
              "rebuild_over_cold_gpuenv_uv": round(med["rebuild_s"]["uv"] / med["cold_s"]["uv"], 3),
              "rebuild_over_cold_handwritten": round(med["rebuild_s"]["hand"] / med["cold_s"]["hand"], 3),
              "cold_package_steps_uv_over_pip": round(med["cold_pip_steps_s"]["uv"]
                                                      / max(med["cold_pip_steps_s"]["pip"], 0.01), 3),
              "cold_package_steps_uv_over_handwritten": round(med["cold_pip_steps_s"]["uv"]
                                                              / max(med["cold_pip_steps_s"]["hand"], 0.01), 3)}
    host["load_average_at_end"] = list(__import__("os").getloadavg())
    write("pinned-build", "cold build and one-package rebuild: gpuenv pinned (uv, pip) vs hand-written (pip)",
          args.rounds, packages=list(PACKAGES), added=ADDED, host=host, median=med, ratios=ratios, rounds=rounds,
          docker=re.sub(r"\s+", " ", docker("version", "--format", "{{.Server.Version}}").stdout.strip()))
    if args.keep:
        print(f"kept: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
