"""What every benchmark here does with its numbers: stamp them with the date and the machine, write them
to benchmarks/results/<name>-<date>.json, and print them."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any


def write(name: str, benchmark: str, runs: int, **numbers: Any) -> dict[str, Any]:
    result = {
        "benchmark": benchmark,
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
        "python": platform.python_version(),
        "runs": runs,
        **numbers,
    }
    out = Path(__file__).parent / "results" / f"{name}-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
