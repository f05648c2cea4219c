"""`gpuenv kb refresh`: derive the "pypi" table from a package index, and the snapshot date in use.

One row per (project, version) of the framework projects that has a Linux x86_64 wheel (manylinux*
or linux_x86_64) or a pure wheel, or only an sdist. Yanked files, pre- and dev releases, and other
platforms are left out. A row says:

- `python`: the Pythons it has such wheels for: "3.6" from cp36, "3.13t" from a free-threaded
  cp313t build, "3.8+" from a cp38-abi3 wheel, "py3" / "py2" from py3 / py2 tags (pure wheels, or
  platform wheels for any Python such as nvidia-cudnn's);
- `requires_python`, when the files declare it;
- `cuda`, `cudnn` for the projects whose wheels pin NVIDIA's CUDA wheels (PINNED_FROM): CUDA as
  major.minor from the pinned `nvidia-cuda-runtime-cuXX==A.B.x` (or `cuda-toolkit[cudart]==A.B.x`),
  cuDNN as the pinned `nvidia-cudnn-cuXX` version, from the METADATA of one Linux x86_64 wheel of
  the version (PEP 658, else HTTP ranges of the wheel: see index.py). For tensorflow the pins are
  those of its `and-cuda` extra. JAX's CUDA plugins state lower bounds, not pins: no `cuda` there.
- `extras`, for the projects whose GPU build is chosen by an extra (EXTRAS_OF: jax, tensorflow): the
  release's `Provides-Extra` list as its METADATA declares it (names normalized as PEP 685 says), so
  that gpuenv plans only the extras a release publishes (jax[cuda13] of a release that has none is
  refused, never swapped for another extra);
- `sdist_only: true` and `python: []` for a final release published with no wheel at all, only an sdist
  (tensorflow-gpu 2.12.0, a 2.6 kB sdist that fails on install on purpose): the release exists, but no
  build of it can be planned, and the planner says so instead of "no such version";
- `source`: the project page that was read, `retrieved`: the day. The loader requires https
  sources; when the index is a plain-http mirror (a trusted host), `source` names PyPI's page of
  the project (what the mirror copies) and `note` names the page actually read.

The table is JSON (fast to load), rows sorted by project and version, one row per line so that the
shipped snapshot diffs well, with a `meta` object: the index, the day, the gpuenv version. It is
checked by the real loader before it replaces the old one, through a temporary file and a rename:
a failed refresh leaves the old table as it was. By default it goes to the user's data folder
(`tables.user_kb_dir()`), which `load_table("pypi")` then prefers to the shipped snapshot.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar, Union

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from gpuenv import __version__
from gpuenv.errors import GpuenvError
from gpuenv.kb import tables
from gpuenv.kb.index import IndexClient, IndexNotFound, Link, Network, Page, public_url

TABLE = "pypi"
Item = TypeVar("Item")
Answer = TypeVar("Answer")
MXNET_CUDA = ("cu75", "cu80", "cu90", "cu91", "cu92", "cu100", "cu101", "cu102", "cu110", "cu112")
MXNET_VARIANTS = tuple(f"mxnet-{cu}{mkl}" for cu in MXNET_CUDA for mkl in ("", "mkl"))
# CuPy's wheel projects (kb/data/cupy.toml); plain `cupy` is a source distribution, with no wheel to list.
CUPY_CUDA = ("80", "90", "91", "92", "100", "101", "102", "110", "111", "112", "113", "114", "115", "116", "117",
             "11x", "12x", "13x")
CUPY_VARIANTS = tuple(f"cupy-cuda{cu}" for cu in CUPY_CUDA)
PROJECTS = (
    "torch", "torchvision", "torchaudio", "tensorflow", "tensorflow-gpu", "tensorflow-cpu", "mxnet", *MXNET_VARIANTS,
    "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt",
    "nvidia-cudnn-cu11", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "paddlepaddle-gpu",
    "paddlepaddle", *CUPY_VARIANTS,
)
# Projects an index may well lack (MXNet published a variant for some CUDA versions only): no warning.
OPTIONAL = frozenset(MXNET_VARIANTS)
# project -> (first version whose wheels pin NVIDIA's CUDA wheels, the extra the pins are under or "")
PINNED_FROM: dict[str, tuple[str, str]] = {"torch": ("1.13", ""), "tensorflow": ("2.14", "and-cuda")}
# Projects whose GPU build is chosen by an extra: their rows record the release's Provides-Extra.
EXTRAS_OF = frozenset({"jax", "tensorflow"})
WORKERS = 8

_PYPI_PAGE = "https://pypi.org/simple/{project}/"
_LINUX_X86_64 = re.compile(r"(manylinux\d*|manylinux_\d+_\d+|linux)_x86_64")
_CP = re.compile(r"cp(\d)(\d+)")
_PY = re.compile(r"py(\d)(\d*)")


# --- wheels --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    """What a wheel's file name says (PEP 427 / 425): tags may be compressed sets, "cp36.cp37"."""

    project: str
    version: str
    pythons: tuple[str, ...]
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    @property
    def pure(self) -> bool:
        return self.platforms == ("any",)

    @property
    def linux_x86_64(self) -> bool:
        return any(_LINUX_X86_64.fullmatch(p) for p in self.platforms)

    def python_versions(self) -> list[str]:
        """The Pythons this wheel installs on, as the table writes them ("3.6", "3.13t", "3.8+", "py3")."""
        found: set[str] = set()
        for tag in self.pythons:
            cp = _CP.fullmatch(tag)
            if cp:
                version = f"{cp[1]}.{cp[2]}"
                for abi in self.abis:
                    if abi == "abi3":
                        found.add(version + "+")
                    elif abi.startswith("cp") and abi.endswith("t"):
                        found.add(version + "t")
                    else:
                        found.add(version)
                continue
            py = _PY.fullmatch(tag)
            if py:
                found.add(f"{py[1]}.{py[2]}" if py[2] else f"py{py[1]}")
            # other interpreters (pp37, ...) are not what gpuenv installs
        return sorted(found, key=python_key)


