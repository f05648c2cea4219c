"""kb/data/jax.toml against the upstream text it was read from (tests/fixtures/kb/jax/).

The fixtures are parsed here on their own, without the table: the PyPI index (releases and Python tags of jaxlib and
the jax-cudaXY-plugin wheels), jax wheel METADATA (which CUDA extras a release has, their jaxlib build tag and cuDNN
pins), the plugins' METADATA (the cuDNN pin of their with-cuda extra), setup.py of the jax sdists for releases PyPI has
no wheel of, and the changelog / install-docs statements (cuDNN minimums, driver floors).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from gpuenv.kb import load_table

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "jax"
RETRIEVED = dt.date(2026, 11, 22)
ALIASES = re.compile(r"^cuda$|^cuda\d+-cudnn\d+$")  # jax[cuda], jax[cuda11_cudnn86] ...: checked by what they install


def norm(extra: str) -> str:
    """PEP 685 normalization: cuda12_local == cuda12-local."""
    return re.sub(r"[-_.]+", "-", extra).lower()


def _lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("# "))
    return [line for line in lines[start:] if line.strip()]


def _dotted(tag: str) -> str:
    """'86' -> '8.6', '91' -> '9.1' (jaxlib cudnnXY build tags)."""
    return f"{tag[0]}.{tag[1:]}"


# --- fixtures, parsed ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def variants() -> list[dict]:
    return [dict(r) for r in load_table("jax")["variant"]]


@lru_cache(maxsize=None)
def pypi_index() -> dict[str, dict[str, list[str]]]:
    """project -> version -> Python tags of its Linux x86_64 (or pure) wheels."""
    out: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for line in _lines("pypi-index.txt"):
        project, version, _date, *tags = line.split()
        out[project][version] = tags
    return out


def pythons(tags: list[str]) -> list[str]:
    return [f"{t[2]}.{t[3:]}" for t in tags if t.startswith("cp") and not t.endswith("t")]


@lru_cache(maxsize=None)
def jax_metadata() -> dict[str, dict[str, list[Requirement]]]:
    """jax version -> normalized extra -> its requirements (jaxlib / plugin / nvidia-cudnn), from wheels or sdists."""
    out: dict[str, dict[str, list[Requirement]]] = {}
    current: dict[str, list[Requirement]] | None = None
    for line in _lines("pypi-metadata.txt"):
        if line.startswith("== "):
            project, version = line[3:].split("-")[:2]
            current = out.setdefault(version, {}) if project == "jax" else None
        elif current is not None and (m := re.match(r"Provides-Extra: (\S+)", line)):
            current.setdefault(norm(m.group(1)), [])
        elif current is not None and line.startswith("Requires-Dist: "):
            req = Requirement(line[len("Requires-Dist: "):])
            extra = re.search(r"extra == ['\"]([^'\"]+)['\"]", str(req.marker)).group(1)
            current.setdefault(norm(extra), []).append(req)
    # sdists (0.4.7 ... 0.4.15): the extras and pins as setup.py spells them
    version, tags, pending = None, {}, None
    for line in _lines("sdist-setup-py.txt"):
        if m := re.match(r"== jax-([\d.]+)\.tar\.gz", line):
            version, tags = m.group(1), {}
            out[version] = {}
        elif m := re.search(r"_default_cuda(\d+)_cudnn_version = '(\d+)'", line):
            tags[m.group(1)] = m.group(2)
        elif m := re.search(r"'(cuda(\d+)_(pip|local))': \[", line):
            pending = norm(m.group(1))
            jaxlib = f"jaxlib=={version}+cuda{m.group(2)}.cudnn{tags[m.group(2)]}"
            out[version][pending] = [Requirement(jaxlib)]
        elif pending and (m := re.search(r'"(nvidia-cudnn-cu\d+[^"]*)"', line)):
            out[version][pending].append(Requirement(m.group(1)))
    return out


@lru_cache(maxsize=None)
def plugin_cudnn() -> dict[tuple[str, str], Version]:
    """(plugin project, version) -> cuDNN lower bound of its with-cuda extra."""
    out = {}
    project = None
    for line in _lines("pypi-metadata.txt"):
        if m := re.match(r"== (jax_cuda\d+_plugin)-([\d.]+)-", line):
            project = (m.group(1).replace("_", "-"), m.group(2))
        elif line.startswith("== "):
            project = None
        elif project and (m := re.search(r"nvidia-cudnn-cu\d+ ?[<>=,.\d]*?>=([\d.]+)", line)):
            out[project] = Version(m.group(1))
    return out


@lru_cache(maxsize=None)
def statements() -> tuple[list[tuple[Version, str, Version]], dict[str, str]]:
    """cuDNN floors (from version, cuda major or 'all', floor) and driver floors (cuda major -> driver)."""
    floors, drivers = [], {}
    for line in _lines("changelog-and-docs.md"):
        if m := re.match(r"floor ([\d.]+) (\d+|all) ([\d.]+)$", line):
            floors.append((Version(m.group(1)), m.group(2), Version(m.group(3))))
        elif m := re.match(r"driver (\d+) ([\d.]+)$", line):
            drivers[m.group(1)] = m.group(2)
    return floors, drivers


def stated_floor(version: str, extra: str, cuda: str) -> Version | None:
    """The largest minimum cuDNN the fixtures give for `jax[extra]==version`; None if they give none."""
    found: list[Version] = []
    local = extra.endswith("-local")
    for req in jax_metadata().get(version, {}).get(extra, []):
        if req.name.startswith("nvidia-cudnn"):
            found += [Version(s.version) for s in req.specifier if s.operator == ">="]
        elif req.name == "jaxlib" and (m := re.search(r"cudnn(\d+)", str(req.specifier))):
            found.append(Version(_dotted(m.group(1))))
        elif req.name.startswith("jax-cuda") and req.extras and not local:
            pinned = [s.version for s in req.specifier if s.operator in ("==", ">=")]
            if pinned and (req.name, pinned[0]) in plugin_cudnn():
                found.append(plugin_cudnn()[(req.name, pinned[0])])
    if not local and (f"jax-cuda{cuda}-plugin", version) in plugin_cudnn() and extra == f"cuda{cuda}":
        found.append(plugin_cudnn()[(f"jax-cuda{cuda}-plugin", version)])
    floors, _ = statements()
    found += [floor for since, major, floor in floors if Version(version) >= since and major in (cuda, "all")]
    return max(found) if found else None


def wheel_pythons(version: str, row: dict) -> list[str] | None:
    """Python tags of the binary that carries the CUDA code for this release: the plugin from 0.4.30 (and for the
    plugin extras), else the CUDA jaxlib (same Python tags as PyPI's jaxlib)."""
    plugin = pypi_index()[f"jax-cuda{row['cuda']}-plugin"].get(version)
    if plugin and (Version(version) >= Version("0.4.30") or norm(row["extra"]) == f"cuda{row['cuda']}"):
        return pythons(plugin)
    jaxlib = pypi_index()["jaxlib"].get(version)
    return pythons(jaxlib) if jaxlib else None


def releases() -> list[str]:
    return sorted(set(pypi_index()["jax"]) | set(jax_metadata()), key=Version)


# --- checks -------------------------------------------------------------------------------------------------------


def _local_jaxlib(reqs: list[Requirement]) -> re.Match | None:
    """jaxlib==V+cudaXX.cudnnYY in an extra's requirements (a build of JAX's release page, not PyPI)."""
    return next((m for r in reqs if r.name == "jaxlib" and (m := re.search(r"\+cuda(\d+)\.cudnn(\d+)", str(r.specifier)))),
                None)


def check_alias(row: dict) -> list[str]:
    """An alias (jax[cuda]) or cuDNN-pinned extra (jax[cuda12_cudnn89]) against what its requirements install: a local
    jaxlib (system CUDA XX, cuDNN >= YY, from JAX's release page) or a jax-cudaXX-plugin (then the cudaXX row's values)."""
    problems = []
    spec = SpecifierSet(row["versions"])
    covered = [v for v in jax_metadata() if Version(v) in spec and norm(row["extra"]) in jax_metadata()[v]]
    if not covered:
        return [f"{row['versions']}: no release declares {row['extra']}"]
    for version in covered:
        reqs = jax_metadata()[version][norm(row["extra"])]
        local = _local_jaxlib(reqs)
        if local:
            nvidia = any(r.name.startswith("nvidia-") for r in reqs)
            want = {"cuda": local.group(1), "cuda_source": "wheels" if nvidia else "base-image", "local_jaxlib": True,
                    "min_driver": statements()[1][local.group(1)]}
            if Version(row["cudnn"]) < Version(_dotted(local.group(2))):
                problems.append(f"{version}: cudnn {row['cudnn']} below the jaxlib build's {_dotted(local.group(2))}")
        else:
            plugin = next((r.name for r in reqs if r.name.startswith("jax-cuda")), "")
            cuda = re.sub(r"\D", "", plugin)
            twin = next((r for r in variants() if r["extra"] == f"cuda{cuda}" and Version(version) in
                         SpecifierSet(r["versions"])), None)
            if twin is None:
                problems.append(f"{version}: {row['extra']} installs {plugin or 'nothing known'} and has no twin row")
                continue
            want = {k: twin[k] for k in ("cuda", "cudnn", "cuda_source", "python", "min_driver")}
            want["local_jaxlib"] = False
        got = {k: (bool(row.get(k)) if k == "local_jaxlib" else row[k]) for k in want}
        if got != want:
            problems.append(f"{version}: {row['extra']} {got} != {want}")
    return problems


def check_variant(row: dict) -> list[str]:
    if ALIASES.match(norm(row["extra"])):
        return check_alias(row)
    problems = []
    extra, cuda, note = norm(row["extra"]), row["cuda"], row.get("note", "")
    spec = SpecifierSet(row["versions"])
    covered = [v for v in releases() if Version(v) in spec]
    if not covered:
        return [f"{row['versions']} covers no release"]
    if not extra.startswith(f"cuda{cuda}"):
        problems.append(f"extra {row['extra']} is not a CUDA {cuda} extra")
    if row["cuda_source"] != ("base-image" if extra.endswith("-local") else "wheels"):
        problems.append(f"cuda_source {row['cuda_source']} for {row['extra']}")
    if row["min_driver"] != statements()[1][cuda]:
        problems.append(f"min_driver {row['min_driver']} != docs {statements()[1][cuda]}")

    checked_python = checked_cudnn = 0
    for version in covered:
        reqs = jax_metadata().get(version, {}).get(extra)
        if reqs is not None and bool(row.get("local_jaxlib")) != bool(_local_jaxlib(reqs)):
            problems.append(f"{version}: local_jaxlib {row.get('local_jaxlib')} but the extra pins {reqs[:1]}")
        if (tags := wheel_pythons(version, row)) is not None:
            checked_python += 1
            if row["python"] != tags:
                problems.append(f"{version}: python {row['python']} != wheels {tags}")
        floor = stated_floor(version, extra, cuda) if extra in jax_metadata().get(version, {}) else None
        if floor is not None:
            checked_cudnn += 1
            have = Version(row["cudnn"])
            if have < floor or (have > floor and "stricter" not in note):
                problems.append(f"{version}: cudnn {row['cudnn']} vs stated minimum {floor}")
    if not checked_python and "Python" not in note:
        problems.append("no release in range has wheels to check python against, and the note does not say so")
    if not checked_cudnn and "unverified" not in note:
        problems.append("no release in range states a cuDNN minimum, and the note does not say unverified")
    return problems


def extras_without_plugin(version: str) -> set[str]:
    """CUDA extras a release declares whose plugin was never published at that version (jax[cuda13] at 0.7.0/0.7.1)."""
    out = set()
    for extra, reqs in jax_metadata().get(version, {}).items():
        plugins = [(r.name, [s.version for s in r.specifier if s.operator in ("==", ">=")]) for r in reqs
                   if r.name.startswith("jax-cuda")]
        if plugins and all(not pins or pins[0] not in pypi_index().get(name, {}) for name, pins in plugins):
            out.add(extra)
    return out


# --- tests --------------------------------------------------------------------------------------------------------


def test_loader_accepts_the_table_with_provenance():
    rows = load_table("jax")["variant"]
    assert len(rows) >= 40
    for row in rows:
        assert row["retrieved"] >= RETRIEVED and row["source"].startswith("https://")


@pytest.mark.parametrize("index", range(len(load_table("jax")["variant"])))
def test_variant_row_matches_sources(index):
    assert check_variant(variants()[index]) == []


def test_ranges_do_not_overlap_per_extra():
    by_extra = defaultdict(list)
    for row in variants():
        by_extra[norm(row["extra"])].append(SpecifierSet(row["versions"]))
    for extra, specs in by_extra.items():
        for version in releases():
            hits = [str(s) for s in specs if Version(version) in s]
            assert len(hits) <= 1, (extra, version, hits)


def test_each_release_lists_exactly_its_cuda_extras():
    """Every CUDA extra a release's metadata declares has a row, and every row's extra exists in that release."""
    for version, extras in jax_metadata().items():
        declared = {e for e in extras if e.startswith("cuda")} - extras_without_plugin(version)
        listed = {norm(r["extra"]) for r in variants() if Version(version) in SpecifierSet(r["versions"])}
        if Version(version) < Version("0.4.7"):
            continue
        assert listed == declared, (version, sorted(listed), sorted(declared))


def test_milestones():
    def extras(version: str) -> set[str]:
        return {norm(r["extra"]) for r in variants() if Version(version) in SpecifierSet(r["versions"])}
    assert "cuda11-pip" in extras("0.4.25") and not any(e.startswith("cuda11") for e in extras("0.4.26"))
    assert "cuda12-pip" in extras("0.5.3") and "cuda12-pip" not in extras("0.6.0")
    assert "cuda13" not in extras("0.7.1") and "cuda13" in extras("0.7.2")
    assert max(pypi_index()["jax-cuda11-plugin"], key=Version) == "0.4.25"
    assert min((v for v in pypi_index()["jax-cuda13-plugin"] if not Version(v).is_prerelease), key=Version) == "0.7.2"


@pytest.mark.parametrize("mutation", [{"cudnn": "9.1"}, {"python": ["3.10", "3.11", "3.12", "3.13"]},
                                      {"min_driver": "525.60.13"}, {"cuda_source": "base-image"},
                                      {"versions": ">=0.8.0,<0.13"}])
def test_a_wrong_row_is_caught(mutation):
    row = {**next(r for r in variants() if r["extra"] == "cuda13" and r["versions"].startswith(">=0.7.2")), **mutation}
    problems = check_variant(row)
    if "versions" in mutation:  # a shrunk range shows as a release with the extra and no row
        declared = {e for e in jax_metadata()["0.7.2"] if e.startswith("cuda") and not ALIASES.match(e)}
        others = {norm(r["extra"]) for r in variants() if r["extra"] != "cuda13" and Version("0.7.2") in
                  SpecifierSet(r["versions"])}
        problems = problems or (["cuda13 at 0.7.2 without a row"] if "cuda13" in declared - others else [])
    assert problems
