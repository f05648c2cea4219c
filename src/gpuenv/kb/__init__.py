"""The compatibility knowledge base: data files shipped in the package, and the only code that opens them.

Every table is a TOML file in `kb/data/`; every row carries `source` (the URL it was read from) and
`retrieved` (the date it was read). `load_table` checks that for every row, so a broken table is a
clear error at load, not a wrong answer later.
"""

from __future__ import annotations

from gpuenv.kb.tables import KbError, load_table

__all__ = ["KbError", "load_table"]
