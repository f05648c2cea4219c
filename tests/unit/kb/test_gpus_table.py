"""kb/data/gpus.toml against NVIDIA's CUDA GPUs pages and the toolkit notes on architectures (fixtures/kb/nvidia)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from gpuenv.kb import load_table

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NVIDIA = FIXTURES / "kb" / "nvidia"
CURRENT = "https://developer.nvidia.com/cuda-gpus"
LEGACY = "https://developer.nvidia.com/cuda-legacy-gpus"
NOT_LISTED = "not on NVIDIA's CUDA GPUs list"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _section(name: str, tag: str) -> list[str]:
    text = (NVIDIA / name).read_text("utf-8")
    body = re.search(rf"^\[{tag}\]\n(.*?)^\[/{tag}\]$", text, re.S | re.M)
    assert body, f"no [{tag}] section in {name}"
    return [line for line in body.group(1).splitlines() if line.strip()]


def _current_page() -> dict[str, str]:
    """model -> cc on today's developer.nvidia.com/cuda-gpus (one model per line under its cc, then cc: a, b)."""
    models, cc = {}, None
    for line in _section("cuda-gpus.md", "current"):
        if re.fullmatch(r"\d+\.\d+", line.strip()):
            cc = line.strip()
        else:
            models[line.strip().lower()] = cc
    for line in _section("cuda-gpus.md", "current-rest"):
        cc, names = line.split(": ", 1)
        for name in names.split(", "):
            assert models.get(name.lower(), cc) == cc, name
            models[name.lower()] = cc
    return models


def _single_page() -> dict[str, str]:
    """model -> cc from the earlier single-page edition ("3" means 3.0)."""
    pairs = {}
    for line in _section("cuda-gpus.md", "single-page"):
        cells = line.split("\t")
        for name, cc in zip(cells[::2], cells[1::2]):
            pairs[name.strip().lower()] = cc if "." in cc else cc + ".0"
    return pairs


_NEXT_MODEL = r"(?=\s+(?:Tesla|Quadro|NVIDIA|GeForce|Jetson|P\d{3}\b)|\s*\||\s*$)"


def _legacy_ccs(name: str) -> set[str]:
    """The ccs of the legacy page's rows that list `name` as a whole model (models are space-joined there)."""
    found = set()
    for line in _section("cuda-gpus.md", "legacy"):
        cc, rest = line.split(" | ", 1)
        if re.search(r"(?:^|\s)" + re.escape(name) + _NEXT_MODEL, rest, re.I):
            found.add(cc)
    return found


def _listed_ccs(name: str) -> tuple[set[str], bool]:
    """Every cc an NVIDIA page gives `name`, and whether today's main page lists it."""
    current, single = _current_page(), _single_page()
    ccs = _legacy_ccs(name)
    for table in (current, single):
        if name.lower() in table:
            ccs.add(table[name.lower()])
    return ccs, name.lower() in current


def test_the_loader_accepts_the_table():
    table = load_table("gpus")
    assert len(table["arch"]) >= 20 and len(table["gpu"]) >= 100
    for row in table["arch"] + table["gpu"]:
        assert row["source"].startswith("https://") and row["retrieved"] == dt.date(2026, 11, 22)


@pytest.mark.parametrize("row", load_table("gpus")["gpu"], ids=lambda r: r["name"])
def test_a_model_has_the_cc_nvidia_lists_for_it(row):
    ccs, on_current_page = _listed_ccs(row["name"])
    if NOT_LISTED in (row.get("note") or ""):
        assert ccs == set(), f"{row['name']} is listed after all: {ccs}"
        return
    assert ccs == {row["cc"]}
    assert row["source"] == (CURRENT if on_current_page else LEGACY)


def test_every_model_on_todays_page_is_in_the_table():
    names = {row["name"].lower(): row["cc"] for row in load_table("gpus")["gpu"]}
    page = _current_page()
    assert len(page) >= 80
    for name, cc in page.items():
        assert names.get(name) == cc, name


def test_every_model_has_a_cc_with_an_arch_row():
    ccs = {row["cc"] for row in load_table("gpus")["arch"]}
    assert {row["cc"] for row in load_table("gpus")["gpu"]} <= ccs


