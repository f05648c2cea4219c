"""Resolving a request to a plan: which builds (provider, `builds.py`), which fit together and on the
target (`solver.py`), which base (`base.py`), and the plan with its reasons (`plan.py`). No I/O but
reading the kb tables."""

from typing import TYPE_CHECKING

from gpuenv.lazy import exports
from gpuenv.resolve.plan import Plan, resolve
from gpuenv.resolve.request import GpuTarget, Request, Target, Want, want

if TYPE_CHECKING:
    from gpuenv.resolve import published as published
    from gpuenv.resolve import variants as variants

__all__ = ["GpuTarget", "Plan", "Request", "Target", "Want", "published", "resolve", "variants", "want"]
# Loaded on first use (gpuenv/lazy.py): `published` asks the index (kb.index) for a message's facts;
# `variants` imports the solver's names, so the solver reaches it through here at call time.
__getattr__, __dir__ = exports(__name__, {"published": "gpuenv.resolve.published",
                                          "variants": "gpuenv.resolve.variants"})
