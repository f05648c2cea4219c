"""The PyTorch ecosystem's prebuilt wheels, tried before anything is compiled (issue 18).

PyG (torch-scatter, torch-sparse, torch-cluster, torch-spline-conv, pyg-lib), OpenMMLab's mmcv and DGL
publish their CUDA builds on their own servers, one find-links page per torch minor and CUDA variant
(kb/data/companions.toml). When the spec names such a package and the plan has torch, the page of the
plan's torch and variant joins the resolution: the resolver takes its wheel when one fits the Python and
the platform, and the package's source distribution (compiled here) only when none does. What each got,
and why, is said in the plan; a package that is compiled names the builds its family publishes.

flash-attn publishes its wheels as GitHub release assets, one per torch minor, CUDA major, Python and C++
ABI, with no index (`releases`): the newest release the knowledge base lists for the plan's torch, CUDA,
Python and ABI that the spec's own words allow is pinned exactly (its label included) against the
release's asset list, read as a find-links page. When none fits, or its asset cannot be had, it is
compiled here, and the plan says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from gpuenv.kb import load_table
from gpuenv.resolve.versions import major, matches, minor_key

if TYPE_CHECKING:
    from gpuenv.resolve.builds import Build
    from gpuenv.resolve.resolved import Resolved


@dataclass(frozen=True)
class Page:
    family: str                  # "pyg"
    url: str                     # the find-links page of the plan's torch and variant
    packages: tuple[str, ...]    # the spec's packages it serves, PEP 503 names
    torch: str                   # "2.4"
    variant: str                 # "cu121" | "cpu"
    label: str                   # the local version label its wheels carry here ("+pt24cu121"; "" none)


def pages(builds: Sequence[Build], packages: Sequence[str]) -> tuple[Page, ...]:
    """The find-links pages of the families the spec's `packages` belong to, for the plan's torch."""
    torch = next((b for b in builds if b.family == "torch" and not b.provided_by), None)
    if torch is None:
        return ()
    named = {name for name in (_name(p) for p in packages) if name}
    minor = ".".join(torch.version.split(".")[:2])
    variant = torch.variant if torch.variant.startswith("cu") else ("cpu" if torch.cuda is None else
                                                                     "cu" + (torch.cuda or "").replace(".", ""))
    found = []
    for route in load_table("companions")["route"]:
        wanted = tuple(p for p in route["packages"] if p in named)
        if not wanted or route["kind"] != "find-links":
            continue
        template: str = route.get("url_cpu") or route["url"] if variant == "cpu" else route["url"]
        fill = {"torch": minor, "cu": variant, "torch_nodot": minor.replace(".", "")}
        found.append(Page(route["family"], template.format(**fill), wanted, minor, variant,
                          route["local_version"].format(**fill)))
    return tuple(found)


@dataclass(frozen=True)
class Release:
    family: str                  # "flash-attn"
    package: str                 # PEP 503 name
    version: str                 # the release, "2.8.3"
    label: str                   # its asset's local version for the plan: "+cu12torch2.4cxx11abiFALSE"
    page: str                    # the release's asset list, read as a find-links page
    asset: str                   # the wheel's own URL
    fits: str                    # "torch 2.4 + CUDA 12 + Python 3.12, C++ ABI FALSE"

    @property
    def pin(self) -> str:
        """The exact constraint the resolver gets: that wheel and no other."""
        return f"{self.package}=={self.version}{self.label}"


def releases(builds: Sequence[Build], packages: Sequence[str], python: str,
             skip: Sequence[str] = ()) -> tuple[Release, ...]:
    """The release wheels (kb/data/companions.toml, kind "release-page") of the spec's `packages` for the
    plan's torch build and `python`: per package, the newest release listed for its torch minor, CUDA
    major, Python and C++ ABI that the package's own specifier allows. `skip`: packages to compile."""
    torch = next((b for b in builds if b.family == "torch" and not b.provided_by and b.cuda), None)
    if torch is None or not torch.cuda:
        return ()
    minor = ".".join(torch.version.split(".")[:2])
    abi = torch_abi(minor, torch.cuda_mm or torch.cuda)
    wanted = {r.name: r for r in (_requirement(p) for p in packages) if r is not None}
    found = []
    for route in load_table("companions")["route"]:
        if route["kind"] != "release-page":
            continue
        for name in route["packages"]:
            asked = wanted.get(name)
            if asked is None or name in skip or abi is None:
                continue
            rows = [r for r in load_table("companions")["wheel"]
                    if r["family"] == route["family"] and name in r["packages"] and r["torch"] == minor
                    and r["cuda"] == str(major(torch.cuda)) and python in r["python"] and abi in r.get("abi", ())
                    and asked.specifier.contains(r["packages"][name], prereleases=True)]
            if not rows:
                continue
            row = max(rows, key=lambda r: _version(r["packages"][name]))
            version = row["packages"][name]
            label = row["local_version"].replace("{ABI}", abi)
            tag = python.replace(".", "")
            asset = route["asset"].format(version=version, label=label, py=tag)
            found.append(Release(route["family"], name, version, label, route["url"].format(version=version),
                                 asset, f"torch {minor} + CUDA {major(torch.cuda)} + Python {python}, C++ ABI {abi}"))
    return tuple(found)


