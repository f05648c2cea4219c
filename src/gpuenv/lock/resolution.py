"""The lock before the build: the plan's resolution (every distribution, its hashes and index, by pip
step) -> a Lock, with no image built. The base is pinned as this engine has it now; the image's ID and
the OS packages its build adds are not known yet: the first build of the lock fills them in (built.py)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Optional

from gpuenv import __version__
from gpuenv.lock.collect import base_ref
from gpuenv.lock.lockfile import BaseRef, ImageRef, Lock, Package, Step, lock_plan
from gpuenv.render.dockerfile import pip_steps

if TYPE_CHECKING:
    from gpuenv.environment import Prepared
    from gpuenv.resolve.plan import Plan
    from gpuenv.resolve.resolved import Resolved, StepPins
    from gpuenv.run.docker import Docker

NO_HASHES = "the index gave no hashes for this version: pinned by version"


def resolved_of(plan: Plan) -> Optional[Resolved]:
    """The plan's resolution when the resolver answered; None when it was not resolved (or could not be)."""
    resolved = plan.resolved
    return resolved if resolved is not None and resolved.status == "resolved" else None


def lock_from_plan(prepared: Prepared, docker: Optional[Docker]) -> Lock:
    """The Lock of a prepared (planned, resolved, rendered) environment, without building it; with no
    engine (`docker` None), the base by name alone."""
    r = prepared.rendered.recipe
    resolved = resolved_of(r.plan)
    if resolved is None:
        raise ValueError("lock_from_plan needs a resolved plan")
    base = base_ref(docker, r.base) if docker is not None else BaseRef(r.base)
    steps = tuple(_step(step_id, requires, pins) for step_id, requires in pip_steps(r)
                  if (pins := resolved.step(step_id)) is not None)
    return Lock(r.spec_hash, datetime.date.today().isoformat(), __version__, lock_plan(r.plan), base,
                ImageRef(prepared.image), steps)


def _step(step_id: str, requires: tuple[str, ...], pins: StepPins) -> Step:
    return Step(step_id, requires, tuple(Package(p.name, p.version, tuple(p.hashes), "" if p.hashes else NO_HASHES,
                                                 p.index) for p in pins.pins))
