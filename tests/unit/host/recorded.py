"""Reports built from real recorded hosts (tests/fixtures/hosts/*), for the pure parts of the probe."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from gpuenv.host.engine import Engine, engine_from_info
from gpuenv.host.nvidia import DriverState
from gpuenv.host.observe import load_recording
from gpuenv.host.probe import HostReport, from_observations

HOSTS = Path(__file__).resolve().parents[2] / "fixtures" / "hosts"
H200 = HOSTS / "h200-docker-2026-11-22"       # with a Docker engine there (scripts/gpu/doctor-run)
H200_FIRST = HOSTS / "h200-firecracker-2026-11-22"
NOGPU = HOSTS / "debian12-nogpu-2026-11-22"


def engine_of(folder: Path, **changes: Any) -> Engine:
    info = json.loads((folder / "docker-info.json").read_text())
    version = folder / "docker-version.json"
    engine = engine_from_info(info, json.loads(version.read_text()) if version.exists() else None,
                              "unix:///var/run/docker.sock", local_name=info["Name"])   # seen from its own host
    return replace(engine, **changes)


def report_of(folder: Path, engine: Optional[Engine] = None, driver: Optional[DriverState] = None) -> HostReport:
    """The report a host gives: its own observations, with `engine` (default: its recorded one, else
    this project's recorded Debian engine)."""
    if engine is None:
        engine = engine_of(folder if (folder / "docker-info.json").exists() else NOGPU)
    return from_observations(engine, load_recording(folder), driver)
