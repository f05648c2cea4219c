"""The driver and GPUs of this host, read from `nvidia-smi --query-gpu` (CSV): a fast probe for planning."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional

QUERY = "index,name,uuid,compute_cap,driver_version"


@dataclass(frozen=True)
class ProbedGpu:
    index: int
    name: str
    uuid: str
    cc: Optional[str]          # None when the driver is too old to report it (query added in R510)


@dataclass(frozen=True)
class NvidiaHost:
    driver: str
    gpus: tuple[ProbedGpu, ...]


def parse_query(text: str) -> Optional[NvidiaHost]:
    """Parse `nvidia-smi --query-gpu=<fields> --format=csv` (with or without its header line)."""
    rows = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r]
    if rows and rows[0] and rows[0][0].strip().lower() == "index":
        header = [h.split(" [", 1)[0].strip() for h in rows[0]]
        rows = rows[1:]
    else:
        header = QUERY.split(",")
    gpus, driver = [], None
    for row in rows:
        item = dict(zip(header, (c.strip() for c in row)))
        driver = item.get("driver_version") or driver
        cc = item.get("compute_cap")
        gpus.append(ProbedGpu(int(item.get("index", len(gpus))), item.get("name", "?"), item.get("uuid", ""),
                              cc if cc and cc[0].isdigit() else None))
    return NvidiaHost(driver, tuple(gpus)) if driver else None


def probe(timeout: float = 10.0) -> Optional[NvidiaHost]:
    """This host's driver and GPUs, or None when there is no working NVIDIA driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    for query in (QUERY, "index,name,uuid,driver_version"):
        try:
            done = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            return parse_query(_with_header(query, done.stdout))
    return None


def _with_header(query: str, body: str) -> str:
    return ", ".join(query.split(",")) + "\n" + body
