"""kb/data/mxnet.toml against the upstream text it was read from (tests/fixtures/kb/mxnet/).

The fixtures are parsed here on their own: the PyPI simple index of every mxnet-cuXY[mkl] project (which releases
have a Linux wheel), the variant blocks of tools/setup_gpu_build_tools.sh (toolkit and cuDNN per variant) and the
Python classifiers of the projects' metadata.
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "mxnet"
# 1.9.1-only projects uploaded three months after the release, with no build record in a release script: the table
# leaves them out on purpose (see the header of mxnet.toml); a project not named here must be in the table.
LEFT_OUT = {"mxnet-cu111", "mxnet-cu113", "mxnet-cu114", "mxnet-cu115", "mxnet-cu116", "mxnet-cu117"}
FIRST_BUILD_RECORD = Version("1.5.0")


def _cuda_of(variant: str) -> str:
    """'cu102' / 'mxnet-cu90mkl' -> '10.2' / '9.0'."""
    digits = re.search(r"cu(\d+)", variant)[1]
    return f"{digits[:-1]}.{digits[-1]}"


@lru_cache(maxsize=None)
def index() -> tuple[dict[str, list[str]], set[Version]]:
    """project -> filenames, and every final release any mxnet project (CPU included) published."""
    files: dict[str, list[str]] = defaultdict(list)
    universe: set[Version] = set()
    for line in (FIXTURES / "pypi_simple_files.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("mxnet versions: "):
            universe |= {Version(v) for v in line.split(": ")[1].split()}
            continue
        project, filename = line.split()
        files[project].append(filename)
        universe.add(Version(filename.split("-")[1]))
    return dict(files), {v for v in universe if not v.is_prerelease}


def linux_releases(project: str) -> dict[Version, list[str]]:
    """Final releases with a Linux x86_64 wheel -> their python tags ('py2.py3', 'cp27', ...)."""
    out: dict[Version, list[str]] = defaultdict(list)
    for filename in index()[0][project]:
        parts = filename[:-len(".whl")].split("-") if filename.endswith(".whl") else []
        if parts and "manylinux" in parts[-1] and "x86_64" in parts[-1] and not Version(parts[1]).is_prerelease:
            out[Version(parts[1])].append(parts[-3])
    return dict(out)


def projects() -> list[str]:
    return sorted(p for p in index()[0] if p not in LEFT_OUT)


@lru_cache(maxsize=None)
def script_sections() -> list[dict]:
    """The stored copies of setup_gpu_build_tools.sh: release specifier, variants taken for, URL, variant blocks."""
    text = (FIXTURES / "setup_gpu_build_tools.txt").read_text()
    sections = []
    for chunk in text.split("\n== ")[1:]:
        header, body = chunk.split("\n", 1)
        spec_and_variants, url = (part.strip() for part in header.split(" | "))
        spec, *only = spec_and_variants.split()
        blocks = {}
        for variant, lines in re.findall(r"if \[\[ \$VARIANT == (cu\d+)\* \]\]; then\n((?:    .*\n)+)", body):
            toolkit = re.search(r"CUDA_VERSION='([^']+)'", lines)[1]
            toolkit = toolkit.replace("-", ".") if toolkit.count(".") == 1 else toolkit.rsplit("-", 1)[0]
            cudnn = re.search(r"LIBCUDNN_VERSION='([^'-]+)", lines)[1]
            blocks[_cuda_of(variant)] = (toolkit, cudnn)
        taken_for = {_cuda_of(v) for v in only} or set(blocks)
        sections.append({"spec": spec, "url": url, "blocks": blocks, "taken_for": taken_for})
    return sections


@lru_cache(maxsize=None)
def classifiers() -> dict[tuple[str, Version], list[str]]:
    out = {}
    for line in (FIXTURES / "pypi_classifiers.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        head, tail = line.split(" | ")
        project, version = head.split()
        out[(project, Version(version))] = [c.rsplit(":: ", 1)[1] for c in tail.split(" ; ")]
    return out


def table():
    return load_table("mxnet")


def _variant(project: str) -> dict:
    rows = [r for r in table()["variant"] if r["package"] == project]
    assert len(rows) == 1, f"{len(rows)} variant rows for {project}"
    return rows[0]


def _matching(array: str, version: Version, cuda: str | None = None) -> list[dict]:
    return [r for r in table()[array] if (cuda is None or r["cuda"] == cuda)
            and SpecifierSet(r["versions"]).contains(version)]


def test_the_loader_accepts_the_table():
    t = table()
    assert len(t["variant"]) == 18 and t["build"] and t["python"]


def test_the_fixtures_are_what_they_should_be():
    files, universe = index()
    assert len(files) == 24 and Version("1.6.0") in universe and Version("2.0.0b1") not in universe
    assert len(script_sections()) == 5 and all(s["blocks"] for s in script_sections())


def test_there_is_one_variant_row_per_pypi_project():
    assert sorted(r["package"] for r in table()["variant"]) == projects()
    assert not LEFT_OUT & {r["package"] for r in table()["variant"]}


@pytest.mark.parametrize("project", projects())
def test_variant_versions_are_exactly_the_releases_with_a_linux_wheel(project):
    row, universe = _variant(project), index()[1]
    spec = SpecifierSet(row["versions"])
    assert {v for v in universe if spec.contains(v)} == set(linux_releases(project))


@pytest.mark.parametrize("project", projects())
def test_variant_cuda_and_mkl_follow_the_project_name(project):
    row = _variant(project)
    assert (row["cuda"], row["mkl"]) == (_cuda_of(project), project.endswith("mkl"))


@pytest.mark.parametrize("row", [r for r in load_table("mxnet")["build"]
                                 if r["source"] in {s["url"] for s in script_sections()}],
                         ids=lambda r: f"cu{r['cuda']}:{r['versions']}")
def test_build_rows_say_what_their_script_copy_says(row):
    section = next(s for s in script_sections() if s["url"] == row["source"])
    assert row["cuda"] in section["taken_for"], "the copy is not taken for this variant"
    if not row["note"].startswith("inferred"):  # an inferred row borrows a copy taken for other releases
        assert row["versions"] == section["spec"]
    assert (row["toolkit"], row["cudnn"]) == section["blocks"][row["cuda"]]


@pytest.mark.parametrize("section", script_sections(), ids=lambda s: s["spec"])
def test_every_script_block_with_published_wheels_is_in_the_table(section):
    spec = SpecifierSet(section["spec"])
    for cuda in section["taken_for"]:
        published = [(p, v) for p in projects() if _cuda_of(p) == cuda for v in linux_releases(p) if spec.contains(v)]
        rows = [r for r in table()["build"] if r["source"] == section["url"] and r["cuda"] == cuda]
        assert bool(published) == bool(rows), f"cu{cuda} {section['spec']}: {published[:3]} vs {rows}"


def test_rows_without_a_script_copy_say_so_and_keep_the_toolkit_every_copy_has():
    copies = {s["url"] for s in script_sections()}
    other = [r for r in table()["build"] if r["source"] not in copies]
    assert other and all("compat research" in r["note"] for r in other)
    for row in other:
        toolkits = {s["blocks"][row["cuda"]][0] for s in script_sections() if row["cuda"] in s["blocks"]}
        assert toolkits == {row["toolkit"]}


@pytest.mark.parametrize("project", projects())
def test_every_linux_wheel_from_1_5_has_exactly_one_build_row(project):
    for version in linux_releases(project):
        rows = _matching("build", version, _variant(project)["cuda"])
        assert len(rows) == (1 if version >= FIRST_BUILD_RECORD else 0), f"{project} {version}: {rows}"


def test_build_ranges_of_a_variant_do_not_overlap():
    for version in sorted(index()[1]):
        for cuda in {r["cuda"] for r in table()["build"]}:
            assert len(_matching("build", version, cuda)) <= 1, (version, cuda)


@pytest.mark.parametrize("key", sorted(classifiers()), ids=lambda k: f"{k[0]}=={k[1]}")
def test_python_rows_are_the_setup_py_classifiers(key):
    rows = _matching("python", key[1])
    assert len(rows) == 1 and rows[0]["python"] == classifiers()[key]


@pytest.mark.parametrize("project", projects())
def test_python_rows_cover_every_release_and_the_wheel_tags(project):
    for version, tags in linux_releases(project).items():
        rows = _matching("python", version)
        assert len(rows) == 1, f"{project} {version}"
        pythons = set(rows[0]["python"])
        for tag in tags:
            if tag.startswith("cp"):
                assert f"{tag[2]}.{tag[3:]}" in pythons, (project, version, tag)
            if tag.startswith("py") and "py2" not in tag.split("."):
                assert "2.7" not in pythons, (project, version, tag)


def test_python_2_ends_with_1_6():
    assert "2.7" in _matching("python", Version("1.6.0.post0"))[0]["python"]
    assert "2.7" not in _matching("python", Version("1.7.0"))[0]["python"]
