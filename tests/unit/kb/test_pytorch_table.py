"""kb/data/pytorch.toml against the upstream text it was read from (tests/fixtures/kb/pytorch/).

The fixtures are parsed here on their own, without the table: the previous-versions page (CUDA lines of each
release's wheel block), RELEASE.md's compatibility matrix, release managers' announcements, the PyPI index (versions,
Python tags), wheel METADATA (the CUDA runtime / cuDNN pins of the PyPI build, the companions' torch pins), and for
[[archs]] the TORCH_CUDA_ARCH_LIST excerpts of the build scripts, evaluated here, plus real get_arch_list() output.
Each check is a function returning the problems it finds, so the tests below can also show that a wrong row is caught.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from gpuenv.kb import load_table

TESTS = Path(__file__).resolve().parents[2]
FIXTURES = TESTS / "fixtures" / "kb" / "pytorch"
H200 = TESTS / "fixtures" / "hosts" / "h200-firecracker-2026-11-22" / "torch-cuda.json"
RETRIEVED = dt.date(2026, 11, 22)
HEDGED = ("unverified", "inferred")
CUDA_LINE = re.compile(r"^#+ (?:Linux )?CUDA (\d+\.\d+)$")


def _lines(name: str) -> list[str]:
    """The fixture's lines after its leading '#' provenance header, blank lines dropped."""
    lines = (FIXTURES / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("# "))
    return [line for line in lines[start:] if line.strip()]


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --- fixtures, parsed ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def releases() -> list[dict]:
    return [dict(r) for r in load_table("pytorch")["release"]]


@lru_cache(maxsize=None)
def arch_rows() -> list[dict]:
    return [dict(r) for r in load_table("pytorch")["archs"]]


@lru_cache(maxsize=None)
def pypi_index() -> dict[str, dict[str, tuple[str, list[str]]]]:
    """project -> version -> (first upload date, Python tags of its Linux x86_64 wheels)."""
    out: dict[str, dict[str, tuple[str, list[str]]]] = defaultdict(dict)
    for line in _lines("pypi-index.txt"):
        project, version, date, *tags = line.split()
        out[project][version] = (date, tags)
    return out


def pythons(tags: list[str]) -> list[str]:
    """CPython tags -> 'X.Y', free-threaded builds left out."""
    return [f"{t[2]}.{t[3:]}" for t in tags if t.startswith("cp") and not t.endswith("t")]