def test_nvidia_smi_spellings_find_their_model():
    by_spelling: dict[str, str] = {}
    for row in load_table("gpus")["gpu"]:
        for spelling in [row["name"], *row.get("aliases", [])]:
            assert by_spelling.setdefault(spelling.lower(), row["cc"]) == row["cc"], spelling
    recorded = FIXTURES / "hosts" / "h200-firecracker-2026-11-22" / "nvidia-smi-query-gpu.csv"
    with recorded.open() as handle:
        gpus = list(csv.DictReader(handle, skipinitialspace=True))
    assert gpus and all(by_spelling[g["name"].lower()] == g["compute_cap"] for g in gpus)
    expected = {"NVIDIA H200": "9.0", "Tesla V100-SXM2-16GB": "7.0", "NVIDIA GeForce RTX 3090": "8.6",
                "NVIDIA A100-SXM4-80GB": "8.0", "Tesla T4": "7.5", "Tesla K80": "3.7",
                "NVIDIA GeForce RTX 5090": "12.0"}
    for spelling, cc in expected.items():
        assert by_spelling[spelling.lower()] == cc, spelling


# --- architectures: which toolkits build for which cc -------------------------------------------------------

def _arches() -> dict[str, dict]:
    return {row["cc"]: row for row in load_table("gpus")["arch"]}


def _listed(tag: str) -> list[tuple[list[str], str]]:
    rows = []
    for line in _section("arch-support.md", tag):
        ccs, version, _why = line.split(" | ", 2)
        rows.append((ccs.split(), version))
    return rows


def test_last_toolkit_of_each_dropped_arch():
    listed = {cc: last for ccs, last in _listed("drop") for cc in ccs}
    dropped = {cc: row["last_cuda"] for cc, row in _arches().items() if row.get("last_cuda")}
    assert dropped == listed


def test_first_toolkit_of_the_newest_archs():
    for ccs, first in _listed("first"):
        for cc in ccs:
            assert _arches()[cc]["first_cuda"] == first, cc


def _sdk_lines() -> list[tuple[str, str, tuple[int, int], tuple[int, int]]]:
    """(first SDK, last SDK, lowest cc, highest cc) per line of the Wikipedia table; "5.x" reads as (5, 99)."""
    lines = []
    for line in _section("arch-support.md", "sdk"):
        m = re.match(r"CUDA SDK ([\d.]+)(?: – ([\d.]+))? support for compute capability ([\d.]+) – (\d+)\.(\d+|x)",
                     line)
        assert m, line
        low = _key(m.group(3))
        high = (int(m.group(4)), 99 if m.group(5) == "x" else int(m.group(5)))
        last = ".".join((m.group(2) or m.group(1)).split(".")[:2])
        lines.append((m.group(1), last, (low[0], low[1]), high))
    return lines


@pytest.mark.parametrize("cc", sorted(_arches(), key=_key))
def test_an_arch_range_agrees_with_every_sdk_line(cc):
    row, cc_key = _arches()[cc], _key(cc)
    first, last = _key(row["first_cuda"]), _key(row["last_cuda"]) if row.get("last_cuda") else (99,)
    covering, coarse = [], []
    for sdk_first, sdk_last, low, high in _sdk_lines():
        if high[1] == 99 and cc_key[0] == high[0]:
            coarse.append(sdk_first)  # "5.x": too coarse to say which 5.y that SDK already had
            continue
        if low <= cc_key <= high:
            covering.append(sdk_first)
            assert first <= _key(sdk_first) and last >= _key(sdk_last), (sdk_first, sdk_last)
        elif cc_key < low:
            assert last < _key(sdk_first), (sdk_first, sdk_last)
        else:
            assert first > _key(sdk_last), (sdk_first, sdk_last)
    earliest_listed = min((line[0] for line in _sdk_lines()), key=_key)
    earliest = min(covering + coarse, key=_key) if covering else None
    if earliest in covering and earliest != earliest_listed:  # the first SDK that lists it is where it starts
        assert row["first_cuda"] == earliest


def test_cuda_13_builds_turing_on_and_12_9_still_builds_maxwell():
    def builds(cuda: str) -> set[str]:
        return {cc for cc, row in _arches().items() if _key(row["first_cuda"]) <= _key(cuda)
                and (not row.get("last_cuda") or _key(cuda) <= _key(row["last_cuda"]))}
    assert min(builds("13.0"), key=_key) == "7.5" and "10.1" not in builds("13.0") and "11.0" in builds("13.0")
    assert {"5.0", "6.1", "7.0", "12.0", "10.1"} <= builds("12.9") and "3.7" not in builds("12.9")
    assert "3.7" in builds("11.8") and "3.0" not in builds("11.0") and "2.0" not in builds("9.0")
    nvcc_12_8 = {"5.0", "5.2", "5.3", "6.0", "6.1", "6.2", "7.0", "7.2", "7.5", "8.0", "8.6", "8.7", "8.9", "9.0",
                 "10.0", "10.1", "12.0"}  # `nvcc --list-gpu-code` of 12.8 (fixtures/kb/nvidia/arch-support.md)
    assert builds("12.8") == nvcc_12_8
