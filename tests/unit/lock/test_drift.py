"""`lock --check`'s comparisons (lock/drift.py) on made-up engines and distributions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gpuenv.lock import drift
from gpuenv.lock.lockfile import BaseRef
from gpuenv.spec import load_spec
from .test_lockfile import ROOT, _Engine, _lock, _planned


def test_compare_names_added_removed_and_changed() -> None:
    found = drift.compare("image", {"numpy": "2.1.3", "six": "1.16.0", "jax": "0.10.2"},
                          {"numpy": "2.1.2", "jax": "0.10.2", "scipy": "1.14.1"}, "distribution")
    assert [(d.what, d.locked, d.now) for d in found] == [("numpy", "2.1.2", "2.1.3"), ("scipy", "1.14.1", ""),
                                                          ("six", "", "1.16.0")]
    assert found[0].message == "distribution numpy is 2.1.3 in the image, 2.1.2 in the lock"
    assert "not in the image" in found[1].message and "not in the lock" in found[2].message
    assert drift.compare("image", {"a": "1"}, {"a": "1"}, "x") == []


def test_the_spec_drifts_when_it_means_something_else(tmp_path: Path) -> None:
    plan_, spec = _planned("jax-cpu")
    lock = _lock(plan_, spec)
    assert drift.spec_drift(lock, spec) == []
    text = (ROOT / "examples" / "jax-cpu" / "gpuenv.toml").read_text()
    (tmp_path / "gpuenv.toml").write_text(text + "\n# a comment changes nothing\n")
    assert drift.spec_drift(lock, load_spec(tmp_path / "gpuenv.toml")) == []
    (tmp_path / "gpuenv.toml").write_text(text.replace('packages = ["matplotlib"]', 'packages = ["matplotlib", "six"]'))
    [found] = drift.spec_drift(lock, load_spec(tmp_path / "gpuenv.toml"))
    assert found.kind == "spec" and "gpuenv lock" in found.message


def test_the_base_drifts_by_id_or_digest() -> None:
    plan_, spec = _planned("jax-cpu")
    lock = _lock(plan_, spec)
    same = _Engine({"gpuenv-base/debian:bookworm": {"Id": "sha256:ff"}})
    assert drift.base_drift(lock, same) == ([], None)
    other = _Engine({"gpuenv-base/debian:bookworm": {"Id": "sha256:00"}})
    assert [d.now for d in drift.base_drift(lock, other)[0]] == ["sha256:00"]
    found, note = drift.base_drift(lock, _Engine({}))
    assert found == [] and "not on this engine" in note
    pinned = dataclasses.replace(lock, base=BaseRef("python:3.11", "python@sha256:5", "sha256:1"))
    moved = _Engine({"python:3.11": {"Id": "sha256:1", "RepoDigests": ["python@sha256:6"]}})
    assert [d.locked for d in drift.base_drift(pinned, moved)[0]] == ["python@sha256:5"]