@lru_cache(maxsize=None)
def wheel_metadata() -> dict[str, dict[str, dict]]:
    """project -> version -> {'cuda', 'cudnn', 'torch'} read from the Requires-Dist excerpts."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    current: dict | None = None
    for line in _lines("pypi-metadata.txt"):
        if line.startswith("== "):
            project, version = line[3:].split("-")[:2]
            current = out[project].setdefault(version, {})
            continue
        assert current is not None, line
        if m := re.match(r"Requires-Dist: nvidia-cuda-runtime-cu\d+ ?\(?==(\d+\.\d+)\.", line):
            current["cuda"] = m.group(1)
        elif m := re.match(r"Requires-Dist: cuda-toolkit\[[^]]*\]==(\d+\.\d+)\.", line):
            current["cuda"] = m.group(1)
        elif m := re.match(r"Requires-Dist: nvidia-cudnn-cu\d+ ?\(?==([\d.]+)", line):
            current["cudnn"] = m.group(1)
        elif m := re.match(r"Requires-Dist: torch ?\(?([<>=!~][^);]*)\)?", line):
            current["torch"] = m.group(1).strip()
    return out


@lru_cache(maxsize=None)
def previous_versions() -> dict[str, dict]:
    """version -> {'cuda': set, 'default': PyPI CUDA or None, 'torchvision', 'torchaudio'} from the wheel blocks."""
    out: dict[str, dict] = {}
    entry: dict = {}
    cuda = None
    for line in _lines("previous-versions.md"):
        if m := re.match(r"### v([\d.]+)", line):
            entry = out.setdefault(m.group(1), {"cuda": set(), "default": None})
            cuda = None
        elif m := CUDA_LINE.match(line):
            cuda = m.group(1)
        elif line.startswith(("pip", "pip3", "Download", "conda")):
            for lib in ("torchvision", "torchaudio"):
                if m := re.search(rf"{lib}==([\d.]+)", line):
                    entry[lib] = m.group(1)
            if cuda is None:
                continue
            entry["cuda"].add(cuda)
            if line.startswith("pip") and not re.search(r"--(?:extra-)?index-url|-f |\+cu", line):
                entry["default"] = cuda
            cuda = None
    return out


@lru_cache(maxsize=None)
def announcements() -> dict[str, dict]:
    """version -> {'cuda': set, 'default', 'torchvision', 'python'} from the 'cuda ...' summary lines of each block."""
    out: dict[str, dict] = {}
    entry: dict = {}
    for line in _lines("release-announcements.md"):
        if line.startswith("@@ "):
            entry = {}
        elif m := re.match(r"version ([\d.]+)$", line):
            entry = out.setdefault(m.group(1), {"cuda": set(), "default": None})
        elif m := re.match(r"cuda (\d+\.\d+) (\S+)", line):
            entry["cuda"].add(m.group(1))
            if m.group(2) == "default":
                entry["default"] = m.group(1)
        elif m := re.match(r"torchvision ([\d.]+)$", line):
            entry["torchvision"] = m.group(1)
        elif m := re.match(r"python ([\d. ]+)$", line):
            entry["python"] = m.group(1).split()
    return out


@lru_cache(maxsize=None)
def torchaudio_rules() -> dict[str, str]:
    """torchaudio version -> torch specifier it is stated to support (audio#4212)."""
    text = (FIXTURES / "release-announcements.md").read_text()
    return dict(re.findall(r"^torchaudio ([\d.]+) torch(\S+)$", text, re.M))


def _cuda_cell(cell: str) -> dict[str, str | None]:
    """'CUDA 11.8, CUDA 12.4 (CUDNN 9.1.0.70)' -> {'11.8': None, '12.4': '9.1.0.70'}; a bare ', CUDNN x' applies to the
    CUDA versions before it that have none."""
    out: dict[str, str | None] = {}
    for part in (p.strip() for p in cell.split(",")):
        if m := re.match(r"CUDA (\d+\.\d+)(?: \(CUDNN ([\d.]+)\))?", part):
            out[m.group(1)] = m.group(2)
        elif m := re.match(r"CUDNN ([\d.]+)", part):
            for key, value in out.items():
                if value is None:
                    out[key] = m.group(1)
    return out


@lru_cache(maxsize=None)
def release_matrix() -> dict[str, dict[str, str | None]]:
    """minor version -> {cuda: cudnn or None} from the 6-column Release Compatibility Matrix."""
    out: dict[str, dict[str, str | None]] = {}
    for line in _lines("release-matrix.md"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"\d+\.\d+", cells[0]):
            out[cells[0]] = {**_cuda_cell(cells[3]), **_cuda_cell(cells[4])}
    return out


@lru_cache(maxsize=None)
def vision_readme() -> dict[str, str]:
    """torch minor -> torchvision series ('1.3' -> '0.4')."""
    out = {}
    for line in _lines("vision-readme.md"):
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if re.fullmatch(r"(?:<=)?\d+\.\d+", cells[0]):
            out[cells[0]] = _minor(cells[1].split("`")[0].strip())
    return out


# --- checks: [[release]] ------------------------------------------------------------------------------------------


def check_release(row: dict) -> list[str]:
    problems: list[str] = []
    v = row["version"]
    hedged = any(word in row.get("note", "") for word in HEDGED)
    on_pypi = pypi_index()["torch"].get(v)
    meta = wheel_metadata()["torch"].get(v, {})
    prev = previous_versions().get(v, {})
    news = announcements().get(v, {})
    matrix = release_matrix().get(_minor(v), {})

    # Python: the PyPI wheels; off PyPI the note must say where the list comes from
    if on_pypi:
        if row["python"] != pythons(on_pypi[1]):
            problems.append(f"python {row['python']} != PyPI wheels {pythons(on_pypi[1])}")
    elif news.get("python"):
        if row["python"] != news["python"]:
            problems.append(f"python {row['python']} != announcement {news['python']}")
    elif not hedged and "Python" not in row.get("note", ""):
        problems.append("python not on PyPI and not explained in note")

    # CUDA variants: everything previous-versions and RELEASE.md state is listed; nothing unstated is listed
    stated_required = set(prev.get("cuda", ())) | set(matrix)
    stated = stated_required | set(news.get("cuda", ())) | ({meta["cuda"]} if "cuda" in meta else set())
    listed = set(row["cuda"])
    if missing := stated_required - listed:
        problems.append(f"cuda misses stated variants {sorted(missing)}")
    if (extra := listed - stated) and not hedged:
        problems.append(f"cuda lists unstated variants {sorted(extra)} without a hedged note")
    if row["cuda"] != sorted(row["cuda"], key=Version):
        problems.append("cuda not sorted")

    # PyPI build: wheel METADATA > previous-versions install line > announcement
    expected = meta.get("cuda") or prev.get("default") or news.get("default")
    got = row.get("pypi_cuda")
    if not on_pypi:
        if got is not None:
            problems.append(f"pypi_cuda {got} but {v} is not on PyPI")
    elif expected is not None:
        if got != expected:
            problems.append(f"pypi_cuda {got} != stated {expected}")
    elif got is not None and not hedged:
        problems.append(f"pypi_cuda {got} has no evidence and no hedged note")
    if got is not None and got not in listed:
        problems.append(f"pypi_cuda {got} not among cuda {row['cuda']}")

    # cuDNN: RELEASE.md per variant, the PyPI wheel's pin winning for the PyPI variant
    want = {cu: dnn for cu, dnn in matrix.items() if dnn}
    if "cudnn" in meta and "cuda" in meta:
        want[meta["cuda"]] = meta["cudnn"]
    have = row.get("cudnn", {})
    if have != {cu: dnn for cu, dnn in want.items() if cu in listed}:
        problems.append(f"cudnn {have} != stated {want}")

    # companions: the install line pairs them; the companions' own torch pins must admit this release
    for lib in ("torchvision", "torchaudio"):
        value = row.get(lib)
        if prev.get(lib) and value != prev[lib]:
            problems.append(f"{lib} {value} != previous-versions {prev[lib]}")
        if lib == "torchvision" and news.get(lib) and value != news[lib]:
            problems.append(f"torchvision {value} != announcement {news[lib]}")
        if value is None:
            continue
        if on_pypi and value not in pypi_index()[lib]:
            problems.append(f"{lib} {value} is not on PyPI")
        pin = wheel_metadata()[lib].get(value, {}).get("torch")
        rule = torchaudio_rules().get(value) if lib == "torchaudio" else None
        spec = pin if pin and "+" not in pin else rule
        if spec and Version(v) not in SpecifierSet(spec):
            problems.append(f"{lib} {value} requires torch{spec}, not {v}")
    series = vision_readme().get(_minor(v)) or (vision_readme()["<=1.0"] if Version(v) < Version("1.1") else None)
    if series and row.get("torchvision") and _minor(row["torchvision"]) != series:
        problems.append(f"torchvision {row['torchvision']} not in the README's {series} series")
    return problems


# --- checks: [[archs]] --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def arch_blocks() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    key = None
    for line in (FIXTURES / "arch-lists.md").read_text().splitlines():
        if line.startswith("@@ "):
            key = line.split()[1]
            blocks[key] = []
        elif key and line.strip() and not line.startswith("# "):
            blocks[key].append(line)
    return blocks


def _expand(value: str, current: str) -> str:
    """Shell expansions the build scripts use, for the x86_64 wheel build."""
    value = re.sub(r'\$\(\[\[ "\$ARCH" == "aarch64" \]\] && echo "[^"]*" \|\| echo "([^"]*)"\)', r"\1", value)
    value = re.sub(r"\$\{TORCH_CUDA_ARCH_LIST//([^/}]*)/\}", lambda m: current.replace(m.group(1), ""), value)
    return value.replace("${TORCH_CUDA_ARCH_LIST}", current).replace("$TORCH_CUDA_ARCH_LIST", current)


def evaluate_script(lines: list[str], cuda: str) -> str | None:
    """TORCH_CUDA_ARCH_LIST after the base assignment and the `case ${CUDA_VERSION}` branch matching `cuda`
    (if-blocks on aarch64 take their else branch); None if no branch matches."""
    value, in_case, branch, matched, skip = "", False, False, False, False
    for raw in lines:
        line = raw.strip()
        if line.startswith("case "):
            in_case = True
            continue
        if line == "esac":
            break
        pattern = re.match(r"^([\d.*\[\]]+)\)\s*(.*)$", line) if in_case else None
        if pattern:
            if branch:
                break
            branch = fnmatch.fnmatchcase(cuda, pattern.group(1))
            matched = matched or branch
            line = pattern.group(2)
        elif in_case and re.match(r"^\*\)", line):
            if branch:
                break
            continue
        if in_case and not branch:
            continue
        if line.startswith("if ") and "aarch64" in line:
            skip = True
            continue
        if line == "else":
            skip = False
            continue
        if line == "fi":
            skip = False
            continue
        if skip:
            continue
        if m := re.search(r'TORCH_CUDA_ARCH_LIST="(.*)"', line):
            value = _expand(m.group(1), value)
    return value if matched else None


def normalize(arch_list: str) -> list[str]:
    """'3.7;5.0;9.0+PTX' -> ['sm_37', 'sm_50', 'sm_90', 'compute_90'] (sm sorted, then compute)."""
    sm, ptx = set(), set()
    for item in filter(None, arch_list.split(";")):
        cap = int(item.split("+")[0].replace(".", ""))
        sm.add(cap)
        if item.endswith("+PTX"):
            ptx.add(cap)
    return [f"sm_{c}" for c in sorted(sm)] + [f"compute_{c}" for c in sorted(ptx)]


def readme_archs(lines: list[str], cuda: str) -> list[str]:
    """RELEASE.md support-matrix row for `cuda` ('13.0' matches '| 13.0.2 |')."""
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if _minor(cells[0]) == cuda:
            return normalize(";".join(re.findall(r"\d+\.\d+(?:\+PTX)?", cells[1])))
    raise KeyError(cuda)


def runtime_archs(lines: list[str], key: str) -> list[str]:
    """'2.10/12.8' -> the Linux get_arch_list() printed under '### PyTorch 2.10' / '#### CUDA 12.8'."""
    torch, cuda = key.split("/")
    section = None
    for i, line in enumerate(lines):
        if m := re.match(r"### PyTorch ([\d.]+)$", line):
            section = [m.group(1), None]
        elif (m := re.match(r"#### CUDA ([\d.]+)$", line)) and section:
            section[1] = m.group(1)
        elif line == "Linux:" and section == [torch, cuda]:
            return json.loads(lines[i + 1].replace("'", '"'))
    raise KeyError(key)


def evidence(kind_key: str, cuda: str) -> list[str]:
    """The architecture list a fixture block states for `cuda`."""
    if kind_key == "h200":
        data = json.loads(H200.read_text())
        assert data["torch"].endswith(f"+cu{cuda.replace('.', '')}")
        return data["arch_list"]
    block, _, sub = kind_key.partition(":")
    lines = arch_blocks()[block]
    if block.startswith("release-md"):
        return readme_archs(lines, cuda)
    if block.startswith("runtime"):
        return runtime_archs(lines, sub)
    value = evaluate_script(lines, cuda)
    assert value is not None, f"{block} has no case for CUDA {cuda}"
    return normalize(value)


# (versions, cuda) of each [[archs]] row -> the fixture blocks that state its list
ARCH_EVIDENCE: dict[tuple[str, str], list[str]] = {
    (">=1.6,<1.8", "9.2"): ["builder-1.7"],
    (">=1.6,<1.8", "10.1"): ["builder-1.7"],
    (">=1.6,<1.8", "10.2"): ["builder-1.7"],
    (">=1.7,<1.8", "11.0"): ["builder-1.7"],
    (">=1.8,<1.9", "10.1"): ["builder-1.8-copy", "builder-1.11"],
    (">=1.8,<1.13", "10.2"): ["builder-1.8-copy", "builder-1.11"],
    (">=1.8,<1.11", "11.1"): ["builder-1.8-copy"],
    (">=1.10,<1.13", "11.3"): ["builder-1.11"],
    (">=1.12,<1.14", "11.6"): ["builder-2.0"],
    (">=1.13,<2.1", "11.7"): ["builder-2.0"],
    (">=2.0,<2.8", "11.8"): ["builder-2.0", "builder-2.4"],
    (">=2.1,<2.6", "12.1"): ["builder-2.4"],
    (">=2.4,<2.7", "12.4"): ["builder-2.4"],
    (">=2.6,<2.15", "12.6"): ["pytorch-2.8", "tagged-2.7-copy", "tagged-2.10-copy", "tagged-2.11-copy",
                              "release-md-2.12", "runtime-corridorkey:2.7.1/12.6", "runtime-corridorkey:2.10/12.6"],
    (">=2.7,<2.8", "12.8"): ["tagged-2.7-copy", "runtime-corridorkey:2.7.1/12.8"],
    (">=2.8,<2.11", "12.8"): ["pytorch-2.8", "tagged-2.10-copy", "runtime-corridorkey:2.10/12.8"],
    (">=2.11,<2.12", "12.8"): ["tagged-2.11-copy"],
    (">=2.8,<2.9", "12.9"): ["pytorch-2.8"],
    (">=2.9,<2.11", "13.0"): ["tagged-2.10-copy"],
    (">=2.11,<2.12", "13.0"): ["h200", "tagged-2.11-copy"],
    (">=2.12,<2.15", "13.0"): ["release-md-2.12"],
    (">=2.12,<2.15", "13.2"): ["release-md-2.12"],
}


def check_archs(row: dict) -> list[str]:
    """sm_ entries must equal every cited excerpt's; PTX entries may be left out (conservative), never added."""
    problems = []
    sources = ARCH_EVIDENCE.get((row["versions"], row["cuda"]))
    if not sources:
        return [f"no evidence mapped for {row['versions']} cu{row['cuda']}"]
    archs = row["archs"]
    sm_row = [a for a in archs if a.startswith("sm_")]
    ptx_row = [a for a in archs if a.startswith("compute_")]
    cap = lambda arch: int(arch.split("_")[1])  # noqa: E731
    if archs != sorted(sm_row, key=cap) + sorted(ptx_row, key=cap):
        problems.append(f"archs not sm_ ascending then compute_ ascending: {archs}")
    for source in sources:
        stated = evidence(source, row["cuda"])
        sm_stated = [a for a in stated if a.startswith("sm_")]
        if sm_row != sm_stated:
            problems.append(f"{source}: sm {sm_stated} != row {sm_row}")
        if extra := set(ptx_row) - set(stated):
            problems.append(f"{source}: PTX {sorted(extra)} not stated")
    return problems


# --- tests --------------------------------------------------------------------------------------------------------


def test_loader_accepts_the_table_with_provenance():
    table = load_table("pytorch")
    assert len(table["release"]) >= 50 and len(table["archs"]) >= 20
    for row in (*table["release"], *table["archs"]):
        assert row["retrieved"] == RETRIEVED
        assert row["source"].startswith("https://")


def test_every_pypi_release_has_one_row():
    versions = [r["version"] for r in releases()]
    assert len(versions) == len(set(versions))
    assert versions == sorted(versions, key=Version)
    assert set(pypi_index()["torch"]) <= set(versions)
    assert {"0.4.0", "0.4.1", "1.8.2"} <= set(versions)  # off PyPI, still releases


@pytest.mark.parametrize("version", [r["version"] for r in load_table("pytorch")["release"]])
def test_release_row_matches_sources(version):
    row = next(r for r in releases() if r["version"] == version)
    assert check_release(row) == []


def test_known_pypi_builds():
    by = {r["version"]: r for r in releases()}
    assert {v: by[v].get("pypi_cuda") for v in ("1.13.1", "2.0.1", "2.4.1", "2.5.1", "2.7.1", "2.10.0", "2.11.0",
                                                "2.14.1", "2.15.0")} == {
        "1.13.1": "11.7", "2.0.1": "11.7", "2.4.1": "12.1", "2.5.1": "12.4", "2.7.1": "12.6", "2.10.0": "12.8",
        "2.11.0": "13.0", "2.14.1": "13.0", "2.15.0": "13.2"}
    assert by["2.11.0"]["cudnn"]["13.0"] == "9.19.0.56"  # the real 2.11.0+cu130 reports cuDNN 91900
    assert json.loads(H200.read_text())["cudnn"] == 91900


@pytest.mark.parametrize("mutation", [
    {"pypi_cuda": "12.1"}, {"cuda": ["11.8", "12.1"]}, {"python": ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]},
    {"torchvision": "0.20.0"}, {"cudnn": {"11.8": "9.1.0.70", "12.1": "9.1.0.70", "12.4": "9.0.0.0"}},
])
def test_a_wrong_release_row_is_caught(mutation):
    row = {**next(r for r in releases() if r["version"] == "2.5.1"), **mutation}
    assert check_release(row)


