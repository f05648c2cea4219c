from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from tests.support.pyindex import RecordedIndex

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


@pytest.fixture(scope="session")
def recorded_index() -> Iterator[RecordedIndex]:
    """A real package index on 127.0.0.1 served from tests/fixtures/index/ (recorded from PyPI, see its
    SOURCE.md): `.simple` is the main index's URL (PEP 691 JSON / PEP 503 HTML, PEP 658 metadata),
    `.variant("cu118")` a PyTorch-style variant index, `.log` what the server was asked."""
    from tests.support.pyindex import serve_recorded

    index = serve_recorded(ROOT / "tests" / "fixtures" / "index")
    yield index
    index.stop()


@pytest.fixture(scope="session")
def uv_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The environment to run the real resolver in: internet blocked (every proxy variable points at a
    closed port, 127.0.0.1 exempt), no downloaded Pythons, no user configuration, a session cache."""
    from tests.support.uvrun import offline_env

    return offline_env(tmp_path_factory.mktemp("uv-cache"))


@pytest.fixture
def uv_offline(uv_env: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """`uv_env` put into os.environ for the test, for code under test that starts uv itself."""
    import os

    for key in list(os.environ):
        if key not in uv_env:
            monkeypatch.delenv(key)
    for key, value in uv_env.items():
        monkeypatch.setenv(key, value)
    return uv_env
