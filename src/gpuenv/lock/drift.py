"""`gpuenv lock --check`: what no longer matches the lock. Three things can drift:

    spec     gpuenv.toml changed since the lock (its normal form's sha256)
    image    the built image's distributions or OS packages differ from the lock's
    base     the base image's ID or registry digest on this engine differs from the lock's
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Optional

from packaging.utils import canonicalize_name

from gpuenv.lock import inside
from gpuenv.lock.lockfile import Lock
from gpuenv.spec.write import spec_hash

if TYPE_CHECKING:
    from gpuenv.run.docker import Docker
    from gpuenv.spec.model import EnvSpec


@dataclass(frozen=True)
class Drift:
    kind: str            # "spec" | "image" | "base"
    what: str            # a name (a distribution, an apt package) or ""
    locked: str
    now: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spec_drift(lock: Lock, spec: EnvSpec) -> list[Drift]:
    now = spec_hash(spec)
    if now == lock.spec_sha256:
        return []
    return [Drift("spec", "gpuenv.toml", lock.spec_sha256, now,
                  "gpuenv.toml changed since the lock was made (lock it again: gpuenv lock)")]


def base_drift(lock: Lock, docker: Docker) -> tuple[list[Drift], Optional[str]]:
    """Drift of the base on this engine; (drifts, a note when it could not be checked)."""
    info = docker.image(lock.base.image)
    if info is None:
        return [], f"the base {lock.base.image} is not on this engine: not checked"
    found = []
    if lock.base.id and info.get("Id") != lock.base.id:
        found.append(Drift("base", lock.base.image, lock.base.id, info.get("Id", ""),
                           f"the base image {lock.base.image} is another image now"))
    digests = info.get("RepoDigests") or []
    if lock.base.digest and lock.base.digest not in digests:
        found.append(Drift("base", lock.base.image, lock.base.digest, ", ".join(digests) or "none",
                           f"the base image {lock.base.image} no longer has the lock's registry digest"))
    return found, None


def image_drift(lock: Lock, docker: Docker, python: str) -> tuple[list[Drift], Optional[str]]:
    """The lock's image (by tag, else ID) against the lock: every distribution and apt package."""
    ref = next((r for r in (lock.image.tag, lock.image.id) if r and docker.image(r)), None)
    if ref is None:
        return [], f"the image {lock.image.tag} is not on this engine: not checked (gpuenv build --locked builds it)"
    holds = inside.distributions(docker, ref, python)
    found = compare("image", {d.key: d.version for d in holds.dists}, _keyed(lock.distributions()), "distribution")
    apt = inside.apt_packages(docker, ref)
    base = inside.apt_packages(docker, lock.base.image) if docker.image(lock.base.image) else None
    if apt is not None and base is not None and lock.apt:
        added = {n: v for n, v in apt.items() if base.get(n) != v}
        found += compare("image", added, dict(lock.apt), "OS package")
    return found, None


def compare(kind: str, now: dict[str, str], locked: dict[str, str], noun: str) -> list[Drift]:
    out = []
    for name in sorted(set(now) | set(locked)):
        a, b = locked.get(name, ""), now.get(name, "")
        if a == b:
            continue
        if not a:
            message = f"{noun} {name} {b} is in the image and not in the lock"
        elif not b:
            message = f"{noun} {name} {a} is in the lock and not in the image"
        else:
            message = f"{noun} {name} is {b} in the image, {a} in the lock"
        out.append(Drift(kind, name, a, b, message))
    return out


def _keyed(dists: dict[str, str]) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in dists.items()}
