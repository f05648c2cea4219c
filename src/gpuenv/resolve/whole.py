"""One resolution of the whole environment: the knowledge base's first choice, checked by the resolver;
when it does not resolve, the next candidates the knowledge base allows; else exactly why not.

    first     solver.solve + plan.assemble: the newest framework build that fits the target
    check     packages.compile_steps: every distribution of every pip step, for that Python
    search    on a conflict, per Python the knowledge base allows (the planned one first): the resolver
              picks the framework versions the other requirements allow (the request as written), the
              knowledge base plans those exact versions for the target, the resolver checks that plan
    explain   nothing fits: uv's own explanation (both requirements, the shared dependency, the pins),
              with the alternatives that do resolve (each pin lifted in turn)

The request is never rewritten: the search only narrows versions inside what was asked, and says which
requirement decided ("xformers==0.0.28.post1 depends on torch==2.4.1").
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional, Sequence
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import gpuenv.resolve as resolving    # the face: `published` (and kb.index) loads only for a message
from gpuenv.errors import BadInput, ImpossibleRequest
from gpuenv.kb.mirrors import mirrored_wheel_url
from gpuenv.resolve import companions
from gpuenv.resolve.builds import ALL_PYTHONS, builds_for
from gpuenv.resolve.packages import (NO_WHEEL, MissingExtra, NoMetadata, NoSolution, ResolverError, Source,
                                     Unreachable, compile_steps, resolvable_python)
from gpuenv.resolve.plan import Plan, resolve, with_toolchain
from gpuenv.resolve.request import Request, Target, Want
from gpuenv.resolve.resolved import Resolved, step_layout, unresolved, without_slow_tools
from gpuenv.resolve.solver import groups_of
from gpuenv.resolve.toolchain import Needs, compiled_row, level, needs_of
from gpuenv.resolve.versions import minor_key, python_range
from gpuenv.resolve.wheel_cuda import checked

MAX_PYTHONS = 6


def resolve_whole(request: Request, target: Target, tools: Sequence[str] = (),
                  source: Optional[Source] = None) -> Plan:
    """The plan of the whole environment (`_whole`), with its toolchain decided from what the resolution
    holds (resolve/toolchain.py): toolkit "auto" becomes devel, planned and resolved again with the
    compiler's own step (and, on a system CUDA, the nvidia/cuda devel base), when a package is compiled
    from source here or with nvcc when first used; "runtime" with a package compiled from source here is
    refused before anything is built. `source` None: the knowledge base's plan alone (its toolchain for
    the spec's level)."""
    plan = _whole(request, target, tools, source)
    if source is None:
        return plan
    needs = _needs(plan)
    if request.toolkit == "runtime" and needs.build:
        raise _needs_compiler(plan, needs)
    forced = None
    if request.toolkit == "auto" and (needs.build or needs.first_use) and _level(plan) == "runtime":
        plan = _whole(replace(request, toolkit="devel"), target, tools, source)
        needs = _needs(plan)
        forced = level("auto", needs)[1] if (needs.build or needs.first_use) else "as planned before the compiler"
    plan = with_toolchain(plan, "devel" if forced else request.toolkit, needs, forced)
    return replace(plan, reasons=plan.reasons + tuple(_companion_outcomes(plan, source)))


def _companion_outcomes(plan: Plan, source: Source) -> list[str]:
    """For each package of the ecosystem's wheel pages: its prebuilt wheel, or why it is compiled."""
    resolved = plan.resolved
    if resolved is None or resolved.status != "resolved":
        return []
    said: list[str] = []
    for page in companions.pages(plan.builds, plan.user_packages):
        said += companions.outcome(page, resolved, mirrored_wheel_url(page.url, source.pytorch_wheels,
                                                                      source.wheel_mirrors))
    tried = companions.releases(plan.builds, plan.user_packages, plan.python)
    for release in tried:
        said += companions.release_outcome(release, resolved)
    for name in companions.release_families():
        if name in resolved.built and not any(r.package == name for r in tried):
            said.append(f"{name} {resolved.version_of(name)}: compiled here from its source distribution: "
                        f"{companions.no_release(name, plan.builds, plan.python)}")
    return said


def _level(plan: Plan) -> str:
    return plan.toolchain.level if plan.toolchain else "runtime"


def _needs(plan: Plan) -> Needs:
    resolved = plan.resolved
    if resolved is None or resolved.status != "resolved":
        return Needs()
    return needs_of([(p.name, p.version) for p in resolved.pins], resolved.built)


