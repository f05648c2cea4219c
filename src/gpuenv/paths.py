"""Where gpuenv keeps this user's files: the XDG cache and state folders, and what lives in each."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/gpuenv: what can be made again (resolutions, parsed kb tables, bases seen, logs)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuenv"


def state_dir() -> Path:
    """$XDG_STATE_HOME/gpuenv: what a user would miss (specs written for requests, folder locks)."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "gpuenv"


def data_dir() -> Path:
    """$XDG_DATA_HOME/gpuenv: what the user added (their own knowledge-base rows)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gpuenv"


def request_specs() -> Path:
    """Where the spec of a short request (`gpuenv up torch`) is written, one folder per working folder."""
    return state_dir() / "envs"


def tunnels() -> Path:
    """The ssh tunnels `gpuenv up --tunnel` started (PROJECT.json: pid, command, ports; PROJECT.log)."""
    return state_dir() / "tunnels"


def build_logs() -> Path:
    return cache_dir() / "logs"
