"""Every test file is collected. pytest skips folders by name (its default `norecursedirs`: build, dist,
venv, node_modules, dotted names, ...): tests/unit/build/ was never run, until src/gpuenv/build/ became
images/ (issue 17) and its tests moved with it; two of them had rotted meanwhile. This asks pytest itself
what it collects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def uncollected(root: Path, tests: Path) -> list[str]:
    """The test_*.py files under `tests` that pytest, run in `root`, does not collect."""
    found = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                            str(tests)], cwd=root, capture_output=True, text=True, timeout=300)
    collected = {line.split("::")[0] for line in found.stdout.splitlines() if "::" in line}
    files = {str(p.relative_to(root)) for p in tests.rglob("test_*.py") if "node_modules" not in p.parts}
    assert files, f"no test files under {tests}"
    return sorted(files - collected)


def test_pytest_collects_every_test_file_under_tests() -> None:
    assert uncollected(ROOT, ROOT / "tests") == []


def test_a_test_file_in_a_folder_pytest_skips_is_reported(tmp_path: Path) -> None:
    for folder in ("unit", "unit/build"):
        (tmp_path / "tests" / folder).mkdir(parents=True)
        (tmp_path / "tests" / folder / "test_here.py").write_text("def test_one():\n    assert True\n")
    assert uncollected(tmp_path, tmp_path / "tests") == ["tests/unit/build/test_here.py"]
