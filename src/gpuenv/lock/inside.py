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
from email.parser import Parser
def found():
    try:
        from importlib import metadata
    except ImportError:                      # before Python 3.8: the metadata files themselves
        metadata = None
    if metadata is not None:
        for d in metadata.distributions():
            yield d.metadata, d.version, d.read_text("INSTALLER") or ""
        return
    for folder in sys.path:
        if not folder or not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            for suffix, name in ((".dist-info", "METADATA"), (".egg-info", "PKG-INFO")):
                path = os.path.join(folder, entry, name)
                if entry.endswith(suffix) and os.path.isfile(path):
                    meta = Parser().parse(open(path))
                    installer = os.path.join(folder, entry, "INSTALLER")
                    yield meta, meta["Version"], open(installer).read() if os.path.isfile(installer) else ""
seen, dists = set(), []
for meta, version, installer in found():
    name = meta["Name"]
    key = (name or "").lower().replace("_", "-").replace(".", "-")
    if not name or key in seen:
        continue
    seen.add(key)
    dists.append({"name": name, "version": version, "requires": meta.get_all("Requires-Dist") or [],
                  "installer": installer.strip()})
impl = getattr(sys, "implementation", None)
v = impl.version if impl else sys.version_info
iv = "%d.%d.%d" % (v[0], v[1], v[2]) + ("" if v[3] == "final" else v[3][0] + str(v[4]))
env = {"implementation_name": impl.name if impl else "cpython", "implementation_version": iv,
       "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
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
            dists = tuple(Dist(d["name"], d["version"], tuple(d["requires"]), d.get("installer", ""))
                          for d in data["dists"])
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