def torch_abi(minor: str, cuda: str) -> Optional[str]:
    """torch._C._GLIBCXX_USE_CXX11_ABI of torch's pip builds of this minor and CUDA ("TRUE" | "FALSE")."""
    for row in load_table("companions")["torch_abi"]:
        if matches(row["torch"], minor) and (not row.get("cuda") or cuda in row["cuda"]):
            return str(row["abi"])
    return None


def release_outcome(release: Release, resolved: Resolved) -> list[str]:
    """What the release wheel gave: the pinned wheel (nothing compiled), for the plan's reasons."""
    version = resolved.version_of(release.package)
    exact = _version(release.version + release.label)     # uv writes local versions normalized: lower case
    if version is None or release.package in resolved.built or _version(version) != exact:
        return []
    return [f"{release.package} {version}: {release.family}'s release wheel for {release.fits} ({release.asset}), "
            "nothing compiled"]


def no_release(name: str, builds: Sequence[Build], python: str) -> str:
    """Why a package of a release-page family is compiled: what its releases publish near the plan."""
    torch = next((b for b in builds if b.family == "torch" and not b.provided_by), None)
    if torch is None or not torch.cuda:
        return f"{name} needs torch with CUDA for its release wheels"
    minor = ".".join(torch.version.split(".")[:2])
    abi = torch_abi(minor, torch.cuda_mm or torch.cuda) or "unknown"
    rows = [r for r in load_table("companions")["wheel"] if name in r["packages"] and r["torch"] == minor
            and r["cuda"] == str(major(torch.cuda))]
    if not rows:
        minors = sorted({r["torch"] for r in load_table("companions")["wheel"] if name in r["packages"]},
                        key=minor_key)
        return (f"no release of {name} publishes a wheel for torch {minor} + CUDA {major(torch.cuda)} "
                f"(the torch minors its releases cover: {', '.join(minors[-5:]) or 'none known'})")
    newest = max(rows, key=lambda r: _version(r["packages"][name]))
    return (f"no release wheel of {name} fits torch {minor} + CUDA {major(torch.cuda)} + Python {python}, C++ ABI "
            f"{abi} (its newest for that torch, {newest['packages'][name]}, has Python "
            f"{', '.join(newest['python'])} and ABI {', '.join(newest.get('abi', ()))})")


def release_families() -> dict[str, str]:
    """package -> family, for the packages published as release assets."""
    return {name: r["family"] for r in load_table("companions")["route"] if r["kind"] == "release-page"
            for name in r["packages"]}


def outcome(page: Page, resolved: Resolved, mirrored: str) -> list[str]:
    """What each of the page's packages got, for the plan's reasons: the family's prebuilt wheel, or a
    build here from the source distribution (then the builds the family publishes for that torch)."""
    said = []
    for name in page.packages:
        version = resolved.version_of(name)
        pin = next((p for p in resolved.pins if p.name == name), None)
        if version is None or pin is None:
            continue
        if name in resolved.built:
            said.append(f"{name} {version}: compiled here from its source distribution: {page.family}'s page for torch "
                        f"{page.torch} + {page.variant} ({page.url}) has no wheel of it for Python {resolved.python} "
                        f"on Linux x86_64; {published(page.family, name, page.torch)}")
        elif (page.label and version.endswith(page.label)) or pin.index == mirrored:
            said.append(f"{name} {version}: {page.family}'s prebuilt wheel for torch {page.torch} + {page.variant} "
                        f"({page.url}), nothing compiled")
    return said


def published(family: str, name: str, torch: str) -> str:
    """What the knowledge base says the family publishes of `name` for this torch minor."""
    rows = [r for r in load_table("companions")["wheel"] if r["family"] == family and r["torch"] == torch
            and name in r["packages"]]
    if not rows:
        minors = sorted({r["torch"] for r in load_table("companions")["wheel"]
                         if r["family"] == family and name in r["packages"]}, key=minor_key)
        shown = ", ".join(minors[-4:]) if minors else "none known"
        return f"it publishes no {name} build for torch {torch} (the newest torch minors it does: {shown})"
    variants = ", ".join(sorted({_variant(r) for r in rows}))
    pythons = sorted({p for r in rows for p in r["python"]}, key=minor_key)
    span = f"Python {pythons[0]}-{pythons[-1]}" if pythons else "Pythons not known"
    return f"it publishes {name} for torch {torch} with {variants} ({span})"


def _variant(row: dict[str, Any]) -> str:
    return "cpu" if row["cuda"] == "cpu" else "cu" + row["cuda"].replace(".", "")


def _name(text: str) -> Optional[str]:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def _requirement(text: str) -> Optional[Requirement]:
    """The requirement with its name in PEP 503 form; None for one that does not parse (or a URL)."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return None
    req.name = canonicalize_name(req.name)
    return req


def _version(text: str) -> Version:
    return Version(text)
