"""A built environment -> its Lock: the plan, the base and the image by ID and digest, each pip step's
exact distributions with the index's hashes, and the OS packages the build added."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Callable, Optional

from gpuenv import __version__
from gpuenv.errors import GpuenvError
from gpuenv.images import holds
from gpuenv.lock import inside
from gpuenv.lock.hashes import Indexes, indexes_for
from gpuenv.lock.lockfile import SYSTEM_STEP, BaseRef, ImageRef, Lock, Package, Step, lock_plan
from gpuenv.lock.partition import Dist, partition
from gpuenv.render.dockerfile import pip_steps

if TYPE_CHECKING:
    from gpuenv.environment import Prepared
    from gpuenv.run.docker import Docker

NOT_BY_PIP = "not installed by pip: the base image's or an OS package's (pinned by version, no index hashes)"


def collect(prepared: Prepared, docker: Docker, say: Callable[[str], None], indexes: Optional[Indexes] = None) -> Lock:
    """`indexes`: the spec's indexes unless given (tests give recorded ones)."""
    r = prepared.rendered.recipe
    image = docker.image(prepared.image)
    if not image:
        raise GpuenvError(f"the image {prepared.image} is not on this engine", "build it: gpuenv build")
    base = base_ref(docker, r.base)
    say(f"reading the distributions and OS packages of {prepared.image}")
    holds = inside.distributions(docker, prepared.image, r.python.command)
    parts = partition(holds.dists, pip_steps(r), _base_dists(docker, r.base), holds.env)
    steps = dict(pip_steps(r))
    if indexes is None:
        indexes = indexes_for(prepared.spec.network, r.pip_options, prepared.spec_file.parent)
    pins = [(d.name, d.version) for step, dists in parts if step != SYSTEM_STEP for d in dists]
    say(f"asking the package index for the hashes of {len(pins)} distributions")
    found = indexes.all(pins)
    locked = tuple(Step(step, steps.get(step, ()), tuple(_package(d, step, found) for d in dists))
                   for step, dists in parts)
    return Lock(r.spec_hash, datetime.date.today().isoformat(), __version__, lock_plan(r.plan), base,
                ImageRef(prepared.image, image.get("Id", ""), tuple(image.get("RepoDigests") or ())),
                locked, apt_added(docker, prepared.image, r.base))


def base_ref(docker: Docker, image: str) -> BaseRef:
    """The base by ID, and by registry digest of its own repository when a pull or push gave it one (a
    digest of another repository the same image was pushed to is not the base's: it may go away)."""
    info = docker.image(image) or {}
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    digest = next((d for d in info.get("RepoDigests") or [] if d.split("@", 1)[0] == repository), "")
    return BaseRef(image, digest, info.get("Id", ""))


def _base_dists(docker: Docker, image: str) -> list[str]:
    facts = holds.inspect(docker, image)
    return list(facts.get("dists", {})) if facts else []


def _package(d: Dist, step: str, found: dict[tuple[str, str], tuple[list[str], str]]) -> Package:
    if step == SYSTEM_STEP:
        return Package(d.name, d.version, (), NOT_BY_PIP)
    hashes, where = found.get((d.name, d.version), ([], "not asked"))
    return Package(d.name, d.version, tuple(hashes), "" if hashes else where)


def apt_added(docker: Docker, image: str, base: str) -> tuple[tuple[str, str], ...]:
    now = inside.apt_packages(docker, image) or {}
    before = inside.apt_packages(docker, base) or {}
    return tuple(sorted((n, v) for n, v in now.items() if before.get(n) != v))
