"""What the NVIDIA tables say: driver floors of CUDA releases, and which GPUs a CUDA can build for."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional

from gpuenv.kb import load_table
from gpuenv.resolve.versions import V, cc_to_sm, major, major_minor, minor_key


@dataclass(frozen=True)
class Toolkit:
    version: str      # "8.0.61"
    cuda: str         # "8.0"
    min_driver: str


@lru_cache(maxsize=None)
def toolkits() -> tuple[Toolkit, ...]:
    rows = load_table("cuda")["toolkit"]
    return tuple(sorted((Toolkit(r["version"], r["cuda"], r["min_driver"]) for r in rows),
                        key=lambda t: (minor_key(t.version), V(t.min_driver))))


@lru_cache(maxsize=None)
def compat_floors() -> dict[int, str]:
    """Minor-version compatibility: CUDA major -> the driver that runs every <major>.x (11 on)."""
    return {int(r["major"]): r["min_driver"] for r in load_table("cuda")["minor_compat"]}


def toolkit_min_driver(version: str) -> Optional[str]:
    """Table 3's minimum driver of a toolkit ("8.0.61" -> "375.26"; "9.0" -> its first release)."""
    exact = [t for t in toolkits() if t.version == version]
    if exact:
        return exact[0].min_driver
    same = [t for t in toolkits() if t.cuda == major_minor(version)]
    if not same:
        return None
    if version.count(".") < 2:  # "9.0": the first release of that CUDA
        return min((t.min_driver for t in same), key=V)
    # a release Table 3 leaves out (12.3.2): the newest listed release of that CUDA before it
    earlier = [t for t in same if minor_key(t.version) <= minor_key(version)]
    return max((t.min_driver for t in earlier or same), key=V)


def native_min_driver(cuda: str) -> Optional[str]:
    """The lowest driver any release of CUDA major.minor needs natively."""
    rows = [t.min_driver for t in toolkits() if t.cuda == major_minor(cuda)]
    return min(rows, key=V) if rows else None


def wheels_min_driver(cuda: str) -> Optional[str]:
    """The driver CUDA libraries from pip wheels need: the major's compatibility floor (11 on), else native."""
    floor = compat_floors().get(major(cuda))
    return floor or native_min_driver(cuda)


def max_native_cuda(driver: str) -> Optional[str]:
    """The newest CUDA major.minor whose every feature this driver runs (Table 3)."""
    fit = [t.cuda for t in toolkits() if V(t.min_driver) <= V(driver)]
    return max(fit, key=minor_key) if fit else None


def max_cuda(driver: str) -> Optional[str]:
    """The newest CUDA the driver runs, counting minor-version compatibility ("12.x")."""
    native = max_native_cuda(driver)
    floors = [m for m, floor in compat_floors().items() if V(floor) <= V(driver)]
    if floors and (native is None or max(floors) >= major(native)):
        best = max(floors)
        return f"{best}.x"
    return native


def driver_runs(driver: str, min_driver: str) -> bool:
    return V(driver) >= V(min_driver)


# --- GPU architectures -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Arch:
    cc: str
    family: str
    first_cuda: str
    last_cuda: Optional[str]


@lru_cache(maxsize=None)
def archs() -> tuple[Arch, ...]:
    rows = load_table("gpus")["arch"]
    return tuple(sorted((Arch(r["cc"], r["family"], r["first_cuda"], r.get("last_cuda")) for r in rows),
                        key=lambda a: minor_key(a.cc)))


def arch(cc: str) -> Optional[Arch]:
    return next((a for a in archs() if a.cc == cc), None)


def archs_of_cuda(cuda: str) -> tuple[str, ...]:
    """The compute capabilities a CUDA toolkit can build for, as sm_XY."""
    key = minor_key(major_minor(cuda))
    found = []
    for a in archs():
        if minor_key(a.first_cuda) <= key and (a.last_cuda is None or key <= minor_key(a.last_cuda)):
            found.append(cc_to_sm(a.cc))
    return tuple(found)


def cuda_range_of(cc: str) -> Optional[tuple[str, Optional[str]]]:
    a = arch(cc)
    return (a.first_cuda, a.last_cuda) if a else None


