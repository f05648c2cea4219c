from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


def pytest_configure(config: pytest.Config) -> None:
    """Tests read the knowledge tables shipped in the package, never a table the developer refreshed."""
    import os
    import tempfile

    os.environ["GPUENV_KB_DIR"] = tempfile.mkdtemp(prefix="gpuenv-kb-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/ from the current output (then review the diff)")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
