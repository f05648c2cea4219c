"""The resolver's answer: one plan, with a reason for every choice, and its JSON contract (README)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve import companions, nvidia
from gpuenv.resolve.base import Base, cuda_base, given_base, slim_base
from gpuenv.resolve.builds import Build, CudaSource, with_extras
from gpuenv.resolve.resolved import Resolved
from gpuenv.resolve.request import Request, Target
from gpuenv.resolve.solver import Choice, carried_extras, solve
from gpuenv.resolve.toolchain import CUDA_HOME, Needs, Toolchain, Wanted, pip_compiler, toolchain
from gpuenv.resolve.versions import V, cc_to_sm, minor_key, python_range, sm_to_cc


@dataclass(frozen=True)
class Plan:
    python: str                      # "3.11"
    cuda: Optional[str]              # the environment's CUDA ("12.1"); None: CPU only
    cudnn: Optional[str]
    cuda_source: CudaSource          # where that CUDA comes from: the base's, the frameworks' wheels, or none
    base: Base
    min_driver: Optional[str]        # the lowest NVIDIA driver that runs it; None: no GPU build
    packages: tuple[str, ...]        # the framework step's requirements (companions included), filled for `python`
    pip_options: tuple[str, ...]     # the framework builds' pip options (their index)
    gpu_archs: tuple[str, ...]       # the GPU architectures every GPU build covers ("sm_80", ...)
    builds: tuple[Build, ...]        # the chosen builds, one per framework (and what the base holds)
    reasons: tuple[str, ...]         # why each choice, in order, as `gpuenv plan` says them
    target: Target
    user_packages: tuple[str, ...] = ()   # the spec's other pip packages, as written
    resolved: Optional[Resolved] = None   # the whole environment as the resolver answered (resolve/resolved.py);
                                          # None: no resolution was made or tried (resolve() alone, or resolve_whole
                                          # with no Source); one that could not be made: status "unresolved"
    toolchain: Optional[Toolchain] = None   # what compiles code in it, for which GPUs (resolve/toolchain.py);
                                            # None only for a Plan made by hand

    def to_dict(self) -> dict[str, Any]:
        """The `gpuenv plan --json` contract: keys may be added, these keep their meaning."""
        return {
            "python": self.python,
            "cuda": self.cuda,
            "cudnn": self.cudnn,
            "cuda_source": self.cuda_source,
            "base_image": self.base.image,
            "min_driver": self.min_driver,
            "packages": list(self.packages),
            "gpu_archs": list(self.gpu_archs),
            "reasons": list(self.reasons),
            "pip_options": list(self.pip_options),
            "user_packages": list(self.user_packages),
            "toolchain": self.toolchain.to_dict() if self.toolchain else None,
            "python_source": "base" if self.base.python_in_base == self.python else "install",
            "base": {
                "image": self.base.image, "os": self.base.os, "status": self.base.status,
                "build": self.base.build, "python": self.base.python_in_base,
                "cuda": self.base.cuda, "toolkit": self.base.toolkit, "cudnn": self.base.cudnn,
            },
            "frameworks": [
                {"family": b.family, "project": b.project, "version": b.version, "variant": b.variant,
                 "requirement": _fill(b.requirement, self.python), "cuda": b.cuda, "cudnn": b.cudnn,
                 "cuda_source": b.cuda_source, "python": list(b.python), "min_driver": b.min_driver(),
                 "gpu_archs": list(b.gpu_archs()), "gpu_archs_exact": b.archs is not None}
                for b in self.builds
            ],
            "target": {
                "origin": self.target.origin, "driver": self.target.driver,
                "max_cuda": nvidia.max_cuda(self.target.driver) if self.target.driver else None,
                "gpus": [{"name": g.name, "cc": g.cc} for g in self.target.gpus],
            },
            "resolved": self.resolved.to_dict() if self.resolved else None,
        }


def resolve(request: Request, target: Target) -> Plan:
    choice = solve(request, target)
    return assemble(choice, request, target)


def assemble(choice: Choice, request: Request, target: Target) -> Plan:
    builds, python = choice.builds, choice.python
    reasons = [_python_reason(builds, python, request)]
    gpu = [b for b in builds if b.cuda is not None]
    system = [b for b in gpu if b.cuda_source == "base-image"]
    source: CudaSource
    if request.base:
        base = given_base(request.base, builds, python, request.base_holds)
        cuda = base.cuda or max((b.cuda for b in gpu if b.cuda), key=minor_key, default=None)
        source = "base-image" if base.cuda else ("wheels" if gpu else "none")
        cudnn = base.cudnn or next((b.cudnn for b in gpu if b.cudnn), None)
        min_driver = (base.min_driver() if base.toolkit else None) or max(
            (b.min_driver() for b in gpu if b.min_driver()), key=V, default=None)
    elif system:
        base = cuda_base(tuple(builds), python, target, "devel" if request.toolkit == "devel" else "runtime")
        _check_base_driver(base, target)
        cuda, source = base.cuda, "base-image"
        cudnn = max((b.cudnn for b in system if b.cudnn), key=minor_key, default=None) or _short(base.cudnn)
        min_driver = base.min_driver()
        for b in gpu:
            if b.cuda_source == "wheels":
                reasons.append(f"{b.label} brings its own CUDA {b.cuda} in its wheels (PyTorch wheels always "
                               f"do); its variant was chosen to match the base's CUDA {base.cuda}")
                need = b.min_driver()
                if need and min_driver and V(need) > V(min_driver):
                    min_driver = need
    elif gpu:
        primary = max(gpu, key=lambda b: minor_key(b.cuda or "0"))
        if request.toolkit == "devel" and primary.cuda and not pip_compiler(primary.cuda):
            base = cuda_base(tuple(builds), python, target, "devel", compiler_for=primary.cuda)
        else:
            base = slim_base(python)
        cuda, source = primary.cuda, "wheels"
        cudnn = primary.cudnn
        min_driver = max((b.min_driver() for b in gpu if b.min_driver()), key=V, default=None)
    else:
        base = slim_base(python, cuda_from_wheels=False)
        cuda, cudnn, source, min_driver = None, None, "none", None
        reasons.append("CPU only: no CUDA, no driver needed")
    reasons += list(base.reasons)
    for b in builds:
        if b.family != "base":
            reasons.append(_build_reason(b, request, target))
        reasons += list(b.notes)
    if min_driver:
        reasons.append(_driver_reason(min_driver, source, target))
    archs = _common_archs(gpu)
    if gpu:
        reasons.append(_arch_reason(gpu, archs, target))
    packages, options = [], []
    for b in builds:
        if b.provided_by or b.family == "base":
            continue
        packages.append(with_extras(_fill(b.requirement, python), _carried(b, request)))
        packages += _wanted_companions(b, request)
        options += [o for o in b.pip_options if o not in options]
    for page in companions.pages(builds, request.packages):
        options += ["--find-links", page.url]
        reasons.append(f"{', '.join(page.packages)}: {page.family}'s prebuilt wheels for torch {page.torch} + "
                       f"{page.variant} are tried first ({page.url}); the source distribution is compiled "
                       "only when none fits")
    plan = Plan(python, cuda, cudnn, source, base, min_driver, tuple(packages), tuple(options), archs,
                tuple(builds), tuple(reasons), target, request.packages)
    return replace(plan, toolchain=toolchain(plan, request.toolkit))


def with_toolchain(plan: Plan, wanted: Wanted, needs: Needs = Needs(), why: Optional[str] = None) -> Plan:
    """The plan with its toolchain for what the environment holds (resolve/toolchain.py), and the reasons:
    why it has a compiler (or `why`, when gpuenv chose devel itself), which, for which GPUs; what is built
    from source with no knowledge of whether it compiles; what compiles when first used and has no nvcc."""
    chain = toolchain(plan, wanted, needs)
    if why is not None:
        chain = replace(chain, why=why)
    said: list[str] = []
    if chain.level == "devel":
        said.append(f"toolkit devel: {chain.why}")
        if chain.packages:
            said.append(f"the compiler: NVIDIA's pip packages of CUDA {chain.cuda} ({', '.join(chain.packages)}: "
                        f"the frameworks' own CUDA, shipped once), arranged as a CUDA_HOME at {CUDA_HOME}")
        elif chain.cuda is not None:
            said.append(f"the compiler: nvcc of {plan.base.image} (its CUDA {plan.base.cuda or chain.cuda})")
    if chain.compiler is not None:
        said.append(f"{'host' if chain.level == 'devel' else 'a C'} compiler: {chain.compiler.why}")
    if chain.archs is not None:
        said.append(f"GPU code for {chain.archs.torch} ({chain.archs.origin}): TORCH_CUDA_ARCH_LIST="
                    f"{chain.archs.torch}, CMAKE_CUDA_ARCHITECTURES={chain.archs.cmake}")
    if needs.unknown:
        said.append(f"{', '.join(needs.unknown)}: built from source here; if {'it compiles' if len(needs.unknown) == 1 else 'they compile'} "
                    "C, C++ or CUDA code, toolkit = \"devel\" gives the build a compiler")
    if chain.level == "runtime" and needs.first_use:
        said.append(f"{', '.join(needs.first_use)} compile{'s' if len(needs.first_use) == 1 else ''} CUDA code with "
                    "nvcc when first used, and toolkit = \"runtime\" has none: that use fails (toolkit = \"devel\")")
    return replace(plan, toolchain=chain, reasons=plan.reasons + tuple(said))


def _check_base_driver(base: Base, target: Target) -> None:
    """The base's CUDA release may need more than the oldest release of that CUDA (8.0.61 vs 8.0.44)."""
    need = base.min_driver()
    if target.driver and need and V(target.driver) < V(need):
        runs = nvidia.max_cuda(target.driver) or "none"
        raise ImpossibleRequest(
            f"driver {target.driver} runs CUDA <= {runs}; {base.image} holds CUDA {base.toolkit}, which needs "
            f"driver >= {need}, and no other image of CUDA {base.cuda} is known",
            code="driver-too-old", alternatives=[f"a driver >= {need}"], hint=f"options: a driver >= {need}")


