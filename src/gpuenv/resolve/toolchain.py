"""What an environment needs to compile CUDA (or C/C++) code, decided from the plan: no I/O.

The toolkit level is the spec's `[gpu] toolkit`:
    runtime   what runs the framework: no compiler (the default bases: python slim, nvidia/cuda runtime)
    devel     a C/C++ compiler, and with CUDA, nvcc of the framework's own CUDA, its headers and libraries
    auto      devel when something in the environment is compiled from source, else runtime

With CUDA from wheels (13 on) the compiler comes as NVIDIA's own pip packages of the same CUDA release
(those NVIDIA's `cuda-toolkit` metapackage names for nvcc, crt, nvvm, cudart and cccl:
kb/data/compilers.toml), each asked at the frameworks' CUDA minor and resolved with the framework;
.gpuenv/cuda-home.sh then arranges them as a CUDA_HOME (/usr/local/cuda) that torch's cpp_extension and
CMake accept. CUDA is shipped once: the runtime libraries are the framework's. NVIDIA's CUDA 11 and 12
nvcc packages hold no nvcc (ptxas alone), so a CUDA 11/12 wheels plan takes the nvidia/cuda devel image of
its CUDA as its base (CUDA twice, said in the plan). With a system CUDA the base is the nvidia/cuda devel
image of the same tag. The host compiler is the base OS's gcc when that
CUDA's nvcc accepts it, else the newest gcc-N of the OS that it does (kb/data/compilers.toml).

Architectures: the target's GPUs (each compute capability as SASS, the newest also as PTX, so a newer
GPU still runs it through the driver's JIT); a plan for no GPU in particular takes the framework's own
list, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Optional, Sequence

from gpuenv.errors import ImpossibleRequest
from gpuenv.kb import load_table
from gpuenv.resolve.builds import CudaSource     # at run time: a lock reads the plan back by its types
from gpuenv.resolve.versions import major_minor, matches, minor_key, sm_to_cc

if TYPE_CHECKING:
    from gpuenv.resolve.plan import Plan

Level = Literal["runtime", "devel"]
Wanted = Literal["auto", "runtime", "devel"]


# What builds of Python packages with native code read besides the compiler (the compiler's own pip step
# installs them): ninja (torch's cpp_extension builds in parallel, MAX_JOBS, only with it), setuptools,
# wheel, packaging and psutil (imported by setup.py files built without isolation next to torch:
# flash-attn's sizes MAX_JOBS with psutil, kb/data/compiled.toml).
BUILD_TOOLS = ("ninja", "setuptools", "wheel", "packaging", "psutil")
CUDA_HOME = "/usr/local/cuda"


@dataclass(frozen=True)
class Archs:
    ccs: tuple[str, ...]         # compute capabilities built as SASS, oldest first: ("8.0", "9.0")
    ptx: str                     # the one also built as PTX (the newest): "9.0"
    origin: str                  # "the target's GPUs (NVIDIA H100)" | "torch 2.15.0's own list"

    @property
    def torch(self) -> str:
        """TORCH_CUDA_ARCH_LIST: "8.0;9.0+PTX"."""
        return ";".join(cc + ("+PTX" if cc == self.ptx else "") for cc in self.ccs)

    @property
    def cmake(self) -> str:
        """CMAKE_CUDA_ARCHITECTURES / CUDAARCHS: "80-real;90" (a bare number is SASS and PTX)."""
        return ";".join(cc.replace(".", "") + ("" if cc == self.ptx else "-real") for cc in self.ccs)


@dataclass(frozen=True)
class Compiler:
    gcc: str                     # the GCC major: "12"
    packages: tuple[str, ...]    # what apt installs: ("gcc", "g++") or ("gcc-12", "g++-12")
    versioned: bool              # not the OS's default gcc: CC, CXX and CUDAHOSTCXX name it
    why: str


@dataclass(frozen=True)
class Toolchain:
    level: Level
    why: str
    cuda: Optional[str] = None           # the CUDA it compiles for, "13.2"; None: C/C++ only (or runtime)
    cuda_source: CudaSource = "none"     # as the plan's
    packages: tuple[str, ...] = ()       # CUDA from wheels: the compiler's pip packages, ("nvidia-cuda-nvcc==13.0.*", ...)
    compiler: Optional[Compiler] = None  # None: no compiler (runtime), or the base's own (nvidia/cuda devel)
    archs: Optional[Archs] = None        # None: no CUDA code is built (runtime, or devel without CUDA)
    no_isolation: tuple[str, ...] = ()   # built here without build isolation: their builds import torch

    @property
    def pip(self) -> tuple[str, ...]:
        """The requirements of the compiler's own pip step (after the framework's), resolved with the rest."""
        if self.level != "devel":
            return ()
        return self.packages + BUILD_TOOLS

    def env(self) -> tuple[tuple[str, str], ...]:
        """What the image's ENV sets, so that a build inside (pip install -e ., cmake) uses this toolchain
        and builds only these architectures."""
        found: list[tuple[str, str]] = []
        if self.level != "devel":
            return ()
        # `pip install --no-build-isolation -e .` of a project with only a setup.py: pip's legacy path runs
        # `setup.py develop`, which setuptools >= 80 hands back to pip, isolated (a fresh setuptools from
        # the index, no torch): the PEP 517 path keeps the environment's own (seen in this image's tests).
        found.append(("PIP_USE_PEP517", "1"))
        if self.compiler is not None and self.compiler.versioned:
            found += [("CC", f"gcc-{self.compiler.gcc}"), ("CXX", f"g++-{self.compiler.gcc}")]
        if self.cuda is not None:
            found += [("CUDA_HOME", CUDA_HOME), ("CUDA_PATH", CUDA_HOME), ("CUDACXX", f"{CUDA_HOME}/bin/nvcc")]
            if self.compiler is not None and self.compiler.versioned:
                found.append(("CUDAHOSTCXX", f"g++-{self.compiler.gcc}"))
        if self.archs is not None:
            found += [("TORCH_CUDA_ARCH_LIST", self.archs.torch), ("CUDAARCHS", self.archs.cmake),
                      ("CMAKE_CUDA_ARCHITECTURES", self.archs.cmake)]
            found += _package_builds(self.archs)
        return tuple(found)

    def to_dict(self) -> dict[str, object]:
        return {"level": self.level, "why": self.why, "cuda": self.cuda, "cuda_source": self.cuda_source,
                "packages": list(self.packages),
                "gcc": self.compiler.gcc if self.compiler else None,
                "apt": list(self.compiler.packages) if self.compiler else [],
                "archs": {"ccs": list(self.archs.ccs), "ptx": self.archs.ptx, "origin": self.archs.origin,
                          "torch": self.archs.torch, "cmake": self.archs.cmake} if self.archs else None,
                "env": dict(self.env()), "no_build_isolation": list(self.no_isolation)}


@dataclass(frozen=True)
class Needs:
    """What in a resolved environment compiles native code (kb/data/compiled.toml), by when and with what."""

    build: tuple[str, ...] = ()          # built from source here, with a compiler (no wheel fits)
    first_use: tuple[str, ...] = ()      # compile CUDA code with nvcc when first used (DeepSpeed's ops)
    first_use_cc: tuple[str, ...] = ()   # compile C when first used (Triton's launcher: torch.compile on a GPU)
    unknown: tuple[str, ...] = ()        # built from source here; whether they compile, gpuenv does not know
    no_isolation: tuple[str, ...] = ()   # of `build`, those whose build imports torch (no build isolation)


def needs_of(pins: Sequence[tuple[str, str]], sdists: Sequence[str]) -> Needs:
    """`pins`: (name, version) of every resolved distribution; `sdists`: those built from their source
    distribution (no wheel for the target). Each is looked up in the knowledge base's compiled table."""
    build: list[str] = []
    first: list[str] = []
    first_cc: list[str] = []
    unknown: list[str] = []
    no_isolation: list[str] = []
    versions = dict(pins)
    for name in sorted(set(sdists)):
        row = compiled_row(name, versions.get(name))
        (unknown if row is None else build).append(name)      # a listed one compiles, whatever its wheels elsewhere
        if row is not None and not row["build_isolation"]:
            no_isolation.append(name)
    for name, version in sorted(pins):
        row = compiled_row(name, version)
        if row is None or row["compiles"] != "first-use" or name in build:
            continue
        (first if row["needs"] == "nvcc" else first_cc).append(name)
    return Needs(tuple(build), tuple(first), tuple(first_cc), tuple(unknown), tuple(no_isolation))


