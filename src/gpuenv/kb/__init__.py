"""The compatibility knowledge base: data files shipped in the package, and the only code that opens them.

Every table is a TOML file in `kb/data/`; every row carries `source` (the URL it was read from) and
`retrieved` (the date it was read). `load_table` checks that for every row, so a broken table is a
clear error at load, not a wrong answer later.

`index` (the package index client: http.client, ssl, zipfile, ~13 ms), `refresh` (which uses it) and
`mirrors` (the network presets, read for a spec that names one) are loaded on first use (gpuenv/lazy.py):
an offline plan never asks an index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.kb.tables import KbError, load_table
from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.kb import index as index
    from gpuenv.kb import mirrors as mirrors
    from gpuenv.kb import refresh as refresh

__all__ = ["KbError", "index", "load_table", "mirrors", "refresh"]
__getattr__, __dir__ = exports(__name__, {"index": "gpuenv.kb.index", "mirrors": "gpuenv.kb.mirrors",
                                        "refresh": "gpuenv.kb.refresh"})
