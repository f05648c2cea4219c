"""What a base image that the spec names already holds, seen by running it once (no network): its
Python and the frameworks installed in it, so that the plan installs nothing twice. A lab's own image
(a server's Python with PyTorch, made with `docker import`) is recognised by what is in it, not by
its name. Name-based recognition (resolve/provided.py) stays for images that are not on the engine.
"""

from __future__ import annotations

import json
from typing import Optional, TypedDict

from gpuenv.kb.frameworks import family_of
from gpuenv.resolve.provided import Provided
from gpuenv.run.docker import Docker

MARK = "@@gpuenv-holds@@"


class Facts(TypedDict):
    """What PROGRAM prints of the image's Python."""

    python: str                    # "3.10"
    dists: dict[str, str]          # every installed distribution (PEP 503 name) -> its version, as installed
    torch_cuda: Optional[str]      # the CUDA torch was built for ("12.1"); None without torch, or a CPU torch


# Runs in the base's own Python (2.7 or 3.x): versions from the distributions' metadata and torch's
# CUDA from its version.py, without importing any framework (an import of torch takes seconds).
PROGRAM = r"""
import json, os, re, sys
found = {}
for folder in sys.path:
    if not folder or not os.path.isdir(folder):
        continue
    for entry in os.listdir(folder):
        m = re.match(r"^([A-Za-z0-9_.]+)-([^-]+?)\.(dist-info|egg-info)$", entry)
        if m:
            found.setdefault(re.sub(r"[-_.]+", "-", m.group(1)).lower(), m.group(2))
cuda = None
for folder in sys.path:
    path = os.path.join(folder or ".", "torch", "version.py")
    if os.path.isfile(path):
        m = re.search(r"^cuda(?:: [^=]+)? = '([0-9.]+)'", open(path).read(), re.M)
        cuda = m and m.group(1)
        break
print("%s%s" % (MARK, json.dumps({"python": "%d.%d" % sys.version_info[:2], "dists": found, "torch_cuda": cuda})))
""".replace("MARK", repr(MARK))


def inspect(docker: Docker, image: str) -> Optional[Facts]:
    """{python, dists, torch_cuda} of the image's python3 (or python), or None when it has none."""
    script = "p=$(command -v python3 || command -v python) && exec \"$p\" -c \"$0\""
    done = docker.run("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", script, PROGRAM,
                      check=False, timeout=120)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK):])
            except ValueError:
                return None
    return None


def held(image: str, facts: Facts, families: set[str]) -> tuple[Provided, ...]:
    """The wanted frameworks the image's Python already has, as the resolver's Provided."""
    found: list[Provided] = []
    for dist, version in sorted(facts.get("dists", {}).items()):
        family = family_of(dist)
        if family in families and dist == family and family not in {p.family for p in found}:
            cuda = facts.get("torch_cuda") if family == "torch" else None
            found.append(Provided(image, family, version.split("+")[0], cuda, None, facts.get("python"),
                                  f"the base image's own Python {facts.get('python')} (looked inside it)"))
    return tuple(found)