def compiled_row(name: str, version: Optional[str]) -> Optional[dict[str, Any]]:
    """The compiled table's row of a distribution at a version (the row without `versions` when none
    names it); None when the table does not list it."""
    rows = [r for r in load_table("compiled")["package"] if r["name"] == name]
    if version is not None:
        for row in rows:
            if row.get("versions") and matches(row["versions"], version):
                return row
    return next((r for r in rows if not r.get("versions")), rows[0] if rows and version is None else None)


def _package_builds(archs: Archs) -> list[tuple[str, str]]:
    """What the ecosystem's own build scripts read instead of, or besides, TORCH_CUDA_ARCH_LIST (their
    rows in kb/data/compiled.toml, sources there): in an image build no GPU is visible, and without these
    several build no CUDA code at all and still install (the PyG extensions, mmcv, pytorch3d, detectron2:
    FORCE_CUDA; mmcv's ops: MMCV_WITH_OPS; NATTEN: NATTEN_CUDA_ARCH), or build their own architecture
    list (flash-attn: FLASH_ATTN_CUDA_ARCHS); flash-attn, causal-conv1d and mamba-ssm would download a
    prebuilt wheel from GitHub first, bypassing the lock's hashes and failing offline: *_FORCE_BUILD."""
    sass = ";".join(archs.ccs)
    return [("FORCE_CUDA", "1"), ("MMCV_WITH_OPS", "1"), ("NATTEN_CUDA_ARCH", sass),
            ("FLASH_ATTN_CUDA_ARCHS", ";".join(cc.replace(".", "") for cc in archs.ccs)),
            ("FLASH_ATTENTION_FORCE_BUILD", "TRUE"), ("CAUSAL_CONV1D_FORCE_BUILD", "TRUE"),
            ("MAMBA_FORCE_BUILD", "TRUE")]


