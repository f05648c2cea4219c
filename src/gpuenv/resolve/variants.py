"""Why no build is exactly what was asked: the project, extra or local version a release does not publish.

The solver's variant stage keeps only the builds that match a requirement as written (see
`solver.variant_misses`); when none is left, this says what the release does publish, so that the
user picks it: nothing is swapped, dropped or rewritten on their behalf.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve.builds import Build, builds_for, extra_name, extras_of, published, sdist_only, withdrawn
from gpuenv.resolve.request import Request, Want
from gpuenv.resolve.solver import COMPANION_PROJECTS, Group, options_hint, variant_misses
from gpuenv.resolve.versions import V

_LIST = 5


def no_such_variant(group: Group, left: list[Build], every: list[Build], request: Request) -> ImpossibleRequest:
    """`left`: the builds whose version matches; none matches the variant."""
    found = _first_miss(group, left)
    if found is None:
        return _apart(group, left)
    w, miss = found
    if request.cpu and _is_gpu_variant(w, request):
        return _cpu_conflict(w, left)
    versions = sorted({b.version for b in left}, key=V)
    release = _release(w, versions)
    reason = {"project": _project_reason, "extra": _extra_reason, "local": _local_reason}[miss](w, left, release)
    fix = _existing(left)[: _LIST - 1] + _elsewhere(w, miss, every, versions)
    return ImpossibleRequest(f"{w.text}: {reason}", code="no-such-version", alternatives=fix,
                             hint=options_hint(fix))


def _first_miss(group: Group, left: list[Build]) -> Optional[tuple[Want, str]]:
    """The first requirement no build matches, and how the first build misses it; None when each matches some."""
    for w in group.wants:
        misses = [variant_misses(w, b) for b in left]
        if all(misses):
            return w, str(misses[0])
    return None


def _apart(group: Group, left: list[Build]) -> ImpossibleRequest:
    """Each requirement matches a build, no build all of them (torch==2.4.1+cu118 with torchvision==0.19.1+cu121)."""
    parts, fix = [], []
    for w in group.wants:
        matched = [b for b in left if variant_misses(w, b) is None]
        parts.append(f"{w.text} is the {', '.join(dict.fromkeys(b.variant for b in matched))} build")
        fix += [" ".join([_shown(b), *b.companions]) for b in matched[:1]]
    return ImpossibleRequest(f"{group.text}: no single {group.family} build is all of them: " + "; ".join(parts),
                             code="conflict", alternatives=fix, hint=options_hint(fix))


def _release(w: Want, versions: list[str]) -> str:
    if len(versions) == 1:
        return f"{w.family} {versions[0]}"
    which = f"matching '{w.specifier}'" if w.specifier else "known"
    return f"the {w.family} releases {which} ({versions[0]} ... {versions[-1]})"


def _project_reason(w: Want, left: list[Build], release: str) -> str:
    versions = sorted({b.version for b in left}, key=V)
    if len(versions) > 1:
        gone = [f"{w.project} {v} {_why_no_build(w.project, v)}" for v in versions if sdist_only(w.project, v)]
        return f"no {w.project} release matching '{w.specifier}' is published with a Linux wheel" + \
            (f" ({'; '.join(gone)})" if gone else "")
    version = versions[0]
    if sdist_only(w.project, version) or withdrawn(w.project, version):
        return f"{w.project} {version} {_why_no_build(w.project, version)}"
    builds = ", ".join(sorted({b.requirement for b in left}))
    if published(w.project) is None:
        return f"gpuenv's knowledge base has no release of {w.project}; {release} is planned as {builds}"
    return f"{w.project} {version} is not published (with a Linux wheel); {release} is published as {builds}"


def _why_no_build(project: str, version: str) -> str:
    return withdrawn(project, version) or "is published as an sdist only, with no wheel to install"


def _extra_reason(w: Want, left: list[Build], release: str) -> str:
    asked = ",".join(w.extras)
    have = sorted({b.extra for b in left if b.extra})
    verb = "publishes" if " ... " not in release else "publish"
    declared = extras_of(left[0].project, left[0].version)
    declares = declared is not None and all(extra_name(e) in declared for e in w.extras)
    if not have and declared is None:
        return f"{release}: none of its builds is chosen by an extra; gpuenv plans no [{asked}]"
    if have:
        kind = ("CUDA " if all(b.cuda for b in left if b.extra) else "") + ("extras" if len(have) > 1 else "extra")
        text = f"{release} {verb} the {kind} {', '.join(have)}; not [{asked}]"
    else:
        text = f"{release} {verb} no extra [{asked}]" if not declares else f"{release} has no build of [{asked}]"
    return text + (_DECLARED.format(build=left[0], asked=asked) if declares else "")


_DECLARED = (" ({build.project} {build.version} declares [{asked}] in its metadata, but it is no CUDA build gpuenv "
             "can plan: not a CUDA extra, or one whose CUDA plugin was not published for it)")


def _local_reason(w: Want, left: list[Build], release: str) -> str:
    asked = _asked_local(w)
    if w.project in COMPANION_PROJECTS:
        pins = sorted({c for b in left for c in b.companions if c.startswith(w.project + "==")})
        return (f"with {release} gpuenv installs {', '.join(pins) or 'no ' + w.project}, as pytorch.org's install "
                f"commands pin it; not +{asked}")
    locals_ = sorted({b.local for b in left if b.local}, key=_local_key)
    if not locals_:
        return f"{release} is published with no local version (+{asked} does not exist)"
    where = " (PyTorch's own index)" if w.family == "torch" else ""
    return f"{release} is published with the local versions {', '.join('+' + x for x in locals_)}{where}; not +{asked}"


def _local_key(local: str) -> tuple[int, int, str]:
    """+cu92 < +cu118 < +cu121 < +cpu < others: CUDA variants by number."""
    digits = local[2:]
    return (0, int(digits), local) if local.startswith("cu") and digits.isdigit() else (1, 0, local)


def _existing(left: list[Build]) -> list[str]:
    return list(dict.fromkeys(_shown(b) for b in left))[:_LIST]


def _elsewhere(w: Want, miss: str, every: list[Build], versions: list[str]) -> list[str]:
    """The release nearest the one asked that does publish the variant as written, if any."""
    if miss == "local":
        asked = _asked_local(w)
        matching = [b for b in every if b.local == asked]
    else:
        matching = [b for b in every if variant_misses(replace(w, specifier=""), b) is None]
    matching = [b for b in matching if b.version not in versions]
    if not matching:
        return []
    asked_version = V(versions[-1])
    newer = [b for b in matching if V(b.version) > asked_version]
    nearest = min(newer, key=lambda b: V(b.version)) if newer else max(matching, key=lambda b: V(b.version))
    return [_shown(nearest)]


def _asked_local(w: Want) -> str:
    return w.specifier.split("+", 1)[1].split(",")[0] if "+" in w.specifier else ""


def _shown(build: Build) -> str:
    """A build as a requirement to write: its pin, or for a wheel named by URL (torch < 1.2) its version and variant."""
    if " @ " in build.requirement:
        where = f'gpu.cuda = "{build.cuda_mm}"' if build.cuda else "cpu"
        return f"{build.project}=={build.version} with {where} (the {build.variant} wheel, named by URL)"
    return build.requirement


def _is_gpu_variant(w: Want, request: Request) -> bool:
    """Whether what was written names a CUDA build (tensorflow-gpu, jax[cuda12], +cu118), as the GPU builds say."""
    loose = replace(w, specifier="")
    return any(b.cuda and variant_misses(loose, b) is None
               for b in builds_for(w, replace(request, cpu=False)))


def _cpu_conflict(w: Want, left: list[Build]) -> ImpossibleRequest:
    cpu = _existing(left)[:2]
    fix = cpu + ['gpu.devices = "all" (drop `cpu`)']
    return ImpossibleRequest(
        f"{w.text} is a GPU build, and the request is CPU-only (`cpu`, gpu.devices = \"none\"); "
        f"CPU builds of {w.family}: {', '.join(cpu)}",
        code="conflict", alternatives=fix, hint=options_hint(fix))
