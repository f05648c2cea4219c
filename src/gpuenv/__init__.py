"""gpuenv: one short request to a working, verified GPU container for deep learning.

`__version__` and the top-level stages `environment` and `render` are loaded on first use
(gpuenv/lazy.py): `import gpuenv` costs nothing, and a command that never needs them never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv import environment as environment
    from gpuenv import render as render
    from gpuenv._version import __version__ as __version__

__getattr__, __dir__ = exports(__name__, {"__version__": "gpuenv._version:__version__",
                                          "environment": "gpuenv.environment", "render": "gpuenv.render"})