def level(wanted: Wanted, needs: Needs = Needs()) -> tuple[Level, str]:
    """The level and why: as the spec says, or (auto) devel when something compiles CUDA or C++ code here:
    built from source, or (with nvcc) when first used."""
    if wanted == "devel":
        return "devel", "toolkit = \"devel\" in gpuenv.toml"
    if wanted == "runtime":
        return "runtime", "toolkit = \"runtime\" in gpuenv.toml"
    if needs.build:
        return "devel", f"{_names(needs.build)} {_is(needs.build)} compiled from source here (no wheel fits)"
    if needs.first_use:
        return "devel", f"{_names(needs.first_use)} {_is(needs.first_use)} compiled with nvcc when first used"
    return "runtime", "nothing is compiled here (toolkit = \"auto\")"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def _is(names: Sequence[str]) -> str:
    return "is" if len(names) == 1 else "are"


def toolchain(plan: Plan, wanted: Wanted, needs: Needs = Needs()) -> Toolchain:
    """The plan's toolchain (ImpossibleRequest when no compiler of that CUDA fits its base OS)."""
    chosen, why = level(wanted, needs)
    if chosen == "runtime":
        if needs.first_use_cc and wanted == "auto":
            compiler = host_compiler(plan.base.os, None)
            return Toolchain("runtime", why, cuda_source=plan.cuda_source, compiler=replace(
                compiler, why=f"{_names(needs.first_use_cc)} compile{'s' if len(needs.first_use_cc) == 1 else ''} "
                f"C code when first used (torch.compile on a GPU), with {compiler.why}"))
        return Toolchain("runtime", why, cuda_source=plan.cuda_source)
    cuda = plan.cuda if plan.cuda_source in ("wheels", "base-image") else None
    packages: tuple[str, ...] = ()
    if cuda is not None and plan.cuda_source == "wheels" and plan.base.cuda is None:
        packages = tuple(f"{name}=={major_minor(cuda)}.*" for name in compiler_wheels(cuda))
    return Toolchain("devel", why, cuda, plan.cuda_source, packages, host_compiler(plan.base.os, cuda),
                     archs_for(plan) if cuda is not None else None, needs.no_isolation)


def _compiler_row(cuda: str) -> Optional[dict[str, Any]]:
    major = major_minor(cuda).split(".")[0]
    return next((r for r in load_table("compilers")["compiler_wheels"] if r["major"] == major), None)


