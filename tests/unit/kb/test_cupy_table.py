"""kb/data/cupy.toml against the upstream text it was read from (tests/fixtures/kb/cupy/).

wheel_metadata.json: Provides-Extra, Requires-Python and the `ctk` requirement lines of the METADATA of every
cupy-cuda11x / 12x / 13x release (cp312, else cp310, manylinux wheel), read by HTTP ranges from PyPI.
install_rst_cuda_lines.txt: the "CUDA Toolkit" line of docs/source/install.rst at every release tag v4 ... v14.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from gpuenv.kb import KbError, load_table
from gpuenv.kb.refresh import CUPY_VARIANTS
from gpuenv.kb.tables import parse_table
from gpuenv.resolve.builds import published
from gpuenv.resolve.versions import matches

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "cupy"


@lru_cache(maxsize=None)
def metadata() -> list[dict]:
    return json.loads((FIXTURES / "wheel_metadata.json").read_text("utf-8"))


@lru_cache(maxsize=None)
def toolkit_lines() -> dict[str, list[str]]:
    """release -> the CUDA releases its install page lists."""
    found = {}
    for line in (FIXTURES / "install_rst_cuda_lines.txt").read_text("utf-8").splitlines():
        tag, text = line.split("|", 1)
        found[tag.lstrip("v")] = re.findall(r"v(\d+\.\d+)", text)
    return found


def _rows(array: str, project: str, version: str) -> list[dict]:
    return [r for r in load_table("cupy")[array] if r.get("project", project) == project
            and matches(r["versions"], version)]


@pytest.mark.parametrize("project", CUPY_VARIANTS)
def test_every_release_of_every_wheel_project_has_one_row(project):
    releases = published(project)
    assert releases, f"{project}: not in the PyPI snapshot (gpuenv kb refresh)"
    for version in releases:
        assert len(_rows("package", project, version)) == 1, (project, version)


def test_the_cudaxx_x_rows_are_the_install_pages_minors():
    pages = toolkit_lines()
    for project, major in (("cupy-cuda11x", "11"), ("cupy-cuda12x", "12"), ("cupy-cuda13x", "13")):
        for version in published(project) or {}:
            if version not in pages:
                continue
            listed = [m for m in pages[version] if m.split(".")[0] == major and (major != "11" or m >= "11.2")]
            row = _rows("package", project, version)[0]
            assert row["cuda"] == (listed or row["cuda"]), (project, version)


def test_the_single_cuda_projects_serve_their_own_cuda():
    for row in load_table("cupy")["package"]:
        digits = re.fullmatch(r"cupy-cuda(\d+)", row["project"])
        if digits:
            assert row["cuda"] == [f"{digits[1][:-1]}.{digits[1][-1]}"]


def test_ctk_rows_are_exactly_the_releases_whose_metadata_has_the_extra():
    for item in metadata():
        declared = any(line == "Provides-Extra: ctk" for line in item["metadata"])
        rows = _rows("ctk", item["project"], item["version"])
        assert bool(rows) == declared, (item["project"], item["version"])
        if rows:
            pin = next(line for line in item["metadata"] if 'extra == "ctk"' in line)
            assert f"=={rows[0]['cuda']}.*" in pin


def test_extras_rows_are_the_metadata_extras():
    for item in metadata():
        declared = {line.split(": ", 1)[1] for line in item["metadata"] if line.startswith("Provides-Extra: ")}
        rows = _rows("extras", item["project"], item["version"])
        assert len(rows) == 1 and set(rows[0]["extras"]) == declared, (item["project"], item["version"])


def test_the_snapshot_pythons_keep_to_the_metadata_floor():
    for item in metadata():
        floor = next((line.split(">=", 1)[1] for line in item["metadata"] if line.startswith("Requires-Python")), None)
        pythons = (published(item["project"]) or {}).get(item["version"], ())
        low = tuple(int(p) for p in floor.split(".")[:2])
        assert pythons and all(tuple(int(p) for p in py.split(".")) >= low for py in pythons), item["version"]


def test_a_package_row_with_cuda_as_text_is_refused():
    text = ('[[package]]\nproject = "cupy-cuda12x"\nversions = ""\ncuda = "12.0"\n'
            'source = "https://pypi.org/project/cupy-cuda12x/"\nretrieved = 2026-12-07\n')
    with pytest.raises(KbError, match="field `cuda` must be list"):
        parse_table("cupy", (text, "toml"))