def _short(cudnn: Optional[str]) -> Optional[str]:
    return ".".join(cudnn.split(".")[:2]) if cudnn else None


def _fill(requirement: str, python: str) -> str:
    """A wheel URL names the Python: cp36-cp36m (before 3.8 the ABI tag has an m; 2.7: mu)."""
    if "{py}" not in requirement:
        return requirement
    short = python.replace(".", "")
    abi = "mu" if python == "2.7" else ("m" if minor_key(python) < (3, 8) else "")
    return requirement.replace("{py}", short).replace("{abi}", abi)


def _carried(build: Build, request: Request) -> tuple[str, ...]:
    return tuple(e for w in request.wants if w.family == build.family for e in carried_extras(w, build))


def _wanted_companions(build: Build, request: Request) -> list[str]:
    wanted = {w.project for w in request.wants}
    return [c for c in build.companions if c.split("==", 1)[0] in wanted]


def _python_reason(every: Sequence[Build], python: str, request: Request) -> str:
    builds = [b for b in every if b.family != "base"]
    ranges = "; ".join(f"{b.label}: {python_range(b.python)}" for b in builds)
    asked = f"Python {request.python} was asked; " if request.python else ""
    if not builds:
        return f"Python {python}: {asked}no framework was asked, so the newest that has a known base image"
    return f"Python {python}: {asked}the newest that every framework has wheels for ({ranges})"


