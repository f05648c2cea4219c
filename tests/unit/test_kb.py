"""The knowledge tables load, every row carries its source and date, and a broken row is an error."""

from __future__ import annotations

import datetime as dt

import pytest

from gpuenv.kb import KbError, load_table
from gpuenv.kb import frameworks
from gpuenv.kb.tables import _checked_rows


def test_every_row_of_the_frameworks_table_has_a_source_and_a_date():
    table = load_table("frameworks")
    rows = table["framework"] + table["misnomer"]
    assert len(rows) >= 10
    for row in rows:
        assert row["source"].startswith("https://pypi.org/project/")
        assert isinstance(row["retrieved"], dt.date)


@pytest.mark.parametrize("project,family", [
    ("torch", "torch"), ("TorchVision", "torch"), ("tensorflow_gpu", "tensorflow"),
    ("mxnet-cu90mkl", "mxnet"), ("mxnet-cu112", "mxnet"), ("mxnet", "mxnet"), ("mxnet-cu9", None),
    ("jaxlib", "jax"), ("paddlepaddle-gpu", "paddle"), ("cupy-cuda12x", "cupy"), ("cupy-cuda117", "cupy"),
    ("pandas", None), ("pytorch", None),
])
def test_family_of(project, family):
    assert frameworks.family_of(project) == family


def test_misnomers_and_close_names():
    assert frameworks.misnomer("PyTorch")[0] == "torch"
    assert frameworks.closest("tensorflwo") == "tensorflow"
    assert frameworks.closest("pandas") is None


@pytest.mark.parametrize("row,missing", [
    ({"family": "x", "name": "x", "retrieved": dt.date(2026, 1, 1)}, "source"),
    ({"family": "x", "name": "x", "source": "http://insecure", "retrieved": dt.date(2026, 1, 1)}, "source"),
    ({"family": "x", "name": "x", "source": "https://pypi.org/project/x/", "retrieved": "last year"}, "retrieved"),
])
def test_a_row_without_provenance_is_refused(row, missing):
    with pytest.raises(KbError) as caught:
        _checked_rows("frameworks", "framework", [row])
    assert missing in caught.value.message and "framework[0]" in caught.value.message
