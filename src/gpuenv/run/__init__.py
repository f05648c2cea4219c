"""Running environments: containers, readiness, listing, verification.

`envs` (the environments on the engine, from their containers' labels and compose files: yaml) is
loaded on first use (gpuenv/lazy.py): a push or save by image or spec needs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.run import envs as envs

__getattr__, __dir__ = exports(__name__, {"envs": "gpuenv.run.envs"})