def _build_reason(b: Build, request: Request, target: Target) -> str:
    pinned = any(w.specifier.startswith("==") for w in request.wants if w.family == b.family)
    how = "as pinned" if pinned else "the newest version that fits the request and the target"
    if b.provided_by:
        return f"{b.family} {b.version}: held by the base image {b.provided_by}, not reinstalled"
    if b.cuda is None:
        return f"{b.label}: {how}, CPU build"
    where = "system CUDA from the base image" if b.cuda_source == "base-image" else "CUDA from its pip wheels"
    cudnn = f", cuDNN {b.cudnn}" if b.cudnn else ""
    return f"{b.label}: {how}; built for CUDA {b.cuda}{cudnn}; {where}; installed as {b.requirement.split(' @')[0]}"


def _driver_reason(min_driver: str, source: CudaSource, target: Target) -> str:
    how = ("the base image's CUDA release (CUDA release notes, Table 3)" if source == "base-image"
           else "CUDA minor-version compatibility for pip-wheel CUDA (from CUDA 11), else the release's own minimum")
    if target.driver:
        return f"needs driver >= {min_driver} ({how}); {target.origin} has {target.driver}"
    return f"needs driver >= {min_driver} ({how}); no driver limit was given, so none was applied"


def _common_archs(gpu: list[Build]) -> tuple[str, ...]:
    if not gpu:
        return ()
    sets = [set(b.gpu_archs()) for b in gpu]
    common = set.intersection(*sets)
    return tuple(sorted(common, key=lambda s: (not s.startswith("sm_"), sm_to_cc(s))))


def _arch_reason(gpu: list[Build], archs: tuple[str, ...], target: Target) -> str:
    derived = [b.label for b in gpu if b.archs is None]
    how = (f" ({', '.join(derived)}: the range its CUDA can build for; the exact list is not recorded)"
           if derived else "")
    span = f"{archs[0]}..{archs[-1]}" if archs else "none in common"
    if target.gpus:
        names = ", ".join(f"{g.name} ({cc_to_sm(g.cc)})" for g in target.gpus)
        return f"GPU architectures {span}{how}; covers {names}"
    return f"GPU architectures {span}{how}; no GPU was given, so none was checked"