def parse_wheel_filename(filename: str) -> Optional[Wheel]:
    """The parts of `name-version[-build]-python-abi-platform.whl`, or None for anything else."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return None
    name, version = parts[0], parts[1]
    python, abi, platform = parts[-3:]
    return Wheel(canonical(name), version, tuple(python.split(".")), tuple(abi.split(".")),
                 tuple(platform.split(".")))


def python_key(value: str) -> tuple[int, int, int, str]:
    """Order of the `python` values: versions by number ("3.6" < "3.10" < "3.10t"), then "py2", "py3"."""
    match = re.fullmatch(r"(\d+)\.(\d+)(.*)", value)
    if match:
        return (0, int(match[1]), int(match[2]), match[3])
    return (1, 0, 0, value)


def canonical(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


def release_version(text: str) -> Optional[Version]:
    """The version, or None for a pre-release, a dev release, or a version PEP 440 does not parse."""
    try:
        version = Version(text)
    except InvalidVersion:
        return None
    return None if version.is_prerelease or version.is_devrelease else version


# --- metadata pins -------------------------------------------------------------------------------

_LINUX = {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": "x86_64", "os_name": "posix"}
_CUDA_RUNTIME = re.compile(r"nvidia-cuda-runtime(-cu\d+)?")
_CUDNN = re.compile(r"nvidia-cudnn(-cu\d+)?")


def pinned_cuda(metadata: str, extra: str = "") -> dict[str, str]:
    """{"cuda": "12.1", "cudnn": "8.9.2.26"} from a wheel's METADATA: the `==` pins that apply on Linux
    x86_64 (with `extra` asked for), of nvidia-cuda-runtime-cuXX (or cuda-toolkit with cudart) and
    nvidia-cudnn-cuXX. Lower bounds are no pins and give nothing."""
    message = email.parser.HeaderParser().parsestr(metadata)
    found: dict[str, str] = {}
    for line in message.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        name = canonical(requirement.name)
        pins = [s.version for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if len(pins) != 1 or not _applies(requirement, extra):
            continue
        if _CUDA_RUNTIME.fullmatch(name) or (name == "cuda-toolkit" and "cudart" in requirement.extras):
            numbers = pins[0].split(".")
            if len(numbers) >= 2 and numbers[0].isdigit() and numbers[1].isdigit():
                found.setdefault("cuda", f"{numbers[0]}.{numbers[1]}")
        elif _CUDNN.fullmatch(name):
            found.setdefault("cudnn", pins[0])
    return found


def _applies(requirement: Requirement, extra: str) -> bool:
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate({**_LINUX, "extra": extra})
    except UndefinedEnvironmentName:
        return True


def provided_extras(metadata: str) -> list[str]:
    """The extras a wheel's METADATA declares (`Provides-Extra`), normalized as PEP 685 says, in order."""
    message = email.parser.HeaderParser().parsestr(metadata)
    names = (canonical(value.strip()) for value in message.get_all("Provides-Extra") or [])
    return list(dict.fromkeys(name for name in names if name))


