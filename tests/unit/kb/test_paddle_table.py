"""kb/data/paddle.toml against the upstream text it was read from (tests/fixtures/kb/paddle/).

pypi_wheels.json: for every release of PyPI's paddlepaddle-gpu, the lines of the version file generated into its
cp38 manylinux wheel (cuda_version / cudnn_version from 2.2 on) and its METADATA requirements, read by HTTP ranges.
install_docs.txt: the GPU lines of Paddle's install page (linux-pip_en.md) on each release branch, and the 3.x page.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from gpuenv.kb import KbError, load_table
from gpuenv.kb.tables import parse_table
from gpuenv.resolve.builds import published
from gpuenv.resolve.versions import matches

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "paddle"


@lru_cache(maxsize=None)
def wheels() -> list[dict]:
    return json.loads((FIXTURES / "pypi_wheels.json").read_text("utf-8"))


def _field(lines: list[str], name: str) -> str | None:
    found = next((re.search(r"'([^']*)'", line) for line in lines if line.startswith(name)), None)
    return found[1] if found else None


def _pypi_row(version: str) -> dict | None:
    post = re.search(r"\.post(\d+)$", version)
    rows = [r for r in load_table("paddle")["pypi"] if matches(r["versions"], version)
            and r.get("post", "") == (post[1] if post else "")]
    assert len(rows) <= 1, (version, rows)
    return rows[0] if rows else None


def docs() -> dict[str, str]:
    """Branch -> its lines of install_docs.txt."""
    parts: dict[str, list[str]] = {}
    branch = ""
    for line in (FIXTURES / "install_docs.txt").read_text("utf-8").splitlines():
        if line.startswith("== "):
            branch = line.split()[1]
            parts[branch] = []
        elif branch:
            parts[branch].append(line)
    return {b: "\n".join(lines) for b, lines in parts.items()}


@pytest.mark.parametrize("wheel", wheels(), ids=[w["version"] for w in wheels()])
def test_every_pypi_release_has_one_row_and_the_wheel_agrees_where_it_says(wheel):
    row = _pypi_row(wheel["version"])
    assert row is not None, f"no [[pypi]] row for paddlepaddle-gpu {wheel['version']}"
    cuda, cudnn = _field(wheel["version_file"], "cuda_version"), _field(wheel["version_file"], "cudnn_version")
    if cuda is not None:
        assert (row["cuda"], row["cudnn"]) == (cuda, cudnn)


def test_the_pypi_wheels_carry_no_cuda_so_the_system_must():
    for wheel in wheels():
        assert not [line for line in wheel["metadata"] if "nvidia-" in line.lower()], wheel["version"]


def test_the_wheel_files_say_cuda_from_2_2_on():
    said = [w["version"] for w in wheels() if _field(w["version_file"], "cuda_version")]
    assert said and min(said, key=lambda v: tuple(map(int, v.split(".")[:3]))) == "2.2.0"


def test_every_release_in_the_snapshot_is_covered():
    for version in published("paddlepaddle-gpu") or {}:
        assert _pypi_row(version) is not None, version


def test_the_index_rows_are_the_install_pages_commands():
    pages = docs()
    for row in load_table("paddle")["index"]:
        if not row["suffix"]:
            continue
        branch = "release/" + re.match(r">=(\d+\.\d+)", row["versions"])[1]
        assert re.search(rf"paddlepaddle-gpu==[\d.]+\.{row['suffix']}\b", pages[branch]), (branch, row["suffix"])
        assert re.search(rf"CUDA toolkit [\d./]*\b{re.escape(row['cuda'])}\b[\d./]* with cuDNN[^\n]*"
                         rf"{re.escape('.'.join(row['cudnn'].split('.')[:2]))}", pages[branch]), (branch, row["cuda"])


def test_the_3x_rows_match_the_3x_page_and_its_driver_floors():
    page = docs()["PaddlePaddle/PaddleOCR@039b80717a5973ea17c3b38f853f01c5097e1d4d"]
    for row in [r for r in load_table("paddle")["index"] if not r["suffix"]]:
        token = "cu" + row["cuda"].replace(".", "")
        floor = re.search(rf"driver version >= ([\d.]+) \(Linux\).*\n.*stable/{token}/", page)
        assert floor and floor[1] == row["min_driver"], token
        assert f"cuda{row['cuda']}-cudnn{row['cudnn']}" in page
        assert row["cuda_source"] == "wheels"


def test_routes_cover_every_index_row_and_name_the_docs_urls():
    table = load_table("paddle")
    pages = "\n".join(docs().values())
    for row in table["index"]:
        first = re.match(r">=([\d.]+)", row["versions"])[1] + ".0"
        route = [r for r in table["route"] if matches(r["versions"], first)]
        assert len(route) == 1, row
        token = "cu" + row["cuda"].replace(".", "")
        assert route[0]["url"].replace("{cu}", token).split("//", 1)[1] in pages


def test_gpu_floors_are_the_pages_words():
    pages = docs()
    for row in load_table("paddle")["gpu"]:
        assert f"computing power over {row['min_cc']}" in pages[row["source"].split("/blob/")[1].rsplit("/docs/", 1)[0]]


def test_a_row_without_its_cuda_is_refused():
    text = ('[[pypi]]\nversions = ">=9"\ncudnn = "9"\nsource = "https://pypi.org/project/paddlepaddle-gpu/"\n'
            "retrieved = 2026-12-07\n")
    with pytest.raises(KbError, match="missing field `cuda`"):
        parse_table("paddle", (text, "toml"))