def test_script_evaluation():
    script = ['TORCH_CUDA_ARCH_LIST="3.7;5.0"', "case ${CUDA_VERSION} in", "    11.[67])",
              '        TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST};8.6+PTX"', "        ;;", "esac"]
    assert normalize(evaluate_script(script, "11.7")) == ["sm_37", "sm_50", "sm_86", "compute_86"]
    assert evaluate_script(script, "11.8") is None
    assert evidence("tagged-2.11-copy", "12.6") == ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    assert evidence("builder-2.4", "12.4")[-1] == "compute_90"  # else branch of the aarch64 test


def test_every_archs_row_has_evidence_and_every_mapping_a_row():
    keys = [(r["versions"], r["cuda"]) for r in arch_rows()]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(ARCH_EVIDENCE)


@pytest.mark.parametrize("key", sorted(ARCH_EVIDENCE))
def test_archs_row_matches_sources(key):
    row = next(r for r in arch_rows() if (r["versions"], r["cuda"]) == key)
    assert check_archs(row) == []


@pytest.mark.parametrize("mutation", [{"archs": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86"]},
                                      {"archs": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90",
                                                 "compute_90"]}])
def test_a_wrong_archs_row_is_caught(mutation):
    row = {**next(r for r in arch_rows() if (r["versions"], r["cuda"]) == (">=2.1,<2.6", "12.1")), **mutation}
    assert check_archs(row)


