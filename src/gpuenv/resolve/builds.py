"""The provider: every build of a framework that could go into an environment, from the kb tables.

A Build is one installable thing (a version, a CUDA variant, the pip requirement that gets it) with
what it needs (Python, CUDA and where CUDA comes from, cuDNN, driver) and what it gives (GPU
architectures). `builds_for(want, request)` lists them best first: newest version, and for one
version the build PyPI serves before the other variants. Choosing is the solver's job.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Literal, Optional, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from gpuenv.errors import ImpossibleRequest
from gpuenv.kb import KbError, load_table
from gpuenv.kb.tables import Row, Table
from gpuenv.resolve import nvidia
from gpuenv.resolve.request import Request, Want
from gpuenv.resolve.versions import V, major, major_minor, matches, minor_key, sm_to_cc

# Where a build's CUDA comes from: the base image's system CUDA (an nvidia/cuda tag, or the spec's own base),
# the framework's pip wheels (nvidia-* wheels, or CUDA inside the framework's own), or none (a CPU build).
CudaSource = Literal["base-image", "wheels", "none"]

ALL_PYTHONS = ("2.7", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class Build:
    family: str
    project: str               # the pip project that carries it, "tensorflow-gpu"
    version: str
    requirement: str           # what pip installs; may hold {py}/{abi} (a wheel URL), filled per Python
    python: tuple[str, ...]    # Pythons it has wheels for
    cuda: Optional[str]        # the CUDA it was built for, as the tables write it ("8", "11.8", "12"); None: CPU
    cudnn: Optional[str]
    cuda_source: CudaSource
    archs: Optional[tuple[str, ...]] = None  # exact GPU architectures, when the tables know them
    pip_options: tuple[str, ...] = ()        # ("--extra-index-url", "https://download.pytorch.org/whl/cu118")
    companions: tuple[str, ...] = ()         # torchvision==..., same family, pinned to match
    variant: str = ""                        # "cu118", "cu90mkl", "cuda12"
    extra: str = ""                          # the pip extra the requirement carries: "and-cuda", "cuda12_pip"
    local: str = ""                          # the local version the pin carries: "cu118", "cpu" (torch==2.4.1+cu118)
    provided_by: Optional[str] = None        # the base image that already holds it (nothing installed)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        if self.family == "base":
            return f"CUDA {self.cuda} alone" if self.cuda else "the base image"
        suffix = f" ({self.variant})" if self.variant else ""
        return f"{self.family} {self.version}{suffix}"

    @property
    def full_version(self) -> str:
        """The version as installed, with its local version ("2.4.1+cu118")."""
        return f"{self.version}+{self.local}" if self.local else self.version

    @property
    def cuda_mm(self) -> Optional[str]:
        """CUDA as major.minor ("8" -> "8.0"); a major-only value ("12" for JAX) stays a major."""
        if self.cuda is None:
            return None
        return major_minor(self.cuda) if "." in self.cuda or major(self.cuda) < 11 else self.cuda

    def min_driver(self) -> Optional[str]:
        """The lowest driver that runs this build (system CUDA: that release; wheels: the major's floor)."""
        if self.cuda is None:
            return None
        if self.cuda_source == "wheels":
            return nvidia.wheels_min_driver(self.cuda)
        return nvidia.native_min_driver(major_minor(self.cuda))

    def gpu_archs(self) -> tuple[str, ...]:
        if self.cuda is None:
            return ()
        return self.archs if self.archs is not None else nvidia.archs_of_cuda(self.cuda_mm or self.cuda)


# --- the PyPI snapshot (kb refresh) ----------------------------------------------------------------

@lru_cache(maxsize=None)
def _pypi() -> dict[str, dict[str, tuple[str, ...]]]:
    """project -> version -> Pythons with wheels, from the refreshed index snapshot (empty if absent)."""
    try:
        rows = load_table("pypi")["release"]
    except KbError:
        return {}
    index: dict[str, dict[str, tuple[str, ...]]] = {}
    for row in rows:
        if row.get("sdist_only"):
            continue
        index.setdefault(row["project"], {})[row["version"]] = _allowed(_expand(tuple(row["python"])),
                                                                      row.get("requires_python"))
    return index


@lru_cache(maxsize=None)            # a snapshot repeats a few Python lists and ranges over a thousand rows
def _allowed(pythons: tuple[str, ...], requires: Optional[str]) -> tuple[str, ...]:
    """A pure wheel (py3) runs only on the Pythons its Requires-Python admits (jax 0.12: >=3.12)."""
    if not requires:
        return pythons
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        return pythons
    return tuple(p for p in pythons if spec.contains(p))


@lru_cache(maxsize=None)
def _expand(pythons: tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for item in pythons:
        if item in ("py3", "py2.py3"):
            found.update(p for p in ALL_PYTHONS if p.startswith("3."))
        if item in ("py2", "py2.py3"):
            found.add("2.7")
        if re.fullmatch(r"\d+\.\d+", item):  # "3.14t" (free-threaded) is another interpreter
            found.add(item)
    return tuple(sorted(found, key=minor_key))


def published(project: str) -> Optional[dict[str, tuple[str, ...]]]:
    """Versions of a project on the index and their Pythons; None when the snapshot lacks the project."""
    return _pypi().get(project)


@lru_cache(maxsize=None)
def _snapshot_rows() -> dict[tuple[str, str], dict]:
    try:
        return {(row["project"], row["version"]): row for row in load_table("pypi")["release"]}
    except KbError:
        return {}


def extras_of(project: str, version: str) -> Optional[tuple[str, ...]]:
    """The extras a release declares (Provides-Extra, PEP 685 names); None when the snapshot does not say."""
    row = _snapshot_rows().get((project, version))
    if row is None or "extras" not in row:
        return None
    return tuple(row["extras"])


def sdist_only(project: str, version: str) -> bool:
    """Whether the release was published as an sdist and no wheel (tensorflow-gpu 2.12.0)."""
    row = _snapshot_rows().get((project, version))
    return bool(row and row.get("sdist_only"))


@lru_cache(maxsize=None)
def selecting_extras(family: str) -> frozenset[str]:
    """The extras that choose which build of a framework is installed (jax[cuda12], tensorflow[and-cuda],
    cupy-cuda12x[ctk], jax[cpu]): these pick the build; any other extra a release declares is carried along
    with it (torch[opt-einsum])."""
    if family == "jax":
        return frozenset({"cpu"} | {extra_name(r["extra"]) for r in load_table("jax")["variant"]})
    if family == "tensorflow":
        return frozenset(extra_name(r["extra"]) for r in load_table("tensorflow")["package"] if r.get("extra"))
    if family == "cupy":
        return frozenset({"ctk"})
    return frozenset()


def with_extras(requirement: str, extras: Sequence[str]) -> str:
    """`torch==2.5.1` with opt-einsum -> `torch[opt-einsum]==2.5.1` (a URL requirement keeps its form)."""
    if not extras or " @ " in requirement:
        return requirement
    name, _, rest = requirement.partition("[") if "[" in requirement.split("=")[0] else (requirement, "", "")
    if rest:
        have, _, tail = rest.partition("]")
        merged = sorted(set(have.split(",")) | set(extras))
        return f"{name}[{','.join(merged)}]{tail}"
    split = re.search(r"[=<>!~]", requirement)
    at = split.start() if split else len(requirement)
    return f"{requirement[:at]}[{','.join(sorted(extras))}]{requirement[at:]}"


def extra_name(extra: str) -> str:
    """An extra's name as PEP 685 compares them: cuda12_pip and cuda12-pip are one extra."""
    return re.sub(r"[-_.]+", "-", extra).lower()


def _pythons(listed: list[str], project: str, version: str) -> tuple[str, ...]:
    """The tables' Pythons, narrowed to those the index has wheels for (when it knows the version)."""
    wheels = (published(project) or {}).get(version)
    if wheels:
        narrowed = [p for p in listed if p in wheels]
        return tuple(sorted(narrowed or wheels, key=minor_key)) if narrowed else ()
    return tuple(sorted(listed, key=minor_key))


def _newest_first(versions: list[str]) -> list[str]:
    return sorted({v for v in versions if not V(v).is_prerelease}, key=V, reverse=True)


# --- TensorFlow ---------------------------------------------------------------------------------------

def _tensorflow(want: Want, request: Request) -> list[Build]:
    table = load_table("tensorflow")
    builds = {row["version"]: row for row in table["build"]}
    versions: set[str] = set()
    for project in ("tensorflow", "tensorflow-gpu", "tensorflow-cpu"):
        versions.update((published(project) or {}).keys())
    if not versions:  # no index snapshot: the minor releases of the tested table, as x.y.0
        versions = {f"{v}.0" for v in builds}
    found = []
    for version in _newest_first(sorted(versions)):
        build = builds.get(major_minor(version))
        route = next((p for p in table["package"] if matches(p["versions"], version)), None)
        if build is None or route is None:
            continue
        found += _tf_builds(want, request, build, route, version)
    return found


def _tf_builds(want: Want, request: Request, build: Row, route: Row, version: str) -> list[Build]:
    """The builds of one release: the one its package row names (the project and extra that carry the GPU
    build), and tensorflow-gpu itself when that was asked and published as a wheel (2.1-2.11: an alias)."""
    found = []
    for project, extra, source in _tf_choices(want, request, route, version):
        index = published(project)
        if index is not None and version not in index:
            continue
        requirement = f"{project}[{extra}]=={version}" if extra else f"{project}=={version}"
        found.append(Build(
            "tensorflow", project, version, requirement, _pythons(build["python"], project, version),
            None if source == "none" else build["cuda"], None if source == "none" else build["cudnn"], source,
            variant=extra, extra=extra))
    return found


def _tf_choices(want: Want, request: Request, route: Row, version: str) -> list[tuple[str, str, CudaSource]]:
    """(project, extra, cuda_source) of the builds of one release to offer."""
    if want.project == "tensorflow-cpu":  # the CPU-only project, asked by name: planned as written
        return [("tensorflow-cpu", "", "none")]
    if request.cpu:
        return [("tensorflow", "", "none")]
    extra = route.get("extra", "")
    declared = extras_of(route["project"], version)
    if extra and declared is not None and extra_name(extra) not in declared:
        extra = ""  # the release's metadata does not declare the extra: its GPU build needs system CUDA
    source: CudaSource = route["cuda_source"] if extra else "base-image"
    choices = [(route["project"], extra, source)]
    if want.project == "tensorflow-gpu" != route["project"]:
        choices.append(("tensorflow-gpu", "", "base-image"))
    return choices


# --- PyTorch --------------------------------------------------------------------------------------------

def _cu(cuda: str) -> str:
    return "cu" + cuda.replace(".", "")


def _torch(want: Want, request: Request) -> list[Build]:
    """Every build of every release; a pin with a local version (torch==2.4.1+cu118) is given the builds of
    PyTorch's own index only (their pins carry +cuXYZ / +cpu; PyPI's own build has no local version)."""
    table = load_table("pytorch")
    routes = [r for r in load_table("wheel_routes")["route"] if r["family"] == "torch"]
    local = asks_local(want)
    found = []
    for row in sorted(table["release"], key=lambda r: V(r["version"]), reverse=True):
        default = None if local else row.get("pypi_cuda")
        ordered = ([default] if default in row["cuda"] else []) + sorted(
            (c for c in row["cuda"] if c != default), key=minor_key, reverse=True)
        for cuda in ([] if request.cpu else ordered):
            found.append(_torch_build(row, cuda, cuda == default, routes, table["archs"]))
        if request.cpu or local:  # PyPI's Linux torch carries CUDA: the CPU build comes from PyTorch's cpu index
            found.append(_torch_build(row, None, False, routes, table["archs"]))
    return [b for b in found if b is not None]


def _torch_build(row: Row, cuda: Optional[str], is_default: bool, routes: Sequence[Row],
                 arch_rows: Sequence[Row]) -> Optional[Build]:
    """One torch build: PyPI's own (no route), or a variant ("cu118", or "cpu" for cuda None) by its route."""
    version = row["version"]
    token = _cu(cuda) if cuda else "cpu"
    source: CudaSource = "wheels" if cuda else "none"
    archs = next((tuple(a["archs"]) for a in arch_rows
                  if a["cuda"] == cuda and matches(a["versions"], version)), None)
    cudnn = (row.get("cudnn") or {}).get(cuda) if cuda else None
    if is_default:
        python = _pythons(list(row["python"]), "torch", version)
        return Build("torch", "torch", version, f"torch=={version}", python, cuda, cudnn, source,
                     archs=archs, companions=_companions(row, ""), variant=token)
    route = next((r for r in routes if matches(r["versions"], version)), None)
    if route is None:
        return None
    url = route["url"].replace("{cu}", token).replace("{version}", version)
    local = f"+{token}" if route["local_version"] else ""
    options: tuple[str, ...] = ()
    if route["kind"] == "wheel-url":
        requirement = f"torch @ {url}"
    else:
        requirement, options = f"torch=={version}{local}", (f"--{route['kind']}", url)
    return Build("torch", "torch", version, requirement, tuple(row["python"]), cuda, cudnn, source, archs=archs,
                 pip_options=options, companions=_companions(row, local), variant=token, local=local.lstrip("+"))


def _companions(row: Row, local: str) -> tuple[str, ...]:
    out = []
    if row.get("torchvision"):
        out.append(f"torchvision=={row['torchvision']}{local}")
    if row.get("torchaudio"):
        out.append(f"torchaudio=={row['torchaudio']}")
    return tuple(out)


# --- MXNet ----------------------------------------------------------------------------------------------

def _mxnet(want: Want, request: Request) -> list[Build]:
    table = load_table("mxnet")
    if request.cpu:  # the CPU build is the plain `mxnet` project, whichever variant was named
        return [Build("mxnet", "mxnet", version, f"mxnet=={version}", _mx_python(table, version), None, None, "none")
                for version in _newest_first(list(published("mxnet") or {}))]
    found = [
        _mxnet_build(table, row, version)
        for row in table["variant"] if want.project in ("mxnet", row["package"])
        for version in _newest_first(list(published(row["package"]) or {})) if matches(row["versions"], version)
    ]
    wants_mkl = "mkl" in want.project
    found.sort(key=lambda b: (V(b.version), ("mkl" in b.variant) == wants_mkl, minor_key(b.cuda or "0")), reverse=True)
    return found


def _mx_python(table: Table, version: str) -> tuple[str, ...]:
    row = next((r for r in table["python"] if matches(r["versions"], version)), None)
    return tuple(row["python"]) if row else ()


def _mxnet_build(table: Table, row: Row, version: str) -> Build:
    build = next((b for b in table["build"] if b["cuda"] == row["cuda"] and matches(b["versions"], version)), None)
    cudnn = build["cudnn"] if build else None
    notes = []
    if build is None:
        notes.append(f"the cuDNN {row['package']} {version} was built with is not recorded")
    python = _pythons(list(_mx_python(table, version)), row["package"], version)
    variant = row["package"].split("-", 1)[1]
    return Build("mxnet", row["package"], version, f"{row['package']}=={version}", python, row["cuda"],
                 cudnn, "base-image", variant=variant, notes=tuple(notes))


# --- JAX ------------------------------------------------------------------------------------------------

def _jax(want: Want, request: Request) -> list[Build]:
    """Per release, a build for each CUDA extra it publishes (its Provides-Extra in the snapshot) that jax.toml
    knows; `jax[cpu]` only when asked (the CPU build of a GPU request is never chosen for it)."""
    table = load_table("jax")
    route = next((r for r in load_table("wheel_routes")["route"] if r["family"] == "jax"), None)
    cpu_asked = "cpu" in {extra_name(e) for e in want.extras}
    found = []
    for version in _newest_first(list(published("jax") or {})):
        if request.cpu or cpu_asked:
            found.append(_jax_cpu(version, cpu_asked))
        if request.cpu:
            continue
        declared = extras_of("jax", version)
        for row in table["variant"]:
            if matches(row["versions"], version) and (declared is None or extra_name(row["extra"]) in declared):
                found.append(_jax_build(row, version, route))
    return found


def _jax_cpu(version: str, extra: bool) -> Build:
    pythons = _pythons(list(_pythons(list(ALL_PYTHONS), "jax", version)), "jaxlib", version)
    requirement = f"jax[cpu]=={version}" if extra else f"jax=={version}"
    return Build("jax", "jax", version, requirement, pythons, None, None, "none", extra="cpu" if extra else "")


def _jax_build(row: Row, version: str, route: Optional[Row]) -> Build:
    """One CUDA extra of a release; an extra that pins a local jaxlib (jaxlib==V+cuda12.cudnn89, before 0.4.30)
    gets it from JAX's own release page (wheel_routes.toml), where those jaxlib builds are published."""
    options: tuple[str, ...] = ()
    if row.get("local_jaxlib"):
        if route is None or not matches(route["versions"], version):
            raise KbError(f"jax.toml: jax[{row['extra']}]=={version} needs a local jaxlib and wheel_routes.toml has "
                          "no route for it", "reinstall gpuenv; if it persists, report it with `gpuenv --version`")
        options = (f"--{route['kind']}", route["url"])
    return Build("jax", "jax", version, f"jax[{row['extra']}]=={version}",
                 _pythons(list(row["python"]), "jaxlib", version), row["cuda"], row["cudnn"],
                 row["cuda_source"], pip_options=options, variant=row["extra"], extra=row["extra"])


# --- PaddlePaddle ---------------------------------------------------------------------------------------

def _paddle(want: Want, request: Request) -> list[Build]:
    """paddlepaddle-gpu: PyPI's build of each release, then the CUDA variants of Paddle's own index (newest
    CUDA first); `paddlepaddle`, or gpu.devices = "none", is the CPU build."""
    _no_extras(want)
    if request.cpu or want.project == "paddlepaddle":
        return _paddle_cpu()
    table = load_table("paddle")
    found = [b for v in _newest_first(list(published("paddlepaddle-gpu") or {})) for b in _paddle_pypi(table, v)]
    found += _paddle_index(table)
    found.sort(key=lambda b: (V(b.version).release, not b.pip_options, minor_key(b.cuda or "0")), reverse=True)
    return found


def _no_extras(want: Want) -> None:
    """PaddlePaddle's wheels declare no extras (their METADATA): one asked for is refused, never dropped."""
    if want.extras:
        plain = f"{want.project}{want.specifier}"
        raise ImpossibleRequest(f"{want.text}: {want.project} publishes no extras ({', '.join(want.extras)} asked)",
                                code="no-such-version", alternatives=[plain], hint=f"options: {plain}")


def _paddle_cpu() -> list[Build]:
    return [Build("paddle", "paddlepaddle", v, f"paddlepaddle=={v}", _pythons(list(ALL_PYTHONS), "paddlepaddle", v),
                  None, None, "none") for v in _newest_first(list(published("paddlepaddle") or {}))]


def _paddle_pypi(table: Table, version: str) -> list[Build]:
    """PyPI's paddlepaddle-gpu release: the CUDA its wheels were built with (1.x: named by the .postXY tag)."""
    post = V(version).post
    row = next((r for r in table["pypi"] if matches(r["versions"], version)
                and r.get("post", "") == ("" if post is None else str(post))), None)
    if row is None:
        return []
    python = _pythons(list(ALL_PYTHONS), "paddlepaddle-gpu", version)
    return [LimitedBuild("paddle", "paddlepaddle-gpu", version, f"paddlepaddle-gpu=={version}", python, row["cuda"],
                         row["cudnn"], "base-image", variant=_cu(row["cuda"]), notes=_paddle_arch_note(table, version),
                         min_cc=_paddle_floor(table, version))]


def _paddle_releases() -> dict[str, tuple[str, ...]]:
    """Release numbers -> Pythons: PyPI's paddlepaddle-gpu (2.x), else the CPU project of the same number (3.x)."""
    found: dict[str, tuple[str, ...]] = {}
    for project in ("paddlepaddle", "paddlepaddle-gpu"):
        for version, pythons in (published(project) or {}).items():
            if V(version).post is None and not V(version).is_prerelease:
                found[version] = _pythons(list(ALL_PYTHONS), project, version) or pythons
    return found


def _paddle_index(table: Table) -> list[Build]:
    found = []
    for version, python in _paddle_releases().items():
        route = next((r for r in table["route"] if matches(r["versions"], version)), None)
        for row in table["index"]:
            if route is not None and matches(row["versions"], version):
                found.append(_paddle_variant(table, row, route, version, python))
    return found


def _paddle_variant(table: Table, row: Row, route: Row, release: str, python: tuple[str, ...]) -> Build:
    """One build only Paddle's own index has: 2.6.2.post112 (its find-links page or index), 3.2.0 from .../cu126/."""
    token = _cu(row["cuda"])
    version = f"{release}.{row['suffix']}" if row["suffix"] else release
    url = route["url"].replace("{cu}", token)
    note = (f"paddlepaddle-gpu {version} ({token}) comes from Paddle's own index, {url} (pip --{route['kind']}); "
            "PyPI does not have it, and gpuenv has not read that index: its CUDA and cuDNN are those of Paddle's "
            "install docs (kb/data/paddle.toml)")
    return LimitedBuild("paddle", "paddlepaddle-gpu", version, f"paddlepaddle-gpu=={version}", python, row["cuda"],
                        row["cudnn"], row["cuda_source"], pip_options=(f"--{route['kind']}", url), variant=token,
                        notes=(note,) + _paddle_arch_note(table, release), floor=row.get("min_driver"),
                        min_cc=_paddle_floor(table, release))


@dataclass(frozen=True)
class LimitedBuild(Build):
    """A build whose publisher states limits its CUDA alone does not imply: a higher driver floor (Paddle's cu126
    wheels ask 550.54.14 where CUDA 12's minor-version compatibility says 525.60.13), and a lowest GPU ("computing
    power over 6.0"). The stricter holds; the architectures stay the CUDA-derived range (archs None: not exact)."""

    floor: Optional[str] = None     # driver
    min_cc: Optional[str] = None    # compute capability, "6.0"

    def min_driver(self) -> Optional[str]:
        return max((d for d in (super().min_driver(), self.floor) if d), key=V, default=None)

    def gpu_archs(self) -> tuple[str, ...]:
        low = minor_key(self.min_cc or "0.0")
        return tuple(a for a in super().gpu_archs() if sm_to_cc(a) >= low)


def _paddle_floor(table: Table, version: str) -> Optional[str]:
    return next((r["min_cc"] for r in table["gpu"] if matches(r["versions"], version)), None)


def _paddle_arch_note(table: Table, version: str) -> tuple[str, ...]:
    floor = _paddle_floor(table, version)
    if floor is None:
        return ()
    return (f"GPU architectures of paddlepaddle-gpu {version}: the range its CUDA can build for, from compute "
            f"capability {floor} (Paddle's install docs); Paddle does not publish its exact list",)


# --- CuPy -----------------------------------------------------------------------------------------------

def _cupy(want: Want, request: Request) -> list[Build]:
    """cupy-cudaXY / cupy-cudaXYx as written: with system CUDA (one build per CUDA release the project runs on,
    newest first), or with `[ctk]` (14.0 on) CUDA from NVIDIA's wheels. `cupy` itself is a source build."""
    table = load_table("cupy")
    if want.project == "cupy":
        raise _cupy_source_only(want, table)
    if request.cpu:
        raise _cupy_needs_gpu(want)
    if want.project not in _cupy_wheel_projects(table):
        raise _cupy_no_such_project(want, table)
    _check_cupy_extras(want, table)
    found, lacking = [], []
    for version in _newest_first(list(published(want.project) or {})):
        if set(want.extras) <= _cupy_extras(table, version):
            found += _cupy_builds(table, want, version)
        elif matches(want.specifier, version):
            lacking.append(version)
    if lacking and not any(matches(want.specifier, b.version) for b in found):
        raise _cupy_extra_missing(want, lacking[0], [b.version for b in found])
    return found


def _cupy_extra_missing(want: Want, version: str, having: list[str]) -> ImpossibleRequest:
    """The release asked exists but does not declare the extra (ctk from 14.0): say so, and what does."""
    extras = ",".join(sorted(want.extras))
    newer = sorted({v for v in having if V(v) > V(version)}, key=V)[:1] or sorted(set(having), key=V)[-1:]
    fix = [f"{want.project}[{extras}]=={v}" for v in newer] + [f"{want.project}=={version}"]
    return ImpossibleRequest(f"{want.text}: {want.project} {version} does not declare the extra [{extras}] "
                             f"(releases that do: {', '.join(sorted(set(having), key=V)) or 'none'})",
                             code="no-such-version", alternatives=fix, hint="options: " + "; or ".join(fix))


def _cupy_extras(table: Table, version: str) -> set[str]:
    return {e for row in table["extras"] if matches(row["versions"], version) for e in row["extras"]}


def _check_cupy_extras(want: Want, table: Table) -> None:
    """An extra no CuPy release declares is refused (exit 3), naming the extras that exist."""
    known = {e for row in table["extras"] for e in row["extras"]}
    unknown = sorted(set(want.extras) - known)
    if unknown:
        fix = [f"{want.project}[{e}]{want.specifier}" for e in sorted(known)]
        raise ImpossibleRequest(f"{want.text}: no {want.project} release declares the extra "
                                f"{', '.join(unknown)} (extras: {', '.join(sorted(known))})",
                                code="no-such-version", alternatives=fix, hint="options: " + "; or ".join(fix))


def _cupy_builds(table: Table, want: Want, version: str) -> list[Build]:
    python = (published(want.project) or {}).get(version, ())
    extras = f"[{','.join(sorted(want.extras))}]" if want.extras else ""
    requirement = f"{want.project}{extras}=={version}"
    if "ctk" in want.extras:
        row = next((r for r in table["ctk"] if r["project"] == want.project and matches(r["versions"], version)), None)
        return [] if row is None else [Build("cupy", want.project, version, requirement, python, row["cuda"], None,
                                             "wheels", variant=f"cuda{row['cuda']}+ctk", extra="ctk")]
    row = next((r for r in table["package"] if r["project"] == want.project and matches(r["versions"], version)), None)
    cudas = sorted(row["cuda"], key=minor_key, reverse=True) if row else []
    note = ("CuPy compiles kernels at run time with NVRTC (in the nvidia/cuda runtime image); kernels that include "
            "CUDA headers (float16) need a devel base or nvidia-cuda-runtime-cuXY's headers (CuPy's install docs)")
    return [Build("cupy", want.project, version, requirement, python, cuda, None, "base-image",
                  variant=f"cuda{cuda}", notes=(note,)) for cuda in cudas]


def _cupy_wheel_projects(table: Table) -> list[str]:
    return list(dict.fromkeys(r["project"] for r in table["package"]))


def _cupy_source_only(want: Want, table: Table) -> ImpossibleRequest:
    """`cupy` is CuPy's source distribution: it needs nvcc and a compiler to install. Name the wheels that fit."""
    fix = []
    for project in reversed(_cupy_wheel_projects(table)):
        versions = [v for v in _newest_first(list(published(project) or {})) if matches(want.specifier, v)]
        if versions:
            fix.append(f"{project}=={versions[0]}")
    message = (f"{want.text}: `cupy` is CuPy's source distribution (PyPI has no wheel of it): installing it "
               "compiles CuPy with nvcc, and gpuenv environments have no CUDA compiler; CuPy publishes prebuilt "
               "wheels as cupy-cudaXY / cupy-cudaXYx, one project per CUDA")
    if not fix:
        message += f"; none of them has a release matching '{want.specifier}'"
    return ImpossibleRequest(message, code="no-such-version", alternatives=fix[:3],
                             hint=("options: " + "; or ".join(fix[:3])) if fix else "see `gpuenv matrix cupy-cuda12x`")


def _cupy_no_such_project(want: Want, table: Table) -> ImpossibleRequest:
    """cupy-cuda12 (no x), cupy-cuda118: names CuPy never published; the closest ones that exist."""
    projects = _cupy_wheel_projects(table)
    fitting = [p for p in projects if any(matches(want.specifier, v) for v in published(p) or {})] or projects
    near = difflib.get_close_matches(want.project, fitting, n=3, cutoff=0.6) or fitting[-3:]
    fix = [f"{p}{want.specifier}" for p in near]
    return ImpossibleRequest(f"{want.text}: CuPy publishes no {want.project} package; its wheel packages are "
                             f"{projects[0]} ... {projects[-1]} (kb/data/cupy.toml)", code="no-such-version",
                             alternatives=fix, hint="options: " + "; or ".join(fix))


def _cupy_needs_gpu(want: Want) -> ImpossibleRequest:
    return ImpossibleRequest(f"{want.text}: CuPy has no CPU build (every cupy-cudaXY wheel runs on an NVIDIA GPU), "
                             'and gpu.devices = "none" was asked', code="conflict",
                             alternatives=['gpu.devices = "all"', "numpy (CuPy's CPU counterpart) under `packages`"],
                             hint='options: gpu.devices = "all"; or numpy under `packages`')


PROVIDERS: dict[str, Callable[[Want, Request], list[Build]]] = {
    "tensorflow": _tensorflow,
    "torch": _torch,
    "mxnet": _mxnet,
    "jax": _jax,
    "paddle": _paddle,
    "cupy": _cupy,
}


def builds_for(want: Want, request: Request) -> list[Build]:
    provider = PROVIDERS.get(want.family)
    if provider is None:
        return []
    return provider(want, request)


def families() -> list[str]:
    return list(PROVIDERS)


def withdrawn(project: str, version: str) -> Optional[str]:
    """Why a published release of a framework project is no build to install (tensorflow.toml `withdrawn`)."""
    rows = load_table("tensorflow").get("withdrawn", ())
    row = next((r for r in rows if r["project"] == project and matches(r["versions"], version)), None)
    return row["why"] if row else None


def asks_local(want: Want) -> bool:
    """Whether a requirement pins a local version (torch==2.4.1+cu118; "!=2.4.1+cu118" excludes one, pins none)."""
    return any(part.strip().startswith("==") and "+" in part for part in want.specifier.split(","))
