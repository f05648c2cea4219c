"""Building images: the base when no registry has it, the BuildKit build and its progress, and an image
renumbered for another UID/GID (`retarget`, loaded on first use through gpuenv/lazy.py: only a pull or
load of another user's image needs it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.images import retarget as retarget

__getattr__, __dir__ = exports(__name__, {"retarget": "gpuenv.images.retarget"})
