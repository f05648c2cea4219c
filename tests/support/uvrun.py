"""Runs the real resolver (`uv pip compile`) the way gpuenv's tests need it: no internet, no downloaded
Pythons, no user or host configuration, a cache of the caller's, and only the indexes named.

The internet is shut out by pointing every proxy variable at a closed port on 127.0.0.1, with
127.0.0.1 and localhost exempt: an index on 127.0.0.1 answers, anything else fails at once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence

PLATFORM = "x86_64-manylinux_2_28"
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there on a test machine


def uv_bin() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def offline_env(cache_dir: Path, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """An environment for uv with the internet blocked and 127.0.0.1 reachable."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.upper().startswith(("UV_", "PIP_")) and not k.lower().endswith("_proxy")}
    env.update({
        "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(cache_dir),
        "HTTPS_PROXY": CLOSED_PROXY, "HTTP_PROXY": CLOSED_PROXY, "ALL_PROXY": CLOSED_PROXY,
        "https_proxy": CLOSED_PROXY, "http_proxy": CLOSED_PROXY, "all_proxy": CLOSED_PROXY,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env


def compile_args(python: str, index_url: str, extra_index_urls: Sequence[str] = (),
                 extra: Sequence[str] = ()) -> list[str]:
    """`uv pip compile -` (requirements on stdin) for `python` on gpuenv's platform, wheels only, hashed."""
    args = [uv_bin(), "pip", "compile", "-", "--python-version", python, "--python-platform", PLATFORM,
            "--no-build", "--generate-hashes", "--no-header", "--index-url", index_url]
    for url in extra_index_urls:
        args += ["--extra-index-url", url]
    return args + list(extra)


def uv_compile(requirements: Sequence[str], python: str, index_url: str, env: Mapping[str, str],
               extra_index_urls: Sequence[str] = (), extra: Sequence[str] = (),
               timeout: float = 120) -> subprocess.CompletedProcess:
    """The resolver's answer for `requirements` (stdout: the pinned lines; stderr: its messages)."""
    return subprocess.run(compile_args(python, index_url, extra_index_urls, extra),
                          input="\n".join(requirements) + "\n", capture_output=True, text=True,
                          env=dict(env), timeout=timeout, check=False)


def pins(output: str) -> dict[str, str]:
    """{name: version} from `uv pip compile` output."""
    found = {}
    for line in output.splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            found[name.lower()] = version
    return found
