"""The resolver: chooses one build per framework so that they fit together and on the target, or
explains exactly why none fits and what would (`ImpossibleRequest` with a code and alternatives).

Every constraint is one filter with a name; the first filter that leaves a framework with nothing
is the reason given, and the alternatives are found by lifting that one constraint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

from packaging.version import InvalidVersion, Version

import gpuenv.resolve as resolving    # the face: `variants` imports from here, so it is reached at call time
from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve import nvidia
from gpuenv.kb import load_table
from gpuenv.resolve.builds import ALL_PYTHONS, Build, builds_for, extra_name, extras_of, sdist_only, selecting_extras
from gpuenv.resolve.provided import Provided, recognise
from gpuenv.resolve.request import Request, Target, Want
from gpuenv.resolve.versions import V, cc_to_sm, major, major_minor, matches, minor_key, python_range, sm_to_cc


@dataclass(frozen=True)
class Group:
    """The wants of one framework family (torch with torchvision), solved as one build."""

    family: str
    wants: tuple[Want, ...]

    @property
    def primary(self) -> Want:
        return next((w for w in self.wants if w.project not in COMPANION_PROJECTS), self.wants[0])

    @property
    def text(self) -> str:
        return ", ".join(w.text for w in self.wants)


COMPANION_PROJECTS = {"torchvision", "torchaudio", "jaxlib"}


def groups_of(wants: tuple[Want, ...]) -> list[Group]:
    order: list[str] = []
    by_family: dict[str, list[Want]] = {}
    for w in wants:
        if w.family not in by_family:
            order.append(w.family)
        by_family.setdefault(w.family, []).append(w)
    return [Group(f, tuple(by_family[f])) for f in order]


# --- filters: (code, test) ------------------------------------------------------------------------------

def _version_ok(group: Group) -> Callable[[Build], bool]:
    """The public versions asked (a local version, +cu118, is the variant stage's)."""
    def ok(build: Build) -> bool:
        for w in group.wants:
            version = _version_of(build, w.project)
            if version is None or not matches(_public(w.specifier), version):
                return False
        return True
    return ok


def _version_of(build: Build, project: str) -> Optional[str]:
    """The version of `project` a build installs, with its local version ("0.19.1+cu118")."""
    if project in ("torchvision", "torchaudio"):
        found = next((c for c in build.companions if c.startswith(project + "==")), None)
        return found.split("==", 1)[1] if found else None
    return build.full_version


def _public(specifier: str) -> str:
    """A specifier without its local versions: "==2.4.1+cu118" -> "==2.4.1"."""
    if "+" not in specifier:
        return specifier
    parts = [p.strip() for p in specifier.split(",")]
    kept = [p.split("+", 1)[0] for p in parts if "+" not in p or not p.startswith("!=")]  # "!=V+cu118" is the variant's
    return ",".join(kept)


def _variant_ok(group: Group) -> Callable[[Build], bool]:
    """Exactly what was written: the project (tensorflow-gpu, mxnet-cu90mkl; the family's own name is gpuenv's
    shorthand for the build that carries its GPU code), the extra (jax[cuda12]), the local version (+cu118)."""
    def ok(build: Build) -> bool:
        return all(variant_misses(w, build) is None for w in group.wants)
    return ok


def variant_misses(w: Want, build: Build) -> Optional[str]:
    """What of a requirement a build does not match: "project", "extra", "local", or None."""
    if w.project in COMPANION_PROJECTS:
        version = _version_of(build, w.project)
        return None if version is not None and matches(w.specifier, version) else "local"
    if w.project != w.family and build.project != w.project:
        return "project"
    if w.extras and not _extras_fit(w, build):
        return "extra"
    return None if matches(w.specifier, build.full_version) else "local"


def _extras_fit(w: Want, build: Build) -> bool:
    """The build's own extra is the one asked among those that pick a build; the other extras asked are
    carried along (plan.carried_extras) when the release declares them (or the kb does not know: the
    resolver then checks them against the release's metadata)."""
    wanted = {extra_name(e) for e in w.extras}
    picking = wanted & selecting_extras(w.family)
    if picking != ({extra_name(build.extra)} if build.extra else set()):
        return False
    plain = wanted - picking
    declared = extras_of(build.project, build.version)
    return declared is None or plain <= {extra_name(e) for e in declared}


def carried_extras(w: Want, build: Build) -> tuple[str, ...]:
    """The extras asked that do not pick the build: they go into its requirement as written."""
    if w.project in COMPANION_PROJECTS:
        return ()
    return tuple(sorted(e for e in w.extras if extra_name(e) not in selecting_extras(w.family)))


def python_ok(wanted: Optional[str]) -> Callable[[Build], bool]:
    return lambda build: bool(_pythons(build, wanted))


def _pythons(build: Build, wanted: Optional[str]) -> tuple[str, ...]:
    if not wanted:
        return build.python
    return tuple(p for p in build.python if p == wanted or p.startswith(wanted + "."))


def cuda_ok(wanted: Optional[str]) -> Callable[[Build], bool]:
    def ok(build: Build) -> bool:
        if not wanted or build.cuda is None:
            return True
        if "." not in build.cuda and major(build.cuda) >= 11:  # a major-only build (JAX "12")
            return major(build.cuda) == major(wanted)
        return build.cuda_mm == major_minor(wanted)
    return ok


def arch_ok(target: Target) -> Callable[[Build], bool]:
    def ok(build: Build) -> bool:
        if build.cuda is None:
            return True
        return all(nvidia.covers(build.gpu_archs(), gpu.cc) for gpu in target.gpus)
    return ok


def driver_ok(target: Target) -> Callable[[Build], bool]:
    def ok(build: Build) -> bool:
        need = build.min_driver()
        return target.driver is None or need is None or nvidia.driver_runs(target.driver, need)
    return ok


@dataclass
class Stage:
    code: str
    test: Callable[[Build], bool]


def stages(group: Group, request: Request, target: Target) -> list[Stage]:
    return [
        Stage("no-such-version", _version_ok(group)),
        Stage("no-such-variant", _variant_ok(group)),
        Stage("python-conflict", python_ok(request.python)),
        Stage("conflict", cuda_ok(request.cuda)),
        Stage("gpu-arch-unsupported", arch_ok(target)),
        Stage("driver-too-old", driver_ok(target)),
    ]


# --- solving -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    builds: tuple[Build, ...]
    python: str


def solve(request: Request, target: Target) -> Choice:
    groups = groups_of(request.wants)
    fixed = _from_base(request, groups)
    options = []
    for group in groups:
        held = next((b for b in fixed if b.family == group.family), None)
        if held is not None:
            options.append([held])
            continue
        every = builds_for(group.primary, request)
        left = every
        for stage in stages(group, request, target):
            kept = [b for b in left if stage.test(b)]
            if not kept:
                raise explain(stage.code, group, left, every, request, target)
            left = kept
        options.append(left)
    alone = _cuda_alone(request, groups)
    base_only = [b for b in fixed if b.family == "base"] or alone
    choice = _search(options, request.python, tuple(base_only))
    if choice is None:
        raise _conflict(groups, options, request)
    return Choice(choice.builds + tuple(alone), choice.python)


def _cuda_alone(request: Request, groups: list[Group]) -> list[Build]:
    """`gpu.cuda` with no framework and no `base`: an environment of CUDA alone, the system CUDA of an
    nvidia/cuda runtime image (plan.assemble picks the tag; no pip package is installed for it)."""
    if groups or request.base or request.cpu or not request.cuda or request.cuda == "auto":
        return []
    return [Build("base", "", "", "", ALL_PYTHONS, request.cuda, None, "base-image",
                  notes=(f"CUDA {request.cuda} alone (no framework asked): the system CUDA of an nvidia/cuda "
                         "runtime image, for your own CUDA code (ctypes, CuPy, Numba, a compiled program)",))]


def _from_base(request: Request, groups: list[Group]) -> list[Build]:
    """What the spec's base image already holds: its frameworks (not reinstalled) or its system CUDA,
    found inside it when it was looked at (request.base_holds), else read from its name."""
    if not request.base:
        return []
    found = request.base_holds or tuple(x for x in (recognise(request.base),) if x is not None)
    return [_held_build(held, groups) for held in found]


def _held_build(held: Provided, groups: list[Group]) -> Build:
    pythons = (held.python,) if held.python else ALL_PYTHONS
    if held.family is None:
        return Build("base", "", "", "", pythons, held.cuda, held.cudnn, "base-image", provided_by=held.image)
    group = next((g for g in groups if g.family == held.family), None)
    if group is not None and held.version is not None:
        for w in group.wants:
            if w.project not in COMPANION_PROJECTS and not matches(w.specifier, held.version):
                raise ImpossibleRequest(
                    f"the base image {held.image} holds {held.family} {held.version}; the request asks {w.text}",
                    code="conflict", alternatives=[f"{w.project}=={held.version}", "another `base`"],
                    hint=f"options: {w.project}=={held.version}; or a base image without {held.family}")
    return Build(held.family, held.family, held.version or "(as in the image)", "", pythons, held.cuda, held.cudnn,
                 "base-image", provided_by=held.image, notes=(f"{held.family} comes from {held.what} "
                                                             f"{held.image}: nothing is reinstalled",))


def _search(options: list[list[Build]], wanted: Optional[str], fixed: tuple[Build, ...] = ()) -> Optional[Choice]:
    """Depth-first over the groups in order, each group's builds best first; the first fit wins."""
    def walk(index: int, chosen: tuple[Build, ...], pythons: set[str]) -> Optional[Choice]:
        if index == len(options):
            return Choice(chosen, _choose_python(pythons))
        for build in options[index]:
            common = pythons & set(_pythons(build, wanted))
            if common and all(fits(build, other) for other in chosen + fixed):
                found = walk(index + 1, chosen + (build,), common)
                if found:
                    return found
        return None

    pythons = set(_all_pythons(options)) if options else _wanted_pythons(wanted)   # no framework: any Python
    for build in fixed:
        pythons &= set(build.python)
    return walk(0, (), pythons)


def _wanted_pythons(wanted: Optional[str]) -> set[str]:
    return {p for p in ALL_PYTHONS if not wanted or p == wanted or p.startswith(wanted + ".")}


def _choose_python(pythons: set[str]) -> str:
    """The newest common Python that a known base image has (a Python newer than every known base,
    3.15 today, is taken only when nothing else fits)."""
    known = {row["python"] for row in load_table("bases")["python_image"]}
    return max(pythons & known or pythons, key=minor_key)


def _all_pythons(options: list[list[Build]]) -> set[str]:
    return {p for builds in options for b in builds for p in b.python}


def fits(a: Build, b: Build) -> bool:
    """Can two frameworks share one environment's CUDA?"""
    if a.cuda is None or b.cuda is None:
        return True
    if a.cuda_source == "base-image" and b.cuda_source == "base-image":
        return _same_system_cuda(a.cuda, b.cuda) and _same_major(a.cudnn, b.cudnn)
    if a.cuda_source == "wheels" and b.cuda_source == "wheels":
        return major(a.cuda) == major(b.cuda) and _same_major(a.cudnn, b.cudnn)
    return _same_system_cuda(a.cuda, b.cuda)


def _same_system_cuda(a: str, b: str) -> bool:
    """System CUDA is one release: before 11 the minor must match; from 11 one major serves (the newest minor)."""
    if major(a) >= 11 and major(b) >= 11:
        return major(a) == major(b)
    return major_minor(a) == major_minor(b)


def _same_major(a: Optional[str], b: Optional[str]) -> bool:
    return a is None or b is None or a.split(".")[0] == b.split(".")[0]


# --- explaining ---------------------------------------------------------------------------------------------

def explain(code: str, group: Group, left: list[Build], every: list[Build], request: Request,
            target: Target) -> ImpossibleRequest:
    asked = group.text
    if code == "no-such-version":
        return _no_such_version(group, every, request)
    if code == "no-such-variant":
        return resolving.variants.no_such_variant(group, left, every, request)
    if code == "python-conflict":
        best = left[0]
        pythons = sorted({p for b in left for p in b.python}, key=minor_key)
        fix = [f'python = "{pythons[-1]}"'] if pythons else []
        other = _nearest_build(every, group.primary, python_ok(request.python), arch_ok(target), driver_ok(target))
        if other:
            fix.append(f"{_pin(other)} (Python {python_range(_pythons(other, request.python))})")
        return ImpossibleRequest(
            f"{asked}: builds support Python {python_range(pythons)}; Python {request.python} was asked "
            f"(e.g. {best.label} supports {python_range(best.python)})",
            code=code, alternatives=fix, hint=options_hint(fix))
    if code == "conflict":
        cudas = sorted({b.cuda for b in left if b.cuda}, key=minor_key)
        fix = [f'gpu.cuda = "{c}"' for c in cudas[-3:]]
        return ImpossibleRequest(
            f"{asked}: no build for CUDA {request.cuda}; builds exist for CUDA {', '.join(cudas)}",
            code=code, alternatives=fix, hint=options_hint(fix))
    broader = _broader(group.primary, request)
    if code == "gpu-arch-unsupported":
        return _arch(group, left, broader, request, target)
    return _driver(group, left, broader, request, target)


def _broader(w: Want, request: Request) -> list[Build]:
    """Every build of the family, not only the variant asked for (mxnet-cu90mkl -> every mxnet-cuXY)."""
    if w.family == "mxnet" and w.project != "mxnet":
        return builds_for(replace(w, project="mxnet", specifier=""), request)
    return builds_for(w, request)


def _no_such_version(group: Group, every: list[Build], request: Request) -> ImpossibleRequest:
    w = next((w for w in group.wants if not any(_version_ok(Group(group.family, (w,)))(b) for b in every)), None)
    if w is None:  # each matches some build, not one together (torchvision==0.19.1 with torch==2.5.1)
        return _companions_apart(group, every)
    versions = sorted({str(V(v).public) for b in every if (v := _version_of(b, w.project))}, key=V)
    near = _nearest(w, versions)
    gpu = "" if request.cpu or not any(b.cuda for b in every) else " with a Linux GPU build"
    if not versions:
        message = f"{w.text}: gpuenv knows no version of {w.project}{gpu}"
        return ImpossibleRequest(message, code="no-such-version",
                                 hint="run `gpuenv kb refresh` to read the package index again")
    fix = [f"{w.project}=={v}" for v in near]
    return ImpossibleRequest(
        f"{w.text}: no version of {w.project}{gpu} matches '{w.specifier}' "
        f"(known: {versions[0]} ... {versions[-1]}){_sdist_note(w)}",
        code="no-such-version", alternatives=fix, hint=options_hint(fix))


def _sdist_note(w: Want) -> str:
    """When the version asked exists only as an sdist (jax 0.4.1), say so: gpuenv plans releases with wheels."""
    asked = _asked_version(w)
    if asked is None or not w.specifier.startswith("==") or not sdist_only(w.project, str(asked)):
        return ""
    return f"; {w.project} {asked} is published as an sdist only, with no wheel: gpuenv plans releases with wheels"


def _companions_apart(group: Group, every: list[Build]) -> ImpossibleRequest:
    """Requirements of one family that no single release satisfies together: name what each comes with."""
    lines, fix = [], []
    for w in group.wants:
        build = next((b for b in every if _version_ok(Group(group.family, (w,)))(b)), None)
        if build is not None:
            pins = [f"{build.project}=={build.version}", *build.companions]
            lines.append(f"{w.text} comes with {', '.join(p for p in pins if not p.startswith(w.project + '=='))}")
            fix.append(" ".join(pins))
    return ImpossibleRequest(f"{group.text}: no {group.family} release has them together; " + "; ".join(lines),
                             code="conflict", alternatives=fix, hint=options_hint(fix))


def _asked_version(w: Want) -> Optional[Version]:
    """The version a requirement names first ("==1.2.9" -> 1.2.9, ">=2,<3" -> 2), if any."""
    try:
        return V(w.specifier.lstrip("=<>!~ ").split(",")[0])
    except InvalidVersion:
        return None


def _nearest(w: Want, versions: list[str]) -> list[str]:
    target = _asked_version(w)
    if target is None:
        return versions[-2:][::-1]
    below = [v for v in versions if V(v) < target][-1:]
    above = [v for v in versions if V(v) > target][:1]
    return below + above if (below or above) else versions[-1:]


def _driver(group: Group, left: list[Build], every: list[Build], request: Request,
            target: Target) -> ImpossibleRequest:
    driver = target.driver          # set: only a driver limit fails the driver stage (driver_ok)
    runs = (nvidia.max_cuda(driver) if driver else None) or "none"
    cheapest = min(left, key=lambda b: V(b.min_driver() or "0"))
    need = cheapest.min_driver()
    asked = group.text
    message = (f"driver {driver} runs CUDA <= {runs}; {asked} needs CUDA {_cuda_text(cheapest)} "
               f"(driver >= {need})")
    fix = []
    other = _first(every, python_ok(request.python), cuda_ok(request.cuda), arch_ok(target), driver_ok(target))
    if other:
        fix.append(f"{_alt_name(other, group)}<={_series(other.version)} (CUDA {_cuda_text(other)})")
    fix.append(f"a driver >= {need}")
    return ImpossibleRequest(message, code="driver-too-old", alternatives=fix, hint=options_hint(fix),
                             causes=[f"{target.origin}: driver {driver}"])


def _arch(group: Group, left: list[Build], every: list[Build], request: Request,
          target: Target) -> ImpossibleRequest:
    gpus = [g for g in target.gpus if not all(nvidia.covers(b.gpu_archs(), g.cc) for b in left)]
    gpu = gpus[0] if gpus else target.gpus[0]
    best = max(left, key=lambda b: max((sm_to_cc(a) for a in b.gpu_archs()), default=(0, 0)))
    archs = best.gpu_archs()
    span = f"{archs[0]}..{archs[-1]}" if archs else "no GPU architectures"
    sm = cc_to_sm(gpu.cc)
    message = (f"{gpu.name} is {sm} (compute capability {gpu.cc}); {best.label} has kernels for {span}"
               f"{'' if best.archs is not None else ' (the range CUDA ' + _cuda_text(best) + ' can build for)'}")
    fix = []
    covering = [b for b in every if python_ok(request.python)(b) and arch_ok(target)(b)]
    runnable = [b for b in covering if driver_ok(target)(b)]
    if runnable:
        oldest = min(runnable, key=lambda b: V(b.version))
        fix.append(f"{_alt_name(oldest, group)}>={oldest.version} (CUDA {_cuda_text(oldest)})")
    elif covering:
        oldest = min(covering, key=lambda b: V(b.version))
        fix.append(f"{_alt_name(oldest, group)}>={oldest.version} with a driver >= {oldest.min_driver()}")
    rng = nvidia.cuda_range_of(gpu.cc)
    if rng and rng[1] and not fix:
        fix.append(f"a GPU newer than {gpu.name} is needed for CUDA > {rng[1]}")
    return ImpossibleRequest(message, code="gpu-arch-unsupported", alternatives=fix, hint=options_hint(fix))


def _conflict(groups: list[Group], options: list[list[Build]], request: Request) -> ImpossibleRequest:
    a, b = options[0][0], options[1][0] if len(options) > 1 else options[0][0]
    lines = []
    fix = []
    for i in range(len(groups)):
        fixed = options[i][0]
        for j, other_group in enumerate(groups):
            if i == j:
                continue
            others = builds_for(other_group.primary, request)
            fit = next((o for o in others if fits(fixed, o) and set(fixed.python) & set(o.python)
                        and python_ok(request.python)(o)), None)
            if fit:
                fix.append(f"{other_group.primary.project}=={fit.version} (CUDA {_cuda_text(fit)}) "
                           f"with {fixed.label}")
    pythons_a = set(a.python)
    if not any(set(x.python) & pythons_a for x in options[-1]):
        lines.append(f"{groups[0].text} supports Python {python_range(a.python)}; "
                     f"{groups[-1].text} supports Python {python_range({p for x in options[-1] for p in x.python})}")
        code = "python-conflict"
    elif a.cuda and b.cuda and major(a.cuda) == major(b.cuda) and not _same_major(a.cudnn, b.cudnn):
        code = "conflict"
        lines.append(f"{a.label} needs cuDNN {a.cudnn}; {b.label} needs cuDNN {b.cudnn}; both come from the "
                     f"same nvidia-cudnn-cu{major(a.cuda)} wheel, so they must share one cuDNN major")
    else:
        code = "conflict"
        lines.append(f"{a.label} needs CUDA {_cuda_text(a)} ({_source(a)}); "
                     f"{b.label} needs CUDA {_cuda_text(b)} ({_source(b)}); "
                     f"frameworks in one environment must share one CUDA")
    return ImpossibleRequest("; ".join(lines), code=code, alternatives=fix[:4], hint=options_hint(fix[:4]))


def _source(build: Build) -> str:
    return "system CUDA in the base image" if build.cuda_source == "base-image" else "CUDA from its pip wheels"


def _first(builds: list[Build], *tests: Callable[[Build], bool]) -> Optional[Build]:
    return next((b for b in builds if all(t(b) for t in tests)), None)


def _nearest_build(builds: list[Build], w: Want, *tests: Callable[[Build], bool]) -> Optional[Build]:
    """The passing build whose version is nearest the one asked for (the oldest newer one first)."""
    passing = [b for b in builds if all(t(b) for t in tests)]
    if not passing:
        return None
    asked = _asked_version(w)
    if asked is None:
        return passing[0]
    newer = [b for b in passing if V(b.version) >= asked]
    return min(newer, key=lambda b: V(b.version)) if newer else max(passing, key=lambda b: V(b.version))


def _alt_name(build: Build, group: Group) -> str:
    """Name an alternative as the user named the framework; an MXNet variant by its own project, a build chosen
    by an extra with its extra (jax[cuda11_pip]: "jax<=0.4.x" would not say which build)."""
    if group.family == "mxnet":
        return build.project
    return f"{group.primary.project}[{build.extra}]" if build.extra else group.primary.project


def _series(version: str) -> str:
    parts = version.split(".")
    return f"{parts[0]}.{parts[1]}.x" if len(parts) > 1 else version


def _cuda_text(build: Build) -> str:
    cuda = build.cuda or "none"
    return major_minor(cuda) if "." in cuda or (cuda.isdigit() and int(cuda) < 11) else cuda


def _pin(build: Build) -> str:
    return f"{build.project}=={build.version}"


def options_hint(fix: list[str]) -> Optional[str]:
    return ("options: " + "; or ".join(fix)) if fix else None
