"""kb/data/compilers.toml against what it was read from (tests/fixtures/kb/compilers/).

host_config.txt: the `#if __GNUC__ > N` check of include/crt/host_config.h in every x86_64 nvcc (cu11, cu12)
and crt (CUDA 13) wheel on PyPI, with each wheel's URL. os_gcc.txt: each release's gcc, from its Packages
indexes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from gpuenv.kb import load_table

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "compilers"


def _wheels() -> dict[str, dict[str, tuple[str, str]]]:
    """CUDA minor -> {wheel version: (max gcc, wheel URL)}."""
    found: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for line in (FIXTURES / "host_config.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        head, url, check = (part.strip() for part in line.split("|"))
        version = head.split()[1]
        if re.search(r"(rc|a|b|dev)\d*$", version):
            continue
        gcc = re.fullmatch(r"include/crt/host_config.h: #if __GNUC__ > (\d+)", check)
        assert gcc, line
        found[".".join(version.split(".")[:2])][version] = (gcc.group(1), url)
    return found


def test_every_cuda_minor_on_pypi_has_its_row_with_the_headers_limit():
    rows = {r["cuda"]: r for r in load_table("compilers")["host_gcc"]}
    wheels = _wheels()
    assert set(rows) == set(wheels)
    for minor, seen in wheels.items():
        limits = {gcc for gcc, _ in seen.values()}
        assert limits == {rows[minor]["max_gcc"]}, (minor, limits)
        assert sorted(rows[minor]["nvcc"]) == sorted(seen), minor
        assert rows[minor]["source"] in {url for _, url in seen.values()}


def test_the_limit_never_falls_as_cuda_rises():
    rows = sorted(load_table("compilers")["host_gcc"], key=lambda r: tuple(map(int, r["cuda"].split("."))))
    limits = [int(r["max_gcc"]) for r in rows]
    assert limits == sorted(limits)


def test_each_releases_gcc_is_what_its_archive_holds():
    seen = {}
    for line in (FIXTURES / "os_gcc.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        os_name, default, available, indexes = (part.strip() for part in line.split("|"))
        seen[os_name] = (default, available.split(), indexes.split())
    rows = load_table("compilers")["os_gcc"]
    assert rows
    for row in rows:
        default, available, indexes = seen[row["os"]]
        assert (row["default"], row["available"]) == (default, available), row["os"]
        assert row["default"] in row["available"]
        assert row["source"].replace("https://", "http://") in indexes
    releases = {r["os"] for r in load_table("os_releases")["release"]}
    assert {r["os"] for r in rows} <= releases


def test_only_the_cuda_majors_whose_nvcc_wheels_hold_nvcc_have_pip_compiler_packages():
    """nvcc_wheels.txt: the bin/ files of every x86_64 nvcc wheel on PyPI. CUDA 11 and 12's hold ptxas alone."""
    holds: dict[str, set[bool]] = defaultdict(set)
    for line in (FIXTURES / "nvcc_wheels.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        head, _, files = (part.strip() for part in line.split("|"))
        version = head.split()[1]
        holds[version.split(".")[0]].add("nvcc" in files.removeprefix("bin:").split())
    assert holds == {"11": {False}, "12": {False}, "13": {True}}
    rows = {r["major"]: r for r in load_table("compilers")["compiler_wheels"]}
    assert set(rows) == {m for m, found in holds.items() if found == {True}}
    assert "nvidia-cuda-nvcc" in rows["13"]["packages"] and "nvidia-nvvm" in rows["13"]["packages"]