def _normal(name: str) -> str:
    text = name.lower()
    text = re.sub(r"\b(nvidia|tesla|geforce|quadro)\b", " ", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


@lru_cache(maxsize=None)
def _gpu_names() -> tuple[tuple[str, str, str], ...]:
    """(normalized name, cc, display name) for every model and alias, longest names first."""
    items = []
    for row in load_table("gpus")["gpu"]:
        for name in [row["name"], *row.get("aliases", [])]:
            items.append((_normal(name), row["cc"], row["name"]))
    return tuple(sorted(set(items), key=lambda item: -len(item[0])))


def gpu_by_name(name: str) -> Optional[tuple[str, str]]:
    """(model as NVIDIA lists it, compute capability) for a name nvidia-smi prints or a user types.

    "NVIDIA A100-SXM4-80GB" and "a100" both find the A100: exact names first, then the longest known
    model whose words start the given name (memory and form-factor suffixes are ignored).
    """
    wanted = _normal(name)
    if not wanted:
        return None
    for normal, cc, display in _gpu_names():
        if normal == wanted:
            return display, cc
    tail = {(display, cc) for normal, cc, display in _gpu_names() if normal.endswith(" " + wanted)}
    if len(tail) == 1:  # "3090" -> GeForce RTX 3090, when only one model ends so
        return tail.pop()
    for normal, cc, display in _gpu_names():
        if wanted.startswith(normal + " ") or wanted.replace(" ", "").startswith(normal.replace(" ", "")):
            if len(normal.replace(" ", "")) >= 2 and _boundary(wanted, normal):
                return display, cc
    return None


def _boundary(wanted: str, normal: str) -> bool:
    """ "h100 sxm" starts with "h100" at a word boundary; "h1000" does not start "h100"."""
    compact, head = wanted.replace(" ", ""), normal.replace(" ", "")
    rest = compact[len(head):]
    return not rest or not rest[0].isdigit() or wanted.startswith(normal + " ")


def gpu_names() -> list[str]:
    return sorted({display for _, _, display in _gpu_names()})


def arch_parts(arch: str) -> Optional[tuple[str, int, int, str]]:
    """("sm", 9, 0, "a") for sm_90a; "8.6" (TensorFlow's own spelling) reads as sm_86; None for others."""
    dotted = re.fullmatch(r"(\d+)\.(\d)", arch.strip())
    if dotted:
        return "sm", int(dotted[1]), int(dotted[2]), ""
    found = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch.strip())
    return (found[1], int(found[2]), int(found[3]), found[4]) if found else None


def covering(archs: Iterable[str], cc: str) -> Optional[str]:
    """The first of a build's architectures whose code runs on a GPU of compute capability `cc`.

    NVIDIA CUDA C++ Programming Guide, "Binary Compatibility" and "Application Compatibility", and the
    Hopper and Blackwell compatibility guides: a cubin for sm_XY runs on X.Z for Z >= Y, never on another
    major; PTX for compute_XY is JIT-compiled by the driver for any X.Y or newer. Architecture-specific
    code (sm_90a) runs on X.Y only; family-specific code (sm_100f, CUDA 12.9) on the major's later minors.
    """
    gpu = re.fullmatch(r"(\d+)\.(\d+)", cc.strip())
    if not gpu:
        return None
    major, minor = int(gpu[1]), int(gpu[2])
    for arch in archs:
        parts = arch_parts(arch)
        if parts is None:
            continue
        kind, a, b, suffix = parts
        if suffix == "a" and (a, b) == (major, minor):
            return arch
        if suffix != "a" and kind == "sm" and a == major and b <= minor:
            return arch
        if suffix == "f" and kind == "compute" and a == major and b <= minor:
            return arch
        if not suffix and kind == "compute" and (a, b) <= (major, minor):
            return arch
    return None


def covers(archs: Iterable[str], cc: str) -> bool:
    """Does a build with these archs run on a GPU of compute capability `cc`? (the plan and `gpuenv
    verify` share this rule)"""
    return covering(archs, cc) is not None



def close_gpu_names(name: str, n: int = 3) -> list[str]:
    """Known models whose names are close to a misspelt one ("Tesla V999" -> NVIDIA V100)."""
    by_normal = {normal: display for normal, _, display in _gpu_names()}
    wanted = _normal(name)
    found = difflib.get_close_matches(wanted, list(by_normal), n=n * 3, cutoff=0.6)
    shape = re.sub(r"\d", "#", wanted)  # "v999" has the shape of "v100": same series, another number
    found += sorted(k for k in by_normal if re.sub(r"\d", "#", k) == shape)
    return list(dict.fromkeys(by_normal[f] for f in found))[:n]
