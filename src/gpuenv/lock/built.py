"""What only a build knows, added to a lock made before it (resolution.py): the image's ID and digests,
the base as the build used it, the OS packages the build added, and the distributions no pinned step
installed (the base's, an OS package's, pip's own upgrade): the `system` step, pinned by version, so
that `gpuenv lock --check` compares the whole image. Filled in once, by the first build of exactly
the lock's pins."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Optional

from packaging.utils import canonicalize_name

from gpuenv.errors import BadInput
from gpuenv.lock import LOCK_NAME, inside
from gpuenv.lock.collect import apt_added, base_ref
from gpuenv.lock.locked import requirement_files
from gpuenv.lock.lockfile import SYSTEM_STEP, ImageRef, Lock, Package, Step, read, write

if TYPE_CHECKING:
    from gpuenv.environment import Prepared
    from gpuenv.run.docker import Docker

NOT_PINNED = "not in the resolution: the base image's, an OS package's or pip's own (pinned by version, no hashes)"


def pending(lock: Lock, prepared: Prepared) -> bool:
    """Whether `prepared` builds exactly the lock and the lock still waits for its image's facts."""
    r = prepared.rendered.recipe
    return not lock.image.id and lock.spec_sha256 == r.spec_hash and set(requirement_files(lock)) <= set(r.pinned)


def record(prepared: Prepared, docker: Docker, say: Callable[[str], None]) -> Optional[Lock]:
    """After a build: the folder's gpuenv.lock with the image's facts, written, when it waits for them."""
    path = prepared.spec_file.parent / LOCK_NAME
    try:
        lock = read(path) if path.is_file() else None
    except BadInput:
        return None                       # a broken lock is `lock --check`'s to report, not the build's
    if lock is None or not pending(lock, prepared) or not docker.image(prepared.image):
        return None
    done = with_image(lock, docker, prepared.image, prepared.rendered.recipe.python.command)
    write(done, path)
    say(f"{path}: the image {prepared.image} built from it, its base and OS packages added")
    return done


def with_image(lock: Lock, docker: Docker, image: str, python: str) -> Lock:
    info = docker.image(image) or {}
    pinned = {canonicalize_name(p.name) for s in lock.steps if s.id != SYSTEM_STEP for p in s.packages}
    holds = inside.distributions(docker, image, python)
    system = Step(SYSTEM_STEP, (), tuple(Package(d.name, d.version, (), NOT_PINNED)
                                         for d in sorted(holds.dists, key=lambda d: d.key) if d.key not in pinned))
    base = lock.base if lock.base.id else base_ref(docker, lock.base.image)
    steps = tuple(s for s in lock.steps if s.id != SYSTEM_STEP) + (system,)
    return replace(lock, image=ImageRef(image, info.get("Id", ""), tuple(info.get("RepoDigests") or ())),
                   base=base, steps=steps, apt=apt_added(docker, image, lock.base.image))
