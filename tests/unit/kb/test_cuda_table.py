"""kb/data/cuda.toml against the NVIDIA text it was read from (tests/fixtures/kb/nvidia/).

The excerpts are parsed here on their own, without the table, and every row of either side must be found
in the other with the same values: a typo in the table, a dropped or an invented release fails.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from gpuenv.kb import load_table

NVIDIA = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "nvidia"
TABLE3_URL = "https://docs.nvidia.com/cuda/archive/13.2.2/cuda-toolkit-release-notes/index.html"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _label(label: str) -> tuple[str, str | None]:
    """Table 3's first column -> (full toolkit version, release label or None where the row names none)."""
    label = " ".join(label.split())
    m = re.fullmatch(r"CUDA (\d+\.\d+) \((\d+\.\d+\.\d+)(?: (GA2|Update \d+|general release, and updates))?\)", label)
    if m:
        release = m.group(3)
        return m.group(2), ("GA" if release and release.startswith("general") else release)
    m = re.fullmatch(r"CUDA (\d+\.\d+\.\d+)(?: (GA|RC|Update \d+))?", label)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"CUDA (\d+\.\d+) (GA|Update (\d+))", label)
    if m:
        return f"{m.group(1)}.{m.group(3) or 0}", m.group(2)
    raise AssertionError(f"unparsed Table 3 label: {label!r}")


def _table3(name: str) -> dict[str, tuple[str | None, str]]:
    """version -> (release, Linux minimum driver) for every row of the first table of a Table 3 excerpt."""
    rows: dict[str, tuple[str | None, str]] = {}
    for line in (NVIDIA / name).read_text("utf-8").splitlines():
        if rows and not line.strip():
            break  # the table ends at the first blank line; what follows is commentary
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("CUDA ") and cells[1].startswith(">="):
            version, release = _label(cells[0])
            assert version not in rows, f"{version} twice in {name}"
            rows[version] = (release, cells[1][2:].strip())
    return rows


def _toolkits() -> dict[str, dict]:
    return {row["version"]: row for row in load_table("cuda")["toolkit"]}


def test_the_loader_accepts_the_table_and_every_row_is_dated_and_sourced():
    table = load_table("cuda")
    assert len(table["toolkit"]) >= 60 and len(table["minor_compat"]) == 3
    for row in table["toolkit"] + table["minor_compat"]:
        assert row["source"].startswith("https://docs.nvidia.com/")
        assert row["retrieved"] == dt.date(2026, 11, 22)


def test_every_table3_row_from_8_0_is_a_toolkit_row_and_nothing_else_cites_table3():
    excerpt = {v: r for v, r in _table3("table3.md").items() if _key(v) >= (8, 0)}
    cited = {v for v, row in _toolkits().items() if row["source"] == TABLE3_URL}
    assert len(excerpt) == 62
    assert cited == set(excerpt)


@pytest.mark.parametrize("version,expected", sorted(
    ((v, r) for v, r in _table3("table3.md").items() if _key(v) >= (8, 0)), key=lambda kv: _key(kv[0])))
def test_a_toolkit_row_says_what_table3_says(version, expected):
    release, driver = expected
    row = _toolkits()[version]
    assert row["min_driver"] == driver
    assert row["cuda"] == ".".join(version.split(".")[:2])
    if release is not None:
        assert row["release"] == release
    else:  # Table 3 names no label: the first release of its minor (8.0.44 is GA1 beside 8.0.61 GA2)
        assert row["release"] == ("GA1" if version == "8.0.44" else "GA")


def test_cuda_13_3_rows_match_the_13_3_notes():
    excerpt = _table3("table3-13.3.md")
    for version in ("13.3.0", "13.3.1"):
        assert _toolkits()[version]["min_driver"] == excerpt[version][1]
        assert _toolkits()[version]["release"] == excerpt[version][0]
    for version, (_, driver) in excerpt.items():  # the older rows that excerpt repeats agree with Table 3
        assert _toolkits()[version]["min_driver"] == driver


def _branches() -> dict[str, str]:
    text = (NVIDIA / "driver-branches-13.4.md").read_text("utf-8")
    return dict(re.findall(r"CUDA (13\.\d) \|\nR(\d+) \|", text))


def test_every_13_x_row_is_on_its_driver_branch_and_13_4_is_the_branch_floor():
    branches = _branches()
    assert branches == {"13.4": "615", "13.3": "610", "13.2": "595", "13.1": "590", "13.0": "580"}
    rows = [row for row in _toolkits().values() if row["cuda"].startswith("13.")]
    assert {row["cuda"] for row in rows} == set(branches)
    for row in rows:
        assert row["min_driver"].split(".")[0] == branches[row["cuda"]], row["version"]
    cuda_13_4 = {v: r["min_driver"] for v, r in _toolkits().items() if r["cuda"] == "13.4"}
    assert cuda_13_4 == {"13.4.1": "615", "13.4.2": "615"}


def test_13_4_versions_are_the_ones_nvidia_gives():
    text = (NVIDIA / "driver-branches-13.4.md").read_text("utf-8")
    assert "The CUDA Toolkit 13.4 GA release is versioned 13.4.1" in text
    assert "archive/13.4.2/" in text and "CUDA Toolkit 13.4 Update 1 - Release Notes" in text
    assert _toolkits()["13.4.1"]["release"] == "GA" and _toolkits()["13.4.2"]["release"] == "Update 1"
    assert "13.4.0" not in _toolkits()  # the developer preview is no release row


def test_there_is_no_cuda_12_7():
    assert "12.7" not in {row["cuda"] for row in _toolkits().values()}
    assert not any(v.startswith("12.7") for v in _table3("table3.md"))


def test_cuda_9_1_needs_390_46_not_the_first_notes_387_26():
    row = _toolkits()["9.1.85"]
    assert row["min_driver"] == "390.46" == _table3("table3.md")["9.1.85"][1]
    assert "387.26" in row["note"]
    assert "CUDA 9.1 (9.1.85) | >= 387.26" in (NVIDIA / "table3.md").read_text("utf-8")  # the value set aside


def test_drivers_never_go_down_within_a_cuda_minor():
    by_minor: dict[str, list[dict]] = {}
    for row in _toolkits().values():
        by_minor.setdefault(row["cuda"], []).append(row)
    for rows in by_minor.values():
        rows.sort(key=lambda r: _key(r["version"]))
        drivers = [_key(r["min_driver"]) for r in rows]
        assert drivers == sorted(drivers), rows[0]["cuda"]


def _minor_compat_excerpt() -> tuple[dict[str, str], str, str]:
    text = (NVIDIA / "minor-version-compatibility.md").read_text("utf-8")
    current = dict(re.findall(r"CUDA (\d+)\.x\n>= (\d+)\n", text))
    note = re.search(r"Tesla Recommended Drivers (\d+\.\d+\.\d+) \(Linux\)", text).group(1)
    earlier = re.search(r"\| CUDA 12\.x \| >=(\d+\.\d+\.\d+) \|", text).group(1)
    return current, note, earlier


def test_minor_version_compatibility_floors():
    current, note, earlier = _minor_compat_excerpt()
    assert current == {"13": "580", "12": "525", "11": "450"}
    rows = {row["major"]: row["min_driver"] for row in load_table("cuda")["minor_compat"]}
    assert set(rows) == set(current)
    for major, floor in rows.items():
        assert floor.split(".")[0] == current[major]
    assert rows["11"] == note == "450.80.02"
    assert rows["12"] == earlier == _toolkits()["12.0.0"]["min_driver"]  # the 12.0 GA driver
    assert rows["13"] == "580"