def wants_pins(project: str, version: Version) -> Optional[str]:
    """The extra to read pins under ("" for none), or None when this release pins no CUDA wheels."""
    first = PINNED_FROM.get(project)
    if first is None or version < Version(first[0]):
        return None
    return first[1]


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class Release:
    """One (project, version) being built into a row, with the wheel whose METADATA tells its pins."""

    project: str
    version: Version
    row: dict[str, Any]
    probe: Optional[Link] = None


def releases(page: Page, retrieved: dt.date) -> list[Release]:
    """The rows a project page gives (without pins), in version order."""
    project = canonical(page.project)
    wheels: dict[Version, list[tuple[Wheel, Link]]] = {}
    for link in page.links:
        wheel = parse_wheel_filename(link.filename)
        if link.yanked or wheel is None or not (wheel.pure or wheel.linux_x86_64):
            continue
        version = release_version(wheel.version)
        if version is None or not wheel.python_versions():
            continue
        wheels.setdefault(version, []).append((wheel, link))
    source, note = _provenance(page)
    found = _wheel_releases(project, wheels, source, note, retrieved)
    found += _sdist_releases(page, set(_every_wheel_version(page)), source, note, retrieved)
    return sorted(found, key=lambda release: release.version)


def _wheel_releases(project: str, wheels: dict[Version, list[tuple[Wheel, Link]]], source: str,
                    note: Optional[str], retrieved: dt.date) -> list[Release]:
    found = []
    for version in sorted(wheels):
        pairs = wheels[version]
        pythons = sorted({p for wheel, _ in pairs for p in wheel.python_versions()}, key=python_key)
        row: dict[str, Any] = {"project": project, "version": str(version), "python": pythons}
        declared = Counter(link.requires_python for _, link in pairs if link.requires_python)
        if declared:
            row["requires_python"] = sorted(declared.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        row["source"], row["retrieved"] = source, retrieved.isoformat()
        if note:
            row["note"] = note
        found.append(Release(project, version, row, _probe(pairs)))
    return found


_SDIST = re.compile(r"(?P<name>.+?)-(?P<version>[^-]+)\.(tar\.gz|zip|tar\.bz2)")


def _every_wheel_version(page: Page) -> Iterable[Version]:
    """Versions with a wheel of any platform (a release with only a macOS wheel is no sdist-only one)."""
    for link in page.links:
        wheel = parse_wheel_filename(link.filename)
        version = release_version(wheel.version) if wheel else None
        if version is not None:
            yield version


def _sdist_releases(page: Page, with_wheels: set[Version], source: str, note: Optional[str],
                    retrieved: dt.date) -> list[Release]:
    """Rows of the final releases published as an sdist and no wheel: `python` empty, `sdist_only`."""
    project = canonical(page.project)
    versions = set()
    for link in page.links:
        match = _SDIST.fullmatch(link.filename)
        if link.yanked or match is None or canonical(match["name"]) != project:
            continue
        version = release_version(match["version"])
        if version is not None and version not in with_wheels:
            versions.add(version)
    rows = []
    for version in sorted(versions):
        row: dict[str, Any] = {"project": project, "version": str(version), "python": [], "sdist_only": True,
                               "source": source, "retrieved": retrieved.isoformat()}
        if note:
            row["note"] = note
        rows.append(Release(project, version, row, None))
    return rows


def _provenance(page: Page) -> tuple[str, Optional[str]]:
    url = public_url(page.url)
    if url.startswith("https://"):
        return url, None
    return _PYPI_PAGE.format(project=canonical(page.project)), f"read from {url} (a plain-http mirror)"


def _probe(pairs: list[tuple[Wheel, Link]]) -> Optional[Link]:
    """The wheel to read pins and extras from: a Linux x86_64 one (else a pure one: jax), preferring PEP 658
    metadata, then the newest CPython."""
    linux = [(w, link) for w, link in pairs if w.linux_x86_64] or [(w, link) for w, link in pairs if w.pure]
    if not linux:
        return None
    best = max(linux, key=lambda pair: (pair[1].metadata is not None,
                                        max((python_key(p) for p in pair[0].python_versions() if "t" not in p),
                                            default=(9,)), pair[1].filename))
    return best[1]


# --- the table -----------------------------------------------------------------------------------


def render(rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The table as JSON, one row per line."""
    lines = [json.dumps(_ordered(row), ensure_ascii=False, separators=(",", ":")) for row in rows]
    body = ",\n".join(lines)
    meta_text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    return f'{{"meta":{meta_text},\n"release":[\n{body}\n]}}\n'


_FIELDS = ("project", "version", "python", "sdist_only", "requires_python", "cuda", "cudnn", "extras", "source",
           "retrieved", "note")


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    known = {key: row[key] for key in _FIELDS if key in row}
    return {**known, **{key: value for key, value in row.items() if key not in known}}


def sort_key(row: dict[str, Any]) -> tuple[str, int, Union[Version, str]]:
    try:
        return (row["project"], 0, Version(row["version"]))
    except InvalidVersion:
        return (row["project"], 1, row["version"])


_WRITE_HINT = "pick a folder you can write to with --out"


def write_atomically(target: Path, text: str) -> None:
    """Through a temporary file in the same folder and a rename; mode 0666 less the umask."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise GpuenvError(f"cannot write {target}: {exc.strerror}", _WRITE_HINT) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GpuenvError(f"cannot write {target}: {exc.strerror}", _WRITE_HINT) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def user_table_path() -> Path:
    """Where `gpuenv kb refresh` writes by default, and where the loader looks first."""
    return tables.user_kb_dir() / f"{TABLE}.json"


def snapshot_date() -> Optional[dt.date]:
    """The day the pypi table in use (the user's refreshed one, else the shipped one) was read."""
    try:
        text, kind = tables._read(TABLE)
        meta = json.loads(text).get("meta", {}) if kind == "json" else {}
        return dt.date.fromisoformat(str(meta["retrieved"]))
    except (GpuenvError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --- refresh -------------------------------------------------------------------------------------


@dataclass
class Report:
    index: str
    index_origin: str
    file: Path
    retrieved: dt.date
    projects: list[str] = field(default_factory=list)     # read from the index
    missing: list[str] = field(default_factory=list)      # not on the index
    kept: list[str] = field(default_factory=list)         # not asked for; rows kept from the old table
    rows: int = 0
    pinned: int = 0                                        # rows with cuda / cudnn from metadata
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "index_origin": self.index_origin, "file": str(self.file),
            "retrieved": self.retrieved.isoformat(), "projects": self.projects, "missing": self.missing,
            "kept": self.kept, "rows": self.rows, "pinned": self.pinned, "warnings": self.warnings,
            "read": self.stats,
        }


def refresh(net: Network, out: Optional[Path] = None, projects: Optional[Sequence[str]] = None,
            today: Optional[dt.date] = None, version: Optional[str] = None) -> Report:
    """Read the projects from the index and (re)write the table at `out` (default: the user's).

    With `projects`, only those are read; the other projects' rows are kept from the table now at
    `out` (or, when there is none, from the table in use).
    """
    out = out or user_table_path()
    today = today or dt.datetime.now(dt.timezone.utc).date()
    names = list(dict.fromkeys(canonical(p) for p in (projects or PROJECTS)))
    client = IndexClient(net)
    report = Report(client.index, net.index_origin, out, today)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        pages = _each(pool, client.project_page, names)
        found = [page for page in pages if page is not None]
        report.missing = [n for n, page in zip(names, pages) if page is None]
        if not found:
            raise IndexNotFound(
                f"{client.index} has none of the projects asked for ({', '.join(names[:5])}"
                f"{', ...' if len(names) > 5 else ''}): HTTP 404 for every one",
                "check the index URL: it must be a PEP 503 simple index such as https://pypi.org/simple "
                "(--index, network.pip_index or PIP_INDEX_URL)",
            )
        report.warnings += [f"{n}: not on the index" for n in report.missing if n not in OPTIONAL]
        built = [release for page in found for release in releases(page, today)]
        report.warnings += [f"{page.project}: no Linux x86_64 or pure wheel of a final release"
                            for page in found if not any(r.project == canonical(page.project) for r in built)]
        report.projects = [canonical(page.project) for page in found]
        if not built:
            raise IndexNotFound(f"{client.index} lists no final release with a Linux x86_64 or pure wheel of "
                                f"{', '.join(report.projects)}", "check the index URL: it must be a PEP 503 simple "
                                "index such as https://pypi.org/simple; the table was left as it was")
        probes = [r for r in built if r.probe is not None and reads_metadata(r.project, r.version)]
        for release, answer in zip(probes, _each(pool, lambda r: _pins(client, r), probes)):
            if isinstance(answer, str):
                report.warnings.append(answer)
            else:
                release.row.update(answer)
                report.pinned += bool(answer.get("cuda") or answer.get("cudnn"))

    rows = [r.row for r in built]
    if projects:
        old, report.kept = _kept_rows(out, set(report.projects) | set(report.missing))
        rows += old
    rows.sort(key=sort_key)
    meta = {"index": client.index, "retrieved": today.isoformat(), "gpuenv": version or __version__,
            "projects": sorted({row["project"] for row in rows})}
    text = render(rows, meta)
    tables.parse_table(TABLE, (text, "json"))  # the real loader's checks, before anything is replaced
    write_atomically(out, text)
    tables.load_table.cache_clear()
    report.rows = len(rows)
    report.stats = {"pages_json": client.stats.pages_json, "pages_html": client.stats.pages_html,
                    "metadata_pep658": client.stats.metadata_pep658, "metadata_range": client.stats.metadata_range,
                    "bytes": client.stats.bytes_read}
    return report


def _each(pool: ThreadPoolExecutor, work: Callable[[Item], Answer], items: Sequence[Item]) -> list[Answer]:
    """`work` on every item in the pool, in order; on the first failure the work not started is dropped."""
    futures = [pool.submit(work, item) for item in items]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def reads_metadata(project: str, version: Version) -> bool:
    """Whether a release's METADATA is read: for its CUDA pins, or for its extras."""
    return project in EXTRAS_OF or wants_pins(project, version) is not None


def _pins(client: IndexClient, release: Release) -> Union[dict[str, Any], str]:
    """The pins and extras of a release (a dict, maybe empty), or a warning (str) when its metadata cannot be read."""
    assert release.probe is not None
    text = client.wheel_metadata(release.probe)
    if text is None:
        return (f"{release.project} {release.version}: no metadata (no PEP 658 file, and the server does not "
                "answer range requests): cuda / cudnn / extras left out")
    return from_metadata(release.project, release.version, text)


def from_metadata(project: str, version: Version, text: str) -> dict[str, Any]:
    """What a row takes from a release's METADATA: its CUDA pins (PINNED_FROM), its extras (EXTRAS_OF)."""
    found: dict[str, Any] = {}
    extra = wants_pins(project, version)
    if extra is not None:
        found.update(pinned_cuda(text, extra))
    if project in EXTRAS_OF:
        found["extras"] = provided_extras(text)
    return found


def _kept_rows(out: Path, refreshed: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the projects not refreshed, from the table at `out`, else from the table in use."""
    text: Optional[str] = None
    try:
        text = out.read_text("utf-8")
        tables.parse_table(TABLE, (text, "json"))
    except (OSError, UnicodeDecodeError, GpuenvError):
        text = None
    if text is None:
        try:
            text, kind = tables._read(TABLE)
        except GpuenvError:
            return [], []
        if kind != "json":
            return [], []
    rows = [row for row in json.loads(text).get("release", []) if row.get("project") not in refreshed]
    return rows, sorted({row["project"] for row in rows})