def _probe_versions() -> list[Version]:
    probes = {Version(r["version"]) for r in releases()}
    for row in arch_rows():
        for spec in SpecifierSet(row["versions"]):
            probes.add(Version(spec.version))
    return sorted(probes)


def test_arch_ranges_do_not_overlap_per_cuda():
    by_cuda = defaultdict(list)
    for row in arch_rows():
        by_cuda[row["cuda"]].append(SpecifierSet(row["versions"]))
    for cuda, specs in by_cuda.items():
        for version in _probe_versions():
            hits = [str(s) for s in specs if version in s]
            assert len(hits) <= 1, (cuda, str(version), hits)


def test_every_release_from_1_6_has_archs_for_each_variant():
    missing = []
    for row in releases():
        if Version(row["version"]) < Version("1.6") or row["version"] == "2.15.0":  # 2.15 build scripts not read
            continue
        for cuda in row["cuda"]:
            version = Version(row["version"])
            if not any(r["cuda"] == cuda and version in SpecifierSet(r["versions"]) for r in arch_rows()):
                missing.append((row["version"], cuda))
    assert missing == []


def test_h100_needs_sm_90_which_old_builds_lack():
    """The case the table exists for: an sm_90 GPU with a wheel built only up to sm_86."""
    def archs(version: str, cuda: str) -> list[str]:
        rows = [r for r in arch_rows() if r["cuda"] == cuda and Version(version) in SpecifierSet(r["versions"])]
        return rows[0]["archs"]
    assert "sm_90" not in archs("1.13.1", "11.7") and archs("1.13.1", "11.7")[-1] == "sm_86"
    assert "sm_90" not in archs("1.12.1", "10.2") and "sm_90" not in archs("1.12.1", "11.3")
    assert "sm_90" in archs("2.0.1", "11.8")
    assert archs("2.11.0", "13.0")[0] == "sm_75"