def _needs_compiler(plan: Plan, needs: Needs) -> ImpossibleRequest:
    resolved = plan.resolved
    versions = {p.name: p.version for p in resolved.pins} if resolved else {}
    named = ", ".join(f"{n} {versions.get(n, '')}".strip() for n in needs.build)
    return ImpossibleRequest(
        f"{named} {'has' if len(needs.build) == 1 else 'have'} no wheel for Python {plan.python} on Linux x86_64 "
        f"and would be compiled from source in the image, but toolkit = \"runtime\" gives it no compiler",
        code="conflict", alternatives=['toolkit = "devel"', 'toolkit = "auto"'],
        hint='toolkit = "devel" (or "auto") in [gpu] of gpuenv.toml: nvcc of the environment\'s CUDA, its headers '
             'and a gcc it accepts; or a version of it that publishes a wheel for this Python')


def _whole(request: Request, target: Target, tools: Sequence[str] = (),
           source: Optional[Source] = None) -> Plan:
    """The plan with `resolved` set: resolved, or unresolved with the reason (then the kb's plan stands).
    `source`: where the resolver reads packages (packages.source_for: the spec's network policy). None: no
    resolution at all, the knowledge base's plan as resolve() gives it (`resolved` None, no index asked);
    offline is Source(offline=True), which says so (unresolved)."""
    first = resolve(request, target)
    if source is None:
        return first
    for text in first.user_packages:
        _check_url(text)
    skip = _not_resolvable(first, source)
    if skip:
        return _unresolved(first, skip)
    try:
        return _with(first, _check(first, tools, source))
    except (Unreachable, ResolverError) as exc:
        chosen = _releases(first, source)
        if chosen:                      # a release's asset list (GitHub) did not answer: compiled instead
            return _release_failed(request, target, tools, source, chosen, str(exc), unreachable=True)
        if isinstance(exc, ResolverError):
            raise
        return _unresolved(first, f"no package index answered ({exc})")
    except MissingExtra as exc:
        raise _missing_extra(exc, source) from None
    except NoMetadata as exc:
        return _with_static_metadata(request, target, tools, source, first, exc)
    except NoSolution as failure:
        failed = [r for r in _releases(first, source) if _named(r.package, failure.cause)]
        if failed:                      # the release lists no such asset (a failed upstream job): compiled
            return _release_failed(request, target, tools, source, failed, failure.cause)
        absent = _NOT_ON_INDEX.search(failure.cause)
        if absent:                      # no version at all: no other Python or framework makes one appear
            raise _not_on_index(canonicalize_name(absent.group(1)), source) from None
        missing = _missing_version(failure)
        if missing and _asked_exactly(missing, request):   # the user's own pin: no other choice makes it exist
            raise _no_such_version(missing, failure, source) from None
        found = _search(request, target, tools, source, first, failure)
        if found is not None:
            return found
        sdists = _sdist_only(failure, first, source)
        if sdists:
            built = replace(source, sdists=source.sdists + sdists,
                            static_metadata=source.static_metadata + _torch_builds(failure, sdists, source))
            return _noted(_whole(request, target, tools, built), sdists)
        raise _impossible(failure, request, target, first, tools, source) from None


def _releases(plan: Plan, source: Source, python: Optional[str] = None) -> tuple[companions.Release, ...]:
    """The release wheels the resolution pins (companions.releases), but none of a package to compile."""
    return companions.releases(plan.builds, plan.user_packages, python or plan.python, source.sdists)


def _named(package: str, cause: str) -> bool:
    """Whether uv's explanation names the distribution (`flash-attn` or `flash_attn`, any case)."""
    spelled = re.escape(package).replace("\\-", "[-_.]")
    return re.search(rf"(?<![A-Za-z0-9_.-]){spelled}(?![A-Za-z0-9_-])", cause, re.IGNORECASE) is not None


def _release_failed(request: Request, target: Target, tools: Sequence[str], source: Source,
                    failed: Sequence[companions.Release], why: str, unreachable: bool = False) -> Plan:
    """The plan again with those packages compiled from their source distribution, saying why their
    release wheel was not taken."""
    plan = _whole(request, target, tools, replace(source, sdists=source.sdists + tuple(r.package for r in failed)))
    fix = " (where GitHub is out of reach, a copy of https://github.com in network.wheel_mirrors serves it)" \
        if unreachable else ""
    said = tuple(f"{r.package} {r.version}: {r.family}'s release wheel for {r.fits} ({r.asset}) could not be had "
                 f"({why.strip()[:300]}){fix}; {r.package} is compiled here from its source distribution instead"
                 for r in failed)
    resolved = replace(plan.resolved, decided=said + plan.resolved.decided) if plan.resolved else None
    return replace(plan, resolved=resolved, reasons=said + plan.reasons)


