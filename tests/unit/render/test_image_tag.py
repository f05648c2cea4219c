"""The image tag in .env is a hash of what the build reads: the same files give the same tag, and any
change to the Dockerfile, a support file or the UID/GID gives another (an image is never reused stale)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuenv.render import File, image_tag, render, tag_for
from tests.unit.render.test_goldens import EXAMPLES, rendered_example


def context(rendered):
    return [f for f in rendered.files if f.path in ("Dockerfile", ".dockerignore") or f.path.startswith(".gpuenv/")]


def test_the_tag_is_the_hash_of_the_build_context():
    first = rendered_example("jax-cpu")
    again = rendered_example("jax-cpu")
    assert first.image == again.image == image_tag(first.recipe, context(first))
    assert first.image.startswith("gpuenv-jax-cpu:") and len(first.image.split(":")[1]) == 12


def test_any_change_to_what_the_build_reads_changes_the_tag():
    r = rendered_example("jax-cpu")
    files = context(r)
    base = image_tag(r.recipe, files)
    edited = [File(f.path, f.text + "# edited\n", f.mode) if f.path == "Dockerfile" else f for f in files]
    assert image_tag(r.recipe, edited) != base
    support = [replace(f, text=f.text + "\n") if f.path == ".gpuenv/jupyter_config.py" else f for f in files]
    assert image_tag(r.recipe, support) != base
    other_user = replace(r.recipe, inputs=replace(r.recipe.inputs, uid=r.recipe.inputs.uid + 1))
    assert image_tag(other_user, files) != base


def test_tokens_do_not_change_the_tag():
    """The tokens are in .env and compose.yaml only: a new token must not cost a rebuild."""
    r = rendered_example("jax-cpu")
    other = render(r.recipe.plan, r.recipe.spec, replace(r.recipe.inputs, tokens={"JUPYTER_TOKEN": "x" * 48,
                                                                                  "GPUENV_GATEWAY_TOKEN": "y" * 48}))
    assert other.image == r.image and other.text(".env") != r.text(".env")


@pytest.mark.parametrize("name", EXAMPLES)
def test_tag_for_another_user_is_the_tag_render_gives_that_user(name):
    """`gpuenv load` and `pull` name the copy of an image they make for another user with tag_for over
    the files the tag hashes (Rendered.context): it must be the tag `gpuenv up` plans for that user."""
    r = rendered_example(name)
    assert tag_for(r.recipe.name, r.recipe.inputs.uid, r.recipe.inputs.gid, r.context()) == r.image
    assert {f.path for f in r.context()} == {f.path for f in context(r)}
    other = render(r.recipe.plan, r.recipe.spec, replace(r.recipe.inputs, uid=4321, gid=4322))
    assert tag_for(r.recipe.name, 4321, 4322, r.context()) == other.image != r.image


def test_how_a_host_starts_it_does_not_change_the_tag():
    """The GPU mode a host has and the ports `up` published reach compose.yaml and devcontainer.json only."""
    r = rendered_example("torch")
    inputs = replace(r.recipe.inputs, gpu_mode="none", published=(("jupyter", 8888, 8890),))
    other = render(r.recipe.plan, r.recipe.spec, inputs)
    assert other.image == r.image
    assert other.text("compose.yaml") != r.text("compose.yaml") and "127.0.0.1:8890:8888" in other.text("compose.yaml")
