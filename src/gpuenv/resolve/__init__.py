"""Resolving a request to a plan: which builds (provider, `builds.py`), which fit together and on the
target (`solver.py`), which base (`base.py`), and the plan with its reasons (`plan.py`). No I/O but
reading the kb tables."""

from gpuenv.resolve.plan import Plan, resolve
from gpuenv.resolve.request import GpuTarget, Request, Target, Want, want

__all__ = ["GpuTarget", "Plan", "Request", "Target", "Want", "resolve", "want"]
