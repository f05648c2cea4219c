"""What a built image holds, read by running it once with no network: every distribution its Python
sees (name, version, Requires-Dist) with the values PEP 508 markers are judged on, and its apt packages.
Nothing is imported but the standard library; the image needs no gpuenv and no `packaging`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from gpuenv.errors import GpuenvError
from gpuenv.lock.partition import Dist
from gpuenv.run.docker import Docker

MARK = "@@gpuenv-lock@@"

# The first distribution of a name on sys.path is the one Python imports (pip upgraded over Debian's).
PROGRAM = r"""
import json, os, platform, sys
from importlib import metadata
seen, dists = set(), []
for d in metadata.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    key = name.lower().replace("_", "-").replace(".", "-")
    if key in seen:
        continue
    seen.add(key)
    dists.append({"name": name, "version": d.version, "requires": d.metadata.get_all("Requires-Dist") or [],
                  "installer": (d.read_text("INSTALLER") or "").strip()})
impl = sys.implementation
v = impl.version
iv = "%d.%d.%d" % (v.major, v.minor, v.micro) + ("" if v.releaselevel == "final" else v.releaselevel[0] + str(v.serial))
env = {"implementation_name": impl.name, "implementation_version": iv, "os_name": os.name,
       "platform_machine": platform.machine(), "platform_release": platform.release(),
       "platform_system": platform.system(), "platform_version": platform.version(),
       "python_full_version": platform.python_version(), "platform_python_implementation":
       platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]),
       "sys_platform": sys.platform}
print("MARK" + json.dumps({"env": env, "dists": dists}))
""".replace("MARK", MARK)


@dataclass(frozen=True)
class Holds:
    dists: tuple[Dist, ...]
    env: dict[str, str]          # PEP 508 marker environment

    def versions(self) -> dict[str, str]:
        return {d.key: d.version for d in self.dists}


def distributions(docker: Docker, image: str, python: str = "python3") -> Holds:
    done = docker.run("run", "--rm", "--network", "none", "--user", "0", "--entrypoint", python, image,
                      "-c", PROGRAM, check=False, timeout=300)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            dists = tuple(Dist(d["name"], d["version"], tuple(d["requires"]), d.get("installer", "")) for d in data["dists"])
            return Holds(dists, data["env"])
    raise GpuenvError(f"cannot read the Python distributions of {image} with its {python}: "
                      f"{(done.stderr or done.stdout).strip()[-400:] or f'exit {done.returncode}'}",
                      "check that the image runs: docker run --rm " + image + f" {python} -V")


def apt_packages(docker: Docker, image: str) -> Optional[dict[str, str]]:
    """name -> version of the installed OS packages; None
    when the image has no dpkg (not a Debian or Ubuntu image)."""
    done = docker.run("run", "--rm", "--network", "none", "--entrypoint", "dpkg-query", image, "-W",
                      "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n", check=False, timeout=120)
    if done.returncode != 0:
        return None
    found = {}
    for line in done.stdout.splitlines():
        status, _, rest = line.partition("\t")
        name, _, version = rest.partition("\t")
        if status.startswith("ii") and name:
            found[name] = version
    return found
