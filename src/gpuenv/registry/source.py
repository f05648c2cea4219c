"""Which image `gpuenv push [ENV]` means, and the gpuenv.lock that goes with it.

ENV is an environment's name (or project), or an image (gpuenv-NAME:TAG). Left out: the environment of
./gpuenv.toml (the image its lock names, the one its .env names, else the newest image built from this
spec for this user, by the io.gpuenv.spec-sha256 label); with no gpuenv.toml here, the environment
running from this folder, or your only one (run/envs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import gpuenv.run as runs           # the face: run.envs (compose, yaml) loads only for a push by name
import gpuenv.spec as specs         # the face: the spec model (pydantic) loads only when a spec is read
from gpuenv.errors import BadInput, GpuenvError
from gpuenv.registry.lockfile import LOCK_FILE, read_image
from gpuenv.run.docker import Docker

SPEC_FILE = "gpuenv.toml"


@dataclass(frozen=True)
class Source:
    image: str
    lock: Optional[Path]        # the gpuenv.lock next to its spec (may not exist)


def image_to_push(docker: Docker, env: Optional[str], cwd: Path, user: tuple[int, int]) -> Source:
    if env and ":" in env and docker.image(env):
        return Source(env, None)
    if env:
        return _named(docker, env, user)
    if (cwd / SPEC_FILE).is_file():
        return _of_spec(docker, cwd, user)
    found = runs.envs.find(docker, None, user[0], cwd)
    return Source(found.image, _lock_in(found.label("files")))


def _named(docker: Docker, env: str, user: tuple[int, int]) -> Source:
    running = [e for e in runs.envs.environments(docker, user[0]) if env in (e.name, e.project)]
    if len(running) == 1:
        return Source(running[0].image, _lock_in(running[0].label("files")))
    images = _newest_first(docker, f"gpuenv-{env}", None, user)
    if not images:
        raise BadInput(f"no environment or image named '{env}' on this engine",
                       "gpuenv ls lists your environments; docker images 'gpuenv-*' the images")
    return Source(images[0], None)


def _of_spec(docker: Docker, folder: Path, user: tuple[int, int]) -> Source:
    lock = folder / LOCK_FILE
    locked = read_image(lock)
    candidates = [locked.tag if locked else "", _env_file_image(folder / ".env")]
    for image in filter(None, candidates):
        if docker.image(image):
            return Source(image, lock)
    spec = specs.load_spec(folder / SPEC_FILE)
    images = _newest_first(docker, None, f"io.gpuenv.spec-sha256={specs.spec_hash(spec)}", user)
    if not images:
        raise GpuenvError(f"the environment of {folder / SPEC_FILE} has no image on this engine",
                          "build it first: gpuenv build")
    return Source(images[0], lock)


def _newest_first(docker: Docker, repository: Optional[str], label: Optional[str],
                  user: tuple[int, int]) -> list[str]:
    """Tagged images of a repository or with a label, built for this user, newest first."""
    args = ["images", "--format", "{{.Repository}}:{{.Tag}}"]
    args += ["--filter", f"label={label}"] if label else []
    args += [repository] if repository else []
    tags = [t for t in docker.run(*args).stdout.split() if not t.endswith(":<none>") and "<none>" not in t]
    found = docker.inspect("image", *tags)
    mine = [i for i in found if (i.get("Config") or {}).get("User") == f"{user[0]}:{user[1]}"] or found
    mine.sort(key=lambda i: i.get("Created", ""), reverse=True)
    return [next(t for t in i["RepoTags"] if t in tags) for i in mine if set(i.get("RepoTags") or []) & set(tags)]


def _env_file_image(path: Path) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    return next((line.split("=", 1)[1].strip() for line in lines if line.startswith("GPUENV_IMAGE=")), "")


def _lock_in(folder: str) -> Optional[Path]:
    return Path(folder) / LOCK_FILE if folder else None
