"""The PyTorch ecosystem's prebuilt wheels, tried before anything is compiled (issue 18).

PyG (torch-scatter, torch-sparse, torch-cluster, torch-spline-conv, pyg-lib), OpenMMLab's mmcv and DGL
publish their CUDA builds on their own servers, one find-links page per torch minor and CUDA variant
(kb/data/companions.toml). When the spec names such a package and the plan has torch, the page of the
plan's torch and variant joins the resolution: the resolver takes its wheel when one fits the Python and
the platform, and the package's source distribution (compiled here) only when none does. What each got,
and why, is said in the plan; a package that is compiled names the builds its family publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gpuenv.kb import load_table
from gpuenv.resolve.versions import minor_key

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
