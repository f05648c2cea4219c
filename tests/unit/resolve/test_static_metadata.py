"""The dependency metadata gpuenv hands uv for a source build it cannot ask (resolve/packages.py): read from an
sdist's PKG-INFO, outside text, so every value must come back from uv's TOML exactly as written."""

from __future__ import annotations

from gpuenv.resolve.packages import _metadata_toml
from gpuenv.tomlcompat import tomllib


def test_hostile_requires_dist_values_stay_values():
    hostile = ('b>=1; python_version < "3.9"', 'c\\d"]\n[[dependency-metadata]]\nname = "evil"', "x\x7f\x00", "é😀")
    read = tomllib.loads(_metadata_toml([("torch-scatter", "2.1.2", hostile)]))
    assert read == {"dependency-metadata": [{"name": "torch-scatter", "version": "2.1.2", "requires-dist": list(hostile)}]}
