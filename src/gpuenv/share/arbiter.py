"""Taking free GPUs so that two `up`s at the same moment never take the same one, whoever runs them and
wherever: Docker is the arbiter, since it is the one thing every `up` on an engine talks to (two users,
two hosts reaching one remote engine: no file is shared, the engine is).

    1. choose: free GPUs, from the GPU facts and every alive environment's claim (claims.py);
    2. claim: create the environment's main container (not started) labelled with the chosen UUIDs;
    3. check: list every alive claim again; if another environment's container claims one of the same
       GPUs and was created earlier (the engine's creation time, ties by container id), this `up` lost:
       it removes its container, waits a moment, and chooses again, now seeing the winner's claim;
    4. else it won: every later claimant sees its container and backs off; it starts its containers.

Every `up` applies the same total order (creation time, id) to the same containers, so of two that
overlap exactly one goes on. A loser that is slow to remove its container may make a third back off too;
the third then chooses again without it. A claim through `--gpus` (by hand) does not back off: it is the
user's override, and what `gpuenv gpus` shows.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from gpuenv.errors import EngineError
from gpuenv.host.nvidia import Gpu
from gpuenv.run.docker import Docker
from gpuenv.share.claims import LABEL, Claim, claims

ATTEMPTS = 6


@dataclass(frozen=True)
class Won:
    container_id: str
    uuids: tuple[str, ...]
    attempts: int                  # 1: no one competed


# choose(claims of others) -> the UUIDs to take (raises ImpossibleRequest when too few are free)
Choose = Callable[[Sequence[Claim]], tuple[str, ...]]
# create(UUIDs) -> the id of the container created (not started) with the claim's labels
Create = Callable[[tuple[str, ...]], str]


def alive_claims(docker: Docker) -> list[Claim]:
    """Every alive environment's claim on this engine, of every user."""
    return claims(docker.containers(f"{LABEL}.gpus"))


def claim(docker: Docker, project: str, gpus: Sequence[Gpu], choose: Choose, create: Create,
          attempts: int = ATTEMPTS) -> Won:
    """Choose, claim and check until this environment holds its GPUs alone (module docstring)."""
    for attempt in range(1, attempts + 1):
        uuids = choose([c for c in alive_claims(docker) if c.project != project])
        container_id = create(uuids)
        if not _lost(docker, project, container_id, frozenset(uuids), gpus):
            return Won(container_id, uuids, attempt)
        docker.run("rm", "--force", container_id, check=False)
        time.sleep(random.uniform(0.1, 0.4) * attempt)
    raise EngineError(f"could not claim free GPUs in {attempts} attempts: other `gpuenv up`s kept taking them",
                      "run gpuenv up again, or give the GPUs with --gpus")


def _lost(docker: Docker, project: str, container_id: str, uuids: frozenset[str], gpus: Sequence[Gpu]) -> bool:
    """Whether another environment claimed one of `uuids` before this one's container was created."""
    found = alive_claims(docker)
    mine = next((c for c in found if c.project == project), None)
    if mine is None or mine.container_id != container_id:
        raise EngineError(f"the container just created ({container_id[:12]}) is not among the engine's claims",
                          "another gpuenv up of the same environment may have replaced it: run gpuenv up again")
    return any(c.project != project and not c.everything and c.uuids(gpus) & uuids and c.order < mine.order
               for c in found)
