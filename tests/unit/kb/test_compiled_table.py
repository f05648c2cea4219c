"""kb/data/compiled.toml: what ecosystem packages compile, when, with what, and what their builds read;
each row's source is one FINDINGS.md (tests/fixtures/kb/compiled/) cites with the facts read there."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from gpuenv.kb import load_table
from gpuenv.resolve.toolchain import compiled_row

FINDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "compiled" / "FINDINGS.md"


def test_every_row_is_well_formed_and_cited():
    rows = load_table("compiled")["package"]
    cited = FINDINGS.read_text()
    seen = set()
    for row in rows:
        assert row["name"] == canonicalize_name(row["name"]), row["name"]
        assert row["compiles"] in ("install", "first-use", "never") and row["needs"] in ("nvcc", "cc")
        assert (row["name"], row.get("versions", "")) not in seen, row["name"]
        seen.add((row["name"], row.get("versions", "")))
        if row.get("versions"):
            SpecifierSet(row["versions"])                     # a valid PEP 440 specifier
        assert bool(row.get("download_off")) == row["downloads_prebuilt"], row["name"]
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", v) for v in row["env"]), row["name"]
        source = row["source"].split("#")[0]
        commit = re.search(r"/blob/([0-9a-f]{7,40})/", source)
        assert source in cited or (commit and commit.group(1)[:7] in cited), (row["name"], source)


def test_rows_of_one_package_split_its_versions_without_overlap():
    rows = load_table("compiled")["package"]
    for name in {r["name"] for r in rows}:
        ranges = [SpecifierSet(r["versions"]) for r in rows if r["name"] == name and r.get("versions")]
        for version in ("0.1", "1.0", "2.0.5", "2.0.6", "2.7.4", "3.0", "10.0"):
            assert sum(version in r for r in ranges) <= 1, (name, version)


def test_the_facts_gpuenv_acts_on():
    assert compiled_row("flash-attn", "2.7.4")["download_off"] == "FLASH_ATTENTION_FORCE_BUILD"
    assert compiled_row("flash-attn", "2.7.4")["build_isolation"] is False
    assert compiled_row("deepspeed", "0.16.0")["compiles"] == "first-use"
    assert (compiled_row("triton", "3.2.0")["compiles"], compiled_row("triton", "3.2.0")["needs"]) == ("first-use", "cc")
    for name in ("torch-scatter", "mmcv", "pytorch3d", "detectron2"):
        assert "FORCE_CUDA" in compiled_row(name, None)["env"], name
