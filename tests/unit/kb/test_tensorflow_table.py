"""kb/data/tensorflow.toml against the upstream text it was read from (tests/fixtures/kb/tensorflow/).

The fixtures are parsed here on their own, without the table: the tested-configuration rows of source.md, the
PyPI simple index (which project's Linux wheels hold the CUDA build, which Pythons have wheels), the wheels'
METADATA (the and-cuda extra and its CUDA/cuDNN pins) and the Docker Hub -py3 rule.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from gpuenv.kb import load_table

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "tensorflow"
GPU_ROW = re.compile(
    r"<tr><td>tensorflow(?:_gpu)?-([\d.]+)</td><td>([^<]+)</td><td>[^<]+</td><td>[^<]+</td>"
    r"<td>([^<]+)</td><td>([^<]+)</td></tr>"
)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _expand(pythons: str) -> list[str]:
    """'2.7, 3.3-3.6' -> ['2.7', '3.3', '3.4', '3.5', '3.6'], as the table writes ranges."""
    out: list[str] = []
    for part in (p.strip() for p in pythons.split(",")):
        if "-" not in part:
            out.append(part)
            continue
        low, high = (tuple(int(n) for n in end.split(".")) for end in part.split("-"))
        assert low[0] == high[0], part
        out += [f"{low[0]}.{minor}" for minor in range(low[1], high[1] + 1)]
    return out


@lru_cache(maxsize=None)
def source_rows() -> dict[str, dict]:
    """The Linux GPU table of source.md, by minor version."""
    rows = {}
    for version, python, cudnn, cuda in GPU_ROW.findall((FIXTURES / "source_md_linux_gpu.html").read_text()):
        rows[_minor(version)] = {"label": version, "python": _expand(python), "cudnn": cudnn, "cuda": cuda}
    return rows


@lru_cache(maxsize=None)
def wheels() -> dict[str, dict[Version, list[tuple[str, int]]]]:
    """project -> final version -> [(python 'X.Y', size in bytes)] of its Linux x86_64 wheels."""
    out: dict[str, dict[Version, list[tuple[str, int]]]] = {"tensorflow": defaultdict(list),
                                                              "tensorflow-gpu": defaultdict(list)}
    for line in (FIXTURES / "pypi_linux_wheels.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        project, filename, size = line.split()
        match = re.fullmatch(r"[^-]+-([^-]+)-cp(\d)(\d+)-[^-]+-[^-]+\.whl", filename)
        if match:
            out[project][Version(match[1])].append((f"{match[2]}.{match[3]}", int(size)))
    return out


@lru_cache(maxsize=None)
def metadata() -> dict[Version, str]:
    """tensorflow version -> the METADATA excerpt of its wheel."""
    blocks = (FIXTURES / "pypi_wheel_metadata.txt").read_text().split("\n## ")[1:]
    out = {}
    for block in blocks:
        version = re.search(r"^Version: (\S+)$", block, re.M)[1]
        out[Version(version)] = block
    return out


def _pin(block: str, wheel: str) -> str | None:
    """Major.minor of the version an and-cuda requirement pins (==) or floors (>=), e.g. cudnn '9.3'."""
    match = re.search(rf"^Requires-Dist: {wheel}-cu\d+\W[^;]*?(?:==|>=)\s*([\d.]+)", block, re.M)
    return _minor(match[1]) if match else None


def releases() -> list[Version]:
    """Every final release from 1.0.0 on that has Linux wheels, in either project."""
    found = set(wheels()["tensorflow"]) | set(wheels()["tensorflow-gpu"])
    return sorted(v for v in found if v >= Version("1.0.0"))


def table():
    return load_table("tensorflow")


def _build(minor: str) -> dict:
    rows = [r for r in table()["build"] if r["version"] == minor]
    assert len(rows) == 1, f"{len(rows)} build rows for {minor}"
    return rows[0]


def _one(array: str, version: Version) -> dict:
    rows = [r for r in table()[array] if SpecifierSet(r["versions"]).contains(version, prereleases=True)]
    assert len(rows) == 1, f"{version}: {len(rows)} {array} rows match"
    return rows[0]


def test_the_loader_accepts_the_table():
    t = table()
    assert len(t["build"]) >= 38 and t["package"] and t["image"]


def test_the_fixtures_are_what_they_should_be():
    assert len(source_rows()) == 35 and source_rows()["1.0"]["label"] == "1.0.0"
    assert wheels()["tensorflow"][Version("2.21.0")] and len(metadata()) >= 15


@pytest.mark.parametrize("minor", sorted(source_rows(), key=Version))
def test_every_source_md_row_is_in_the_table(minor):
    want, row = source_rows()[minor], _build(minor)
    assert (row["python"], row["cuda"], row["cudnn"]) == (want["python"], want["cuda"], want["cudnn"])
    assert row["source"] == "https://www.tensorflow.org/install/source#gpu"


def test_there_is_one_build_row_per_minor_release_from_1_0_to_the_newest():
    minors = sorted({_minor(str(v)) for v in releases()}, key=Version)
    assert sorted((r["version"] for r in table()["build"]), key=Version) == minors
    assert minors[0] == "1.0" and minors[-1] == "2.21"


@pytest.mark.parametrize("minor,cuda,cudnn", [
    ("1.0", "8", "5.1"), ("1.2", "8", "5.1"), ("1.3", "8", "6"), ("1.4", "8", "6"), ("1.5", "9", "7"),
    ("1.13", "10.0", "7.4"), ("2.1", "10.1", "7.6"), ("2.4", "11.0", "8.0"), ("2.15", "12.2", "8.9"),
])
def test_the_cuda_and_cudnn_boundaries_blogs_get_wrong(minor, cuda, cudnn):
    row = _build(minor)
    assert (row["cuda"], row["cudnn"]) == (cuda, cudnn)


def test_rows_newer_than_the_source_md_copy_agree_with_the_and_cuda_pins():
    newest = max(source_rows(), key=Version)
    newer = [r for r in table()["build"] if Version(r["version"]) > Version(newest)]
    assert [r["version"] for r in newer] and all("compat research" in r.get("note", "") for r in newer)
    for row in newer:
        block = metadata()[Version(row["version"] + ".0")]
        assert (_pin(block, "nvidia-cuda-runtime"), _pin(block, "nvidia-cudnn")) == (row["cuda"], row["cudnn"])


@pytest.mark.parametrize("version", sorted(metadata()), ids=str)
def test_every_and_cuda_pin_agrees_with_the_build_row_of_its_minor(version):
    block = metadata()[version]
    if "Provides-Extra: and-cuda" not in block:
        return
    row = _build(_minor(str(version)))
    assert (_pin(block, "nvidia-cuda-runtime"), _pin(block, "nvidia-cudnn")) == (row["cuda"], row["cudnn"])


@pytest.mark.parametrize("minor", sorted({r["version"] for r in load_table("tensorflow")["build"]}, key=Version))
def test_the_wheels_of_each_minor_are_within_its_tested_pythons(minor):
    first = min(v for v in releases() if _minor(str(v)) == minor)
    project = _one("package", first)["project"]
    published = {py for py, _ in wheels()[project][first]}
    assert published and published <= set(_build(minor)["python"])


def test_package_ranges_cover_every_release_from_1_0_to_the_newest_without_overlap():
    for version in releases():
        _one("package", version)
    assert releases()[-1] == Version("2.21.0")


@pytest.mark.parametrize("version", releases(), ids=str)
def test_the_package_row_names_the_project_whose_wheels_hold_the_cuda_build(version):
    row = _one("package", version)
    sizes = {p: max((s for _, s in w[version]), default=0) for p, w in wheels().items()}
    assert sizes[row["project"]] > 0, f"{row['project']} has no Linux wheel of {version}"
    assert sizes[row["project"]] >= 0.9 * max(sizes.values()), f"{version}: {sizes}"


@pytest.mark.parametrize("version", sorted(metadata()), ids=str)
def test_the_and_cuda_extra_is_named_exactly_where_the_wheel_provides_it(version):
    row = _one("package", version)
    provided = "Provides-Extra: and-cuda" in metadata()[version]
    assert (row.get("extra") == "and-cuda") == provided
    assert row["cuda_source"] == ("wheels" if provided else "base-image")


def test_the_release_notes_boundaries():
    notes = (FIXTURES / "release_notes.txt").read_text()
    assert "1.15.2 uses `tensorflow_gpu` for GPU and `tensorflow` for CPU" in notes
    assert _one("package", Version("1.15.2"))["project"] == "tensorflow-gpu"
    assert "The `tensorflow` pip package now includes GPU support by default" in notes
    assert _one("package", Version("2.1.0"))["project"] == "tensorflow"
    assert _one("package", Version("2.0.0"))["project"] == "tensorflow-gpu"
    assert _one("package", Version("1.15.0"))["project"] == "tensorflow"
    assert "All our prebuilt binaries have been built with cuDNN 6." in notes
    assert _build("1.3")["cudnn"] == _build("1.4")["cudnn"] == "6"  # 1.4 shipped with 6, not the anticipated 7
    sdist = [line for line in (FIXTURES / "pypi_linux_wheels.txt").read_text().splitlines() if ".tar.gz" in line]
    assert sdist == ["tensorflow-gpu tensorflow-gpu-2.12.0.tar.gz 2646"]


@pytest.mark.parametrize("version", releases(), ids=str)
def test_image_tags_follow_the_docker_hub_py3_rule(version):
    rule = re.search(r"Versioned images <= ([\d.]+) \(1\.x\) and <= ([\d.]+) \(2\.x\) have Python 3",
                     (FIXTURES / "docker_images.txt").read_text())
    last_1x, last_2x = Version(rule[1]), Version(rule[2])
    py3_tag = version <= last_1x or (version.major == 2 and version <= last_2x)
    row = _one("image", version)
    assert row["tag"] == ("{version}-gpu-py3" if py3_tag else "{version}-gpu")
    assert row["python"].split(".")[0] == "3"
