from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _knowledge_base_alone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests plan from the knowledge base alone (GPUENV_OFFLINE=1), so that no live index decides
    their answers; the tests marked `resolver` run the real resolver against the recorded index."""
    if request.node.get_closest_marker("resolver") is None:
        monkeypatch.setenv("GPUENV_OFFLINE", "1")
