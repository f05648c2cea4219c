"""kb/data/cuda_images.toml against NVIDIA's tag lists and Dockerfiles (fixtures/kb/nvidia).

A row stands for the tags {version}-{cudnn_token}-{flavor}-{os} (or {version}-{flavor}-{os} without cuDNN), one per
flavor. The tag lists are parsed here on their own; each tag must come from exactly the row whose status matches the
list it is in, and each row's tags must all be in that list.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from gpuenv.kb import load_table

NVIDIA = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "nvidia"
SUPPORTED = "https://gitlab.com/nvidia/container-images/cuda/-/blob/master/doc/supported-tags.md"
UNSUPPORTED = "https://gitlab.com/nvidia/container-images/cuda/-/blob/master/doc/unsupported-tags.md"
HUB = "https://hub.docker.com/r/nvidia/cuda/tags"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def tags_of(row: dict) -> list[str]:
    token = [row["cudnn_token"]] if row.get("cudnn_token") else []
    return ["-".join([row["version"], *token, flavor, row["os"]]) for flavor in row["flavors"]]


def _rows() -> tuple[dict, ...]:
    return load_table("cuda_images")["image"]


def _by_tag() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for row in _rows():
        for tag in tags_of(row):
            assert tag not in found, f"two rows make {tag}"
            found[tag] = row
    return found


def _list(name: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (NVIDIA / name).read_text("utf-8"), re.M))


def _supported() -> set[str]:
    return _list("supported-tags.md", r"^- \[`([^`]+)`")


def _unsupported() -> set[str]:
    return _list("unsupported-tags.md", r"^- `([^`]+)`")


def _section(name: str, tag: str) -> list[list[str]]:
    text = (NVIDIA / name).read_text("utf-8")
    body = re.search(rf"^\[{tag}\]\n(.*?)^\[/{tag}\]$", text, re.S | re.M)
    assert body, f"no [{tag}] in {name}"
    return [line.split(" | ", 1) for line in body.group(1).splitlines() if line.strip()]


def test_the_loader_accepts_the_table_and_rows_are_well_formed():
    rows = _rows()
    assert len(rows) >= 200
    for row in rows:
        assert row["status"] in {"available", "eol", "deleted"}
        assert row["retrieved"] == dt.date(2026, 11, 22) and row["source"].startswith("https://")
        assert bool(row.get("cudnn")) == bool(row.get("cudnn_token")), tags_of(row)
        assert row["flavors"] and set(row["flavors"]) <= {"base", "runtime", "devel", "tensorrt-runtime",
                                                           "tensorrt-devel"}
        assert row["cuda"] == ".".join(row["version"].split(".")[:2])
        assert row["os"].startswith("ubuntu")
    _by_tag()


@pytest.mark.parametrize("tag,status", [
    ("9.0-cudnn7-runtime-ubuntu16.04", "deleted"),
    ("8.0-cudnn5-runtime-ubuntu16.04", "deleted"),
    ("11.8.0-cudnn8-runtime-ubuntu22.04", "available"),
    ("12.4.1-cudnn-runtime-ubuntu22.04", "available"),
    ("12.3.2-cudnn9-runtime-ubuntu22.04", "available"),
    ("10.2-cudnn7-devel-ubuntu18.04", "deleted"),
    ("12.8.1-cudnn-runtime-ubuntu24.04", "eol"),
])
def test_the_tag_rule_makes_real_tags(tag, status):
    assert _by_tag()[tag]["status"] == status


def test_every_listed_tag_comes_from_a_row_of_its_status():
    made = _by_tag()
    supported, unsupported = _supported(), _unsupported()
    assert len(supported) >= 200 and len(unsupported) >= 250
    for tag in unsupported:
        assert made[tag]["status"] == "eol", tag
    for tag in supported - unsupported:
        assert made[tag]["status"] == "available", tag
    for tag in supported & unsupported:  # NVIDIA's lists overlap for 11.0.3-11.3.1: taken as EOL
        assert made[tag]["status"] == "eol", tag


def test_every_row_tag_is_in_the_list_its_status_and_source_name():
    supported, unsupported = _supported(), _unsupported()
    seen_2026 = {tag for tag, _line in _section("cuda-images-legacy.md", "seen-2026")}
    for row in _rows():
        tags = set(tags_of(row))
        if row["status"] == "eol":
            assert tags <= unsupported and row["source"] == UNSUPPORTED, tags
        elif row["status"] == "available" and row["source"] == SUPPORTED:
            assert tags <= supported and not tags & unsupported, tags
        elif row["status"] == "available":
            assert row["source"] == HUB and tags <= seen_2026 and not tags & supported, tags
        else:
            assert not tags & (supported | unsupported), tags


def test_seen_2026_tags_are_quoted_in_their_lines_and_are_rows():
    made = _by_tag()
    for tag, line in _section("cuda-images-legacy.md", "seen-2026"):
        assert f"nvidia/cuda:{tag}" in line
        assert made[tag]["status"] == "available" and _key(made[tag]["version"]) >= (13, 3)


def test_tags_reported_gone_are_deleted_rows():
    made = _by_tag()
    gone = _section("cuda-images-legacy.md", "gone")
    assert len(gone) >= 5
    for tag, report in gone:
        assert tag in report
        if tag == "latest":
            assert not any(row["version"] == "latest" for row in _rows())
        else:
            assert made[tag]["status"] == "deleted", tag


def test_versions_inside_match_nvidias_dockerfiles():
    made = _by_tag()
    for tag, env in _section("cuda-images-legacy.md", "dockerfile"):
        name, value = env.split()[1:3]
        value = value.split("-")[0]
        version = tag.split("-")[0]
        if name == "CUDA_VERSION":  # every image of that tag version holds it, whatever the OS
            rows = [row for row in _rows() if row["version"] == version]
            assert rows and {row["toolkit"] for row in rows} == {value}, tag
        else:
            assert made[tag]["cudnn"] == value, tag


def test_cudnn_tokens_follow_nvidias_grammar():
    for row in _rows():
        token, version = row.get("cudnn_token"), _key(row["version"])
        if token == "cudnn":
            assert version >= (12, 4, 1), row["version"]
        elif token == "cudnn9":
            assert row["version"] == "12.3.2"
        elif token:
            assert re.fullmatch(r"cudnn[5-8]", token) and token[5] == row["cudnn"].split(".")[0], tags_of(row)
            assert version < (12, 3, 2)
        if version >= (12, 4, 1):
            assert token in (None, "cudnn"), row["version"]


def test_every_cuda_release_has_images_and_a_table3_driver():
    toolkits = load_table("cuda")["toolkit"]
    minors = {row["cuda"] for row in toolkits}
    imaged = {row["cuda"] for row in _rows()}
    assert imaged <= minors
    assert minors - imaged == set(), sorted(minors - imaged, key=_key)
    assert "12.7" not in imaged
    versions = {row["version"] for row in toolkits}
    for row in _rows():
        if row["toolkit"] in versions:
            continue
        if len(row["version"].split(".")) == 2:  # X.Y tags: the build inside (9.0.176, 10.1.243) per Dockerfile
            assert row["cuda"] == row["version"] and _key(row["toolkit"])[:2] == _key(row["version"]), row["version"]
        else:  # X.Y.Z releases Table 3 leaves out (12.3.2, 12.8.2, 13.0.3, 13.1.2) say so
            assert "is not a Table 3 row" in row.get("note", ""), row["version"]


def test_each_supported_ubuntu_minor_offers_one_newest_point_release():
    newest: dict[tuple[str, str], set[str]] = {}
    for row in _rows():
        if row["status"] == "available" and row["source"] == SUPPORTED:
            newest.setdefault((row["cuda"], row["os"]), set()).add(row["version"])
    assert all(len(versions) == 1 for versions in newest.values()), newest