def pip_compiler(cuda: str) -> bool:
    """Whether NVIDIA publishes a whole compiler of this CUDA's major as pip packages (13 on)."""
    return _compiler_row(cuda) is not None


def compiler_wheels(cuda: str) -> tuple[str, ...]:
    """NVIDIA's pip packages of a compiler of this CUDA's major (kb/data/compilers.toml)."""
    row = _compiler_row(cuda)
    if row is None:
        raise ImpossibleRequest(f"NVIDIA publishes no nvcc of CUDA {major_minor(cuda)} as pip packages",
                                code="conflict", hint="a base with a compiler of that CUDA: "
                                "base = \"nvidia/cuda:<CUDA>-devel-<os>\"")
    return tuple(row["packages"])


def archs_for(plan: Plan) -> Archs:
    """The target's GPUs, or the framework's own list when the plan is for no GPU in particular."""
    gpus = plan.target.gpus
    if gpus:
        ccs = sorted({g.cc for g in gpus}, key=minor_key)
        names = ", ".join(dict.fromkeys(g.name for g in gpus))
        return Archs(tuple(ccs), ccs[-1], f"the target's GPUs ({names})")
    own = sorted({".".join(map(str, sm_to_cc(a))) for a in plan.gpu_archs}, key=minor_key)
    frameworks = ", ".join(f"{b.project} {b.version}" for b in plan.builds if b.cuda) or "the CUDA release"
    if not own:
        raise ImpossibleRequest(f"no GPU architecture is known for {frameworks}",
                                hint="name the GPUs to build for: [gpu] compute_capability = [\"9.0\"]")
    return Archs(tuple(own), own[-1], f"{frameworks}'s own list (no GPU in particular was planned for)")


def host_compiler(os_name: str, cuda: Optional[str]) -> Compiler:
    """The gcc of the base OS that this CUDA's nvcc accepts: the OS's default when it does, else the
    newest gcc-N the OS's archive offers that it does; ImpossibleRequest when none does. An OS or a CUDA
    release the knowledge base does not list: the OS's gcc, unchecked (and said so)."""
    tables = load_table("compilers")
    release = next((r for r in tables["os_gcc"] if r["os"] == os_name), None)
    if release is None:
        return Compiler("", ("gcc", "g++"), False, f"the base's own gcc (gpuenv does not know its OS, {os_name}: "
                        "not checked against what nvcc accepts)")
    default = release["default"]
    if cuda is None:
        return Compiler(default, ("gcc", "g++"), False, f"{os_name}'s gcc {default}")
    limit = next((r["max_gcc"] for r in tables["host_gcc"] if r["cuda"] == major_minor(cuda)), None)
    if limit is None:      # older than the nvcc wheels (a system CUDA of NVIDIA's devel image, paired with its OS)
        return Compiler(default, ("gcc", "g++"), False, f"{os_name}'s gcc {default} (not checked: gpuenv knows the "
                        f"gcc nvcc accepts for CUDA {tables['host_gcc'][0]['cuda']} on)")
    if int(default) <= int(limit):
        return Compiler(default, ("gcc", "g++"), False,
                        f"{os_name}'s gcc {default} (CUDA {major_minor(cuda)}'s nvcc accepts gcc <= {limit})")
    fits = [g for g in release["available"] if int(g) <= int(limit)]
    if not fits:
        raise ImpossibleRequest(
            f"CUDA {major_minor(cuda)}'s nvcc accepts gcc <= {limit}, and {os_name} offers gcc "
            f"{', '.join(release['available'])}", hint=_older_os_hint(int(limit), tables["os_gcc"]))
    gcc = max(fits, key=int)
    return Compiler(gcc, (f"gcc-{gcc}", f"g++-{gcc}"), True,
                    f"gcc {gcc} from {os_name} (its default gcc {default} is newer than CUDA "
                    f"{major_minor(cuda)}'s nvcc accepts: <= {limit})")


def _older_os_hint(limit: int, releases: Sequence[dict[str, Any]]) -> str:
    fit = [r["os"] for r in releases if any(int(g) <= limit for g in r["available"])]
    return (f"a base on {', '.join(fit)} has one (base = ... in gpuenv.toml), or a newer CUDA"
            if fit else "plan a newer CUDA")
