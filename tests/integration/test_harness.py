"""The test harness itself, on the real engine: a build FROM the local base image, a container that
prints what the test checks, and a round trip through the local registry."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def build(engine, context: Path, tag: str) -> str:
    engine.track_image(tag)
    engine.docker("build", "--tag", tag, str(context))
    return tag


def test_build_from_the_local_base_and_run(engine, tmp_path):
    token = engine.unique("value")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {engine.base_image}\n"
        f"RUN --mount=type=cache,target=/var/cache/probe echo {token} > /value\n"
        'CMD ["cat", "/value"]\n'
    )
    image = build(engine, tmp_path, engine.unique("image") + ":1")
    name = engine.track_container(engine.unique("run"))
    run = engine.docker("run", "--name", name, image)
    assert run.stdout.decode().strip() == token

    engine.clean_up()
    assert engine.docker("container", "inspect", name, check=False).returncode != 0
    assert engine.docker("image", "inspect", image, check=False).returncode != 0


def test_push_and_pull_through_the_local_registry(engine, tmp_path):
    token = engine.unique("pushed")
    (tmp_path / "Dockerfile").write_text(f"FROM {engine.base_image}\nRUN echo {token} > /value\n")
    repo = f"{engine.registry}/{engine.unique('repo')}"
    build(engine, tmp_path, f"{repo}:1")
    engine.docker("push", f"{repo}:1")
    engine.docker("image", "rm", f"{repo}:1")
    engine.docker("pull", f"{repo}:1")
    name = engine.track_container(engine.unique("pulled"))
    assert engine.docker("run", "--name", name, f"{repo}:1", "cat", "/value").stdout.decode().strip() == token
