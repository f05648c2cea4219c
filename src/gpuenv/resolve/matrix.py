"""`gpuenv matrix`: every build of a framework that runs on a target, newest first."""

from __future__ import annotations

from typing import Any, Optional

from gpuenv.resolve.builds import builds_for
from gpuenv.resolve.request import Request, Target, want
from gpuenv.resolve.solver import Group, stages
from gpuenv.resolve.versions import python_range


def rows_for(framework: str, target: Target, python: Optional[str], show_all: bool = False) -> list[dict[str, Any]]:
    wanted = want(framework, "FRAMEWORK")
    request = Request((wanted,), python=python)
    group = Group(wanted.family, (wanted,))
    builds = builds_for(wanted, request)
    for stage in stages(group, request, target):
        builds = [b for b in builds if stage.test(b)]
    rows, seen = [], set()
    for b in builds:
        if not show_all and b.version in seen:
            continue
        seen.add(b.version)
        shown = b.requirement if " @ " not in b.requirement else f"{b.project}=={b.version} ({b.variant} wheel URL)"
        rows.append({"version": b.version, "requirement": shown, "variant": b.variant,
                     "cuda": b.cuda, "cudnn": b.cudnn, "python": python_range(b.python),
                     "min_driver": b.min_driver(), "cuda_source": b.cuda_source,
                     "gpu_archs": list(b.gpu_archs())})
    return rows
