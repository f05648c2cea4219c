"""What an environment needs to compile CUDA (or C/C++) code, decided from the plan: no I/O.

The toolkit level is the spec's `[gpu] toolkit`:
    runtime   what runs the framework: no compiler (the default bases: python slim, nvidia/cuda runtime)
    devel     a C/C++ compiler, and with CUDA, nvcc of the framework's own CUDA, its headers and libraries
    auto      devel when something in the environment is compiled from source, else runtime

With CUDA from wheels the compiler comes as NVIDIA's own pip packages of the same CUDA release, asked
through NVIDIA's `cuda-toolkit` metapackage (its extras nvcc, cudart, cccl, cuobjdump pin each component
to the release), resolved with the framework so that the resolver keeps them on the framework's CUDA;
.gpuenv/cuda-home.sh then arranges them as a CUDA_HOME (/usr/local/cuda) that torch's cpp_extension and
CMake accept. CUDA is shipped once: the runtime libraries are the framework's. With a system CUDA the
base is the nvidia/cuda devel image of the same tag. The host compiler is the base OS's gcc when that
CUDA's nvcc accepts it, else the newest gcc-N of the OS that it does (kb/data/compilers.toml).

Architectures: the target's GPUs (each compute capability as SASS, the newest also as PTX, so a newer
GPU still runs it through the driver's JIT); a plan for no GPU in particular takes the framework's own
list, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional, Sequence

from gpuenv.errors import ImpossibleRequest
from gpuenv.kb import load_table
from gpuenv.resolve.versions import major_minor, minor_key, sm_to_cc

if TYPE_CHECKING:
    from gpuenv.resolve.plan import Plan

Level = Literal["runtime", "devel"]
Wanted = Literal["auto", "runtime", "devel"]

# The cuda-toolkit extras of a compiler that torch's cpp_extension and CMake accept: nvcc (with crt and
# nvvm), the runtime's headers and libcudart, the CUDA C++ core libraries' headers (thrust, cub); every
# cuda-toolkit release on PyPI (11.8 on) publishes these three extras.
EXTRAS = ("nvcc", "cudart", "cccl")
# What builds of Python packages with native code read besides the compiler (the compiler's own pip step
# installs them): ninja (torch's cpp_extension builds in parallel, MAX_JOBS, only with it), setuptools,
# wheel and packaging (imported by setup.py files that are built without isolation, next to torch).
BUILD_TOOLS = ("ninja", "setuptools", "wheel", "packaging")
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
    cuda_source: str = "none"            # as the plan's: "wheels" | "base-image" | "none"
    requirement: Optional[str] = None    # wheels: the pip requirement of the compiler's own step
    compiler: Optional[Compiler] = None
    archs: Optional[Archs] = None

    @property
    def pip(self) -> tuple[str, ...]:
        """The requirements of the compiler's own pip step (after the framework's), resolved with the rest."""
        if self.level != "devel":
            return ()
        return ((self.requirement,) if self.requirement else ()) + BUILD_TOOLS

    def env(self) -> tuple[tuple[str, str], ...]:
        """What the image's ENV sets, so that a build inside (pip install -e ., cmake) uses this toolchain
        and builds only these architectures."""
        found: list[tuple[str, str]] = []
        if self.level != "devel":
            return ()
        if self.compiler is not None and self.compiler.versioned:
            found += [("CC", f"gcc-{self.compiler.gcc}"), ("CXX", f"g++-{self.compiler.gcc}")]
        if self.cuda is not None:
            found += [("CUDA_HOME", CUDA_HOME), ("CUDA_PATH", CUDA_HOME), ("CUDACXX", f"{CUDA_HOME}/bin/nvcc")]
            if self.compiler is not None and self.compiler.versioned:
                found.append(("CUDAHOSTCXX", f"g++-{self.compiler.gcc}"))
        if self.archs is not None:
            found += [("TORCH_CUDA_ARCH_LIST", self.archs.torch), ("CUDAARCHS", self.archs.cmake),
                      ("CMAKE_CUDA_ARCHITECTURES", self.archs.cmake)]
        return tuple(found)

    def to_dict(self) -> dict[str, object]:
        return {"level": self.level, "why": self.why, "cuda": self.cuda, "cuda_source": self.cuda_source,
                "requirement": self.requirement,
                "gcc": self.compiler.gcc if self.compiler else None,
                "apt": list(self.compiler.packages) if self.compiler else [],
                "archs": {"ccs": list(self.archs.ccs), "ptx": self.archs.ptx, "origin": self.archs.origin,
                          "torch": self.archs.torch, "cmake": self.archs.cmake} if self.archs else None,
                "env": dict(self.env())}


def level(wanted: Wanted, compiled: tuple[str, ...]) -> tuple[Level, str]:
    """The level and why: as the spec says, or (auto) devel when something is compiled from source."""
    if wanted == "devel":
        return "devel", "toolkit = \"devel\" in gpuenv.toml"
    if wanted == "runtime":
        return "runtime", "toolkit = \"runtime\" in gpuenv.toml"
    if compiled:
        return "devel", f"{', '.join(compiled)} {'is' if len(compiled) == 1 else 'are'} compiled from source here"
    return "runtime", "nothing is compiled from source (toolkit = \"auto\")"


def toolchain(plan: Plan, wanted: Wanted, compiled: tuple[str, ...] = ()) -> Toolchain:
    """The plan's toolchain (ImpossibleRequest when no compiler of that CUDA fits its base OS)."""
    chosen, why = level(wanted, compiled)
    if chosen == "runtime":
        return Toolchain("runtime", why, cuda_source=plan.cuda_source)
    cuda = plan.cuda if plan.cuda_source in ("wheels", "base-image") else None
    requirement = None
    if cuda is not None and plan.cuda_source == "wheels":
        requirement = f"cuda-toolkit[{','.join(EXTRAS)}]=={major_minor(cuda)}.*"
    compiler = None if plan.cuda_source == "base-image" else host_compiler(plan.base.os, cuda)
    return Toolchain("devel", why, cuda, plan.cuda_source, requirement, compiler,
                     archs_for(plan) if cuda is not None else None)


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
    newest gcc-N the OS's archive offers that it does. ImpossibleRequest when none does, or the OS or
    the CUDA release is not in the knowledge base."""
    tables = load_table("compilers")
    release = next((r for r in tables["os_gcc"] if r["os"] == os_name), None)
    if release is None:
        return Compiler("", ("gcc", "g++"), False, f"the base's own gcc (gpuenv does not know its OS, {os_name}: "
                        "not checked against what nvcc accepts)")
    default = release["default"]
    if cuda is None:
        return Compiler(default, ("gcc", "g++"), False, f"{os_name}'s gcc {default}")
    limit = next((r["max_gcc"] for r in tables["host_gcc"] if r["cuda"] == major_minor(cuda)), None)
    if limit is None:
        known = ", ".join(r["cuda"] for r in tables["host_gcc"])
        raise ImpossibleRequest(f"gpuenv does not know which gcc CUDA {major_minor(cuda)}'s nvcc accepts",
                                hint=f"NVIDIA publishes nvcc on PyPI for CUDA {known}")
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
