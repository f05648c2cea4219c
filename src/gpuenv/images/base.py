"""Getting the base image onto the engine: already there, pulled, or built here from an apt mirror.

When no registry gives the planned base (Docker Hub blocked, an air-gapped server), and the plan needs no
system CUDA, gpuenv builds the base itself: a minimal root filesystem of the planned Debian/Ubuntu
release from the apt mirror (build/bootstrap.py), imported as `gpuenv-base/<os>:<codename>`. The plan is
then made again on it: Python from the release's own python3 (unless the spec names another), CUDA from
the framework's wheels. The decision is remembered (~/.cache/gpuenv/bases.json), so that the next
`gpuenv up` does not wait for a pull that cannot work; `--pull` tries the registry again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from gpuenv import paths
from gpuenv.errors import EngineError, GpuenvError
from gpuenv.images import bootstrap
from gpuenv.run.docker import Docker


# How the engine has the base: already there (the planned image), pulled now, built here from the apt mirror
# now (`bootstrapped`), or built here before and remembered (bases.json). The last two are not the planned
# image: the plan is made again on them (environment._on_local_base).
Obtained = Literal["present", "pulled", "bootstrapped", "remembered"]


@dataclass(frozen=True)
class BaseChoice:
    image: str                   # what FROM will say
    how: Obtained
    note: str = ""               # why the base is not the planned one: short and stable (it joins the plan,
                                 # and so gpuenv.lock), never an engine's or a resolver's raw words
    detail: str = ""             # what the pull said, and when: for the terminal only
    os: str = ""                 # a base built here: its OS release ("debian12"); "" for the planned image
    python: Optional[str] = None  # the python3 of a base built here; None for the planned image


def memo_file() -> Path:
    return paths.cache_dir() / "bases.json"


def _memo() -> dict[str, dict[str, Any]]:
    """bases.json: planned image -> {"use": the base built here, "why": the pull's words, "when": a date}."""
    try:
        return json.loads(memo_file().read_text())
    except (OSError, ValueError):
        return {}


def _remember(planned: str, local: str, why: str) -> None:
    data = _memo()
    data[planned] = {"use": local, "why": why, "when": time.strftime("%Y-%m-%d")}
    path = memo_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def known(docker: Docker, planned: str, os_name: str) -> Optional[BaseChoice]:
    """The base this engine builds `planned` on, when that is already decided and costs nothing to find:
    the image itself, or a base built here from the apt mirror before and remembered. None: `ensure`
    must decide (pull, or build one)."""
    if docker.image(planned):
        return BaseChoice(planned, "present")
    release = bootstrap.release(os_name)
    local = bootstrap.local_tag(os_name) if release else None
    memo = _memo().get(planned)
    if release and local and memo and memo.get("use") == local and docker.image(local):
        why = memo.get("why", "")
        return BaseChoice(local, "remembered", _note(planned, local, why), _detail(why, memo.get("when")),
                          os_name, release.python)
    return None


def ensure(docker: Docker, planned: str, os_name: str, mirror: Optional[str], no_bootstrap_because: Optional[str],
           pull: bool, say: Callable[[str], None]) -> BaseChoice:
    """The base to build FROM. `mirror`: the spec's network.apt_mirror (None: the release's own).
    `no_bootstrap_because`: None when a base built here from the apt mirror can stand in for `planned`,
    else why it cannot (the plan needs system CUDA, the spec names its own base...), said in the error
    when `planned` cannot be pulled. `pull`: try the registry even when a remembered base would do."""
    found = known(docker, planned, os_name)
    if found is not None and (found.how == "present" or (not pull and no_bootstrap_because is None)):
        return found
    release = bootstrap.release(os_name)
    local = bootstrap.local_tag(os_name) if release else None
    say(f"pulling {planned}")
    done = docker.run("pull", planned, check=False, timeout=3600)
    if done.returncode == 0:
        return BaseChoice(planned, "pulled")
    why = _pull_error(done.stderr or done.stdout)
    if no_bootstrap_because is not None or release is None or local is None:
        reason = no_bootstrap_because or f"gpuenv cannot build a base of {os_name} itself"
        raise EngineError(f"the base image {planned} cannot be pulled: {why}", _no_base_hint(reason))
    if not docker.image(local):
        tool = bootstrap.tool(os_name)
        if tool is None:
            raise GpuenvError(f"the base image {planned} cannot be pulled ({why}), and gpuenv cannot build one "
                              "here: neither mmdebstrap nor debootstrap is installed",
                              bootstrap.missing_tool_hint(os_name))
        source = mirror or release.mirror
        say(f"{planned} cannot be pulled ({why}); building the base {local} from {source} with {tool.name} "
            "(once; later builds reuse it)")
        bootstrap.bootstrap([docker.client], os_name, mirror, local, lambda line: None, using=tool)
    _remember(planned, local, why)
    return BaseChoice(local, "bootstrapped", _note(planned, local, why), _detail(why, None), os_name,
                      release.python)


def _note(planned: str, local: str, why: str) -> str:
    return (f"the base is {local}, built here from the apt mirror: {planned} cannot be pulled "
            f"({pull_failure(why)}). Python comes from the OS release, CUDA from the framework's wheels. "
            "`--pull` tries the registry again")


def _detail(why: str, when: Optional[str]) -> str:
    return f"docker pull said: {why}" + (f" (seen {when})" if when else "")


# What a failed pull means, from the words engines and registries use; the first that matches names it.
_PULL_FAILURES = (
    ("the engine does not trust the registry's certificate", r"x509|certificate"),
    ("the registry is unreachable", r"lookup |name resolution|no such host|server misbehaving|dial tcp|"
                                    r"i/o timeout|connection refused|network is unreachable|timeout|proxyconnect|"
                                    r"TLS handshake"),
    ("the registry refused the login", r"unauthorized|authentication required|denied|forbidden"),
    ("the registry has no such image", r"manifest unknown|not found|does not exist|no such image"),
    ("the registry's pull limit was reached", r"toomanyrequests|rate limit"),
)


def pull_failure(said: str) -> str:
    """A failed pull's cause in a few stable words (the engine's own message varies with the host's DNS
    server, proxy and time, and belongs on the terminal, not in a plan or a lock)."""
    for cause, pattern in _PULL_FAILURES:
        if re.search(pattern, said, re.I):
            return cause
    return "the pull failed"


def _pull_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "no answer")[:300]


def _no_base_hint(reason: str) -> str:
    return (f"{reason}. Options: a registry mirror that has it (network.registry_mirror in gpuenv.toml, or "
            "dockerd's registry-mirrors), `docker load` of a saved copy (gpuenv load), or `base` in gpuenv.toml "
            "naming an image this engine has")