_NO_WHEEL_AT = re.compile(r"([A-Za-z0-9._-]+)==(\S+) has no usable wheels")


def _torch_builds(failure: NoSolution, sdists: tuple[str, ...],
                  source: Source) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Static metadata, from their PKG-INFO, for the new source builds whose setup.py imports torch (the
    compiled table's build_isolation = false): the resolver could learn their dependencies only by
    building them, which fails without torch, after fetching their build tools for nothing."""
    versions: dict[str, str] = {canonicalize_name(m.group(1)): m.group(2) for m in _NO_WHEEL_AT.finditer(failure.cause)}
    found = []
    for name in sdists:
        row = compiled_row(name, versions.get(name))
        if row is None or row["build_isolation"] or name not in versions:
            continue
        requires = resolving.published.sdist_requires(name, versions[name], source)
        if requires is not None:
            found.append((name, versions[name], requires))
    return tuple(found)


def _with_static_metadata(request: Request, target: Target, tools: Sequence[str], source: Source, first: Plan,
                          failed: NoMetadata) -> Plan:
    """A source distribution the image builds (no wheel fits) whose dependencies uv could learn only by
    building it, which failed (its setup.py imports torch, which an isolated build lacks: torch-scatter,
    the PyG extensions): its Requires-Dist is read from its PKG-INFO and handed to the resolver, once. Any
    other build failure, or one that cannot be read: unresolved, saying why (the kb's plan stands)."""
    known = {n for n, _, _ in source.static_metadata}
    if failed.name in source.sdists and failed.name not in known:
        requires = resolving.published.sdist_requires(failed.name, failed.version, source)
        if requires is not None:
            entry = (failed.name, failed.version, requires)
            return _whole(request, target, tools, replace(source, static_metadata=source.static_metadata + (entry,)))
    return _unresolved(first, f"{failed.name} {failed.version} has no wheel here, and its source distribution "
                              f"did not build to tell its dependencies ({failed.cause})")


def _sdist_only(failure: NoSolution, first: Plan, source: Source) -> tuple[str, ...]:
    """Packages the failure names as having no wheel for the target, when no Python and no framework
    version avoids them: then they are built in the image from their source distribution (tensorflow-gpu
    1.2.1 pins html5lib 0.9999999, pure Python, published only as an sdist). Never a framework."""
    frameworks = {canonicalize_name(b.project) for b in first.builds}
    names = {canonicalize_name(m) for m in NO_WHEEL.findall(failure.cause)} - frameworks - set(source.sdists)
    return tuple(sorted(names))


def _noted(plan: Plan, sdists: tuple[str, ...]) -> Plan:
    said = (f"{', '.join(sdists)}: no wheel for this Python and platform; built in the image from the source "
            "distribution")
    resolved = replace(plan.resolved, decided=plan.resolved.decided + (said,)) if plan.resolved else None
    return replace(plan, resolved=resolved, reasons=(said,) + plan.reasons)


def _not_resolvable(plan: Plan, source: Source) -> str:
    if source.offline:
        return "offline (GPUENV_OFFLINE or --offline): the packages were not resolved"
    if not resolvable_python(plan.python):
        return f"the resolver resolves for Python >= 3.6, not {plan.python}: pip resolves them in the build"
    if any(b.provided_by for b in plan.builds):
        return "the base image holds the framework: pip resolves the packages against it in the build"
    if any(" @ " in p for p in plan.packages):
        return "the framework comes as a wheel URL: pip resolves the packages in the build"
    urls = [p for p in plan.user_packages if (r := _requirement(p)) is not None and r.url]
    if urls:
        return f"{urls[0]} is a direct URL: pip resolves the packages in the build"
    return ""


def _check_url(text: str) -> None:
    """A package by URL is fetched in the build, where only http(s) reaches anything: a local path is the
    host's, not the build's (and the resolver would read it on the host)."""
    req = _requirement(text)
    if req is not None and req.url and urlsplit(req.url).scheme not in ("http", "https"):
        raise BadInput(f"packages: {text!r} names a {urlsplit(req.url).scheme or 'local'} URL, which the image "
                       "build cannot reach", "give an https URL, or the package by name and version")


def _check(plan: Plan, tools: Sequence[str], source: Source, python: Optional[str] = None) -> Resolved:
    """The plan's steps resolved; a release wheel (flash-attn's) pinned exactly against its asset list."""
    steps = step_layout(plan.packages, tuple(tools), plan.user_packages, _toolchain(plan))
    chosen = _releases(plan, source, python)
    options = tuple(plan.pip_options) + tuple(w for r in chosen for w in ("--find-links", r.page))
    return compile_steps(steps, options, python or plan.python, source, tuple(r.pin for r in chosen))


def _toolchain(plan: Plan) -> tuple[str, ...]:
    return plan.toolchain.pip if plan.toolchain else ()


def _with(plan: Plan, resolved: Resolved, decided: tuple[str, ...] = ()) -> Plan:
    resolved = without_slow_tools(replace(resolved, decided=decided))
    count = len(resolved.pins)
    said = f"resolved with uv: {count} distributions for Python {resolved.python} on Linux x86_64, every pin " \
           "and hash in the lock"
    return checked(replace(plan, resolved=resolved, reasons=decided + plan.reasons + (said,)))


def _unresolved(plan: Plan, why: str) -> Plan:
    said = f"packages not resolved: {why}; the plan rests on the knowledge base alone"
    return replace(plan, resolved=unresolved(why), reasons=plan.reasons + (said,))


# --- the search -------------------------------------------------------------------------------------------

def _search(request: Request, target: Target, tools: Sequence[str], source: Source, first: Plan,
            failure: NoSolution) -> Optional[Plan]:
    for python in _pythons(request, first):
        found = _at(request, target, tools, source, first, python, failure)
        if found is not None:
            return found
    return None


def _pythons(request: Request, first: Plan) -> list[str]:
    """The planned Python, then the others the framework builds allow, newest first."""
    allowed = set(ALL_PYTHONS)
    for group in groups_of(request.wants):
        allowed &= {p for b in builds_for(group.primary, request) for p in b.python}
    if request.python:
        allowed = {p for p in allowed if p == request.python or p.startswith(request.python + ".")}
    rest = sorted((p for p in allowed if p != first.python and resolvable_python(p)), key=minor_key, reverse=True)
    return [first.python] + rest[:MAX_PYTHONS - 1]


def _at(request: Request, target: Target, tools: Sequence[str], source: Source, first: Plan, python: str,
        failure: NoSolution) -> Optional[Plan]:
    """The plan at one Python: the versions the resolver allows, planned by the kb, checked again."""
    try:
        loose = compile_steps(step_layout(tuple(w.text for w in request.wants), tuple(tools), first.user_packages),
                              (), python, source)
    except (NoSolution, MissingExtra):
        return None
    narrowed = tuple(_narrow(w, loose.version_of(w.project)) for w in request.wants)
    try:
        plan = resolve(replace(request, wants=narrowed, python=python), target)
        checked = _check(plan, tools, source)
    except (ImpossibleRequest, NoSolution, MissingExtra):
        return None
    plan = replace(plan, reasons=(_python_reason(plan, request),) + plan.reasons[1:])
    return _with(plan, checked, _decided(first, plan, failure, tools, source))


def _python_reason(plan: Plan, request: Request) -> str:
    asked = f"Python {request.python} was asked; " if request.python else ""
    ranges = "; ".join(f"{b.label}: {python_range(b.python)}" for b in plan.builds)
    return (f"Python {plan.python}: {asked}the newest for which the whole environment resolves"
            + (f" ({ranges})" if ranges else ""))


def _narrow(w: Want, version: Optional[str]) -> Want:
    """The want, kept as written, narrowed to the version the resolver found ("torch>=2.4" -> also ==2.4.1)."""
    if version is None:
        return w
    base = version.split("+", 1)[0]
    specifier = ",".join(s for s in (w.specifier, f"=={base}") if s)
    return replace(w, specifier=specifier)


def _decided(first: Plan, plan: Plan, failure: NoSolution, tools: Sequence[str],
             source: Source) -> tuple[str, ...]:
    """Why the plan left the first choice: the resolver's reason at the first Python, and (when framework
    versions moved too) the reason the first choice fails at the Python found."""
    notes = []
    if plan.python != first.python:
        notes.append(f"Python {plan.python} (not {first.python}): {_because(failure.cause)}")
    moved = [f"{b.family} {b.version} (not {a.version})" for a in first.builds for b in plan.builds
             if a.family == b.family and a.version != b.version]
    if moved:
        why = failure.cause
        if plan.python != first.python:
            try:
                _check(first, tools, source, plan.python)
                why = "the resolver preferred it"
            except (NoSolution, MissingExtra) as again:
                why = getattr(again, "cause", str(again))
            except Unreachable:
                why = failure.cause
        notes.append(f"{', '.join(moved)}: {_because(why)}")
    return tuple(notes)


def _because(cause: str) -> str:
    """uv's explanation, as uv gives it ("Because xformers==0.0.28.post1 depends on torch==2.4.1 and you
    require torch==2.15.0, ..."): every step of it, since the last names the requirement that decided."""
    return cause.strip()


# --- explaining -----------------------------------------------------------------------------------------

_NO_VERSION = re.compile(r"there (?:is|are) no versions? of ([A-Za-z0-9._\-\[\],]+(?:[=<>!~]=?[^\s,]+)?)")


_NOT_ON_INDEX = re.compile(r"Because ([A-Za-z0-9._-]+) was not found in the package registry")


def _not_on_index(name: str, source: Source) -> ImpossibleRequest:
    where = ", ".join((source.index,) + source.extra_indexes)
    return ImpossibleRequest(f"{name}: no such project on {where}", code="no-such-version",
                             hint="check its name as the index spells it (https://pypi.org/project/NAME/), or the "
                                  "index: network.pip_index in gpuenv.toml, or PIP_INDEX_URL")


def _missing_version(failure: NoSolution) -> str:
    """The project whose asked version does not exist, when that alone is the reason ("" otherwise)."""
    found = _NO_VERSION.search(failure.cause)
    if found and "depends on" not in failure.cause.split(" and you require")[0]:
        return canonicalize_name(re.split(r"[=<>!~\[]", found.group(1))[0])
    return ""


def _asked_exactly(name: str, request: Request) -> bool:
    """Whether the user's own words pin `name` (a framework the knowledge base pinned may be missing
    from a mirror: then other versions are searched)."""
    for text in [w.text for w in request.wants] + list(request.packages):
        req = _requirement(text)
        if req is not None and canonicalize_name(req.name) == name and req.specifier:
            return True
    return False


def _impossible(failure: NoSolution, request: Request, target: Target, first: Plan, tools: Sequence[str],
                source: Source) -> ImpossibleRequest:
    fixes = _alternatives(request, target, first, tools, source)
    message = f"the environment does not resolve for Python {failure.python} on Linux x86_64: {failure.cause}"
    return ImpossibleRequest(message, code="conflict", alternatives=fixes,
                             hint=("options (each resolves): " + "; or ".join(fixes)) if fixes else
                             "change one of the pins the resolver names")


def _alternatives(request: Request, target: Target, first: Plan, tools: Sequence[str],
                  source: Source) -> list[str]:
    """Each pinned requirement lifted in turn: those whose lifting resolves, as the pin that then works
    (a framework's also planned by the knowledge base for the target)."""
    words = [w.text for w in request.wants] + list(first.user_packages)
    fixes: list[str] = []
    for i, text in enumerate(words):
        req = _requirement(text)
        if req is None or not req.specifier or len(fixes) >= 3:
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        trial = words[:i] + [req.name + extras] + words[i + 1:]
        fw, pk = trial[:len(request.wants)], tuple(trial[len(request.wants):])
        try:
            found = compile_steps(step_layout(tuple(fw), tuple(tools), pk, _toolchain(first)), (), first.python,
                                  source)
        except (NoSolution, MissingExtra, Unreachable):
            continue
        version = found.version_of(canonicalize_name(req.name))
        if version and (i >= len(request.wants) or _kb_allows(request, target, i, version)):
            fixes.append(f"{req.name}{extras}=={version} instead of {text}")
    return fixes


def _kb_allows(request: Request, target: Target, index: int, version: str) -> bool:
    wants = list(request.wants)
    wants[index] = replace(wants[index], specifier=f"=={version.split('+', 1)[0]}")
    try:
        resolve(replace(request, wants=tuple(wants)), target)
    except ImpossibleRequest:
        return False
    return True


def _requirement(text: str) -> Optional[Requirement]:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _no_such_version(name: str, failure: NoSolution, source: Source) -> ImpossibleRequest:
    known = resolving.published.versions_of(name, source)
    shown = ", ".join(known[-6:]) if known else "none could be read"
    asked = _NO_VERSION.search(failure.cause)
    what = asked.group(1) if asked else name
    return ImpossibleRequest(f"{what}: no such version on {source.index} (the resolver: {failure.cause})",
                             code="no-such-version",
                             alternatives=[f"{name}=={v}" for v in known[-3:][::-1]],
                             hint=f"{name} publishes: {shown}" + (" (newest last)" if known else ""))


def _missing_extra(exc: MissingExtra, source: Source) -> ImpossibleRequest:
    extras = resolving.published.extras_of(exc.name, exc.version, source)
    named = ", ".join(extras) if extras else "none"
    return ImpossibleRequest(f"{exc.name} {exc.version} publishes no extra '{exc.extra}'",
                             code="no-such-version", alternatives=[f"{exc.name}[{e}]" for e in extras[:3]],
                             hint=f"the extras {exc.name} {exc.version} publishes: {named}")
