"""A base that cannot be pulled: the plan (and so gpuenv.lock) holds a short, stable cause; what the engine
said (a resolver's address, a proxy's words, the day) goes to the terminal only."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import pytest

from gpuenv import planning
from gpuenv.images import base
from gpuenv.environment import _on_local_base
from gpuenv.lock.lockfile import Lock, BaseRef, ImageRef, plan_data, to_text

PLANNED, LOCAL = "python:3.14-slim-bookworm", "gpuenv-base/debian:bookworm"
DNS = [
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io '
    'on 10.0.0.2:53: server misbehaving',
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
    'Temporary failure in name resolution',
]


@dataclass
class Engine:
    """The two things ensure asks an engine: is this image here, and a pull (which fails as told)."""

    said: str
    present: set = field(default_factory=lambda: {LOCAL})
    client: str = "docker"

    def image(self, ref: str):
        return {"Id": "sha256:" + "0" * 64} if ref in self.present else None

    def run(self, *args, **_):
        return subprocess.CompletedProcess(args, 1, "", self.said + "\n")


@pytest.mark.parametrize("said", DNS)
def test_a_dns_failure_is_the_registry_is_unreachable_in_the_note_and_said_in_full(said, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    choice = base.ensure(Engine(said), PLANNED, "debian12", None, None, False, lambda line: None)
    assert choice.how == "bootstrapped" and choice.image == LOCAL
    assert "(the registry is unreachable)" in choice.note
    assert "lookup" not in choice.note and "10.0.0.2" not in choice.note and "Temporary" not in choice.note
    assert said in choice.detail
    again = base.ensure(Engine(said), PLANNED, "debian12", None, None, False, lambda line: None)
    assert again.how == "remembered" and again.note == choice.note and said in again.detail


def test_the_lock_of_two_hosts_with_different_resolvers_is_the_same(tmp_path, monkeypatch):
    texts = []
    for i, said in enumerate(DNS):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / str(i)))
        choice = base.ensure(Engine(said), PLANNED, "debian12", None, None, False, lambda line: None)
        request = planning.request_from_words(["jax", "cpu"])
        target = planning.target_for(planning.TargetFlags(), probe=False)
        plan = _on_local_base(request, target, planning.plan(request, target), choice, tmp_path / "gpuenv.toml", None)
        lock = Lock("0" * 64, "2026-12-07", "0", plan_data(plan), BaseRef(LOCAL), ImageRef("t"), ())
        texts.append(to_text(lock))
    assert texts[0] == texts[1]
    assert "name resolution" not in texts[0] and "misbehaving" not in texts[0]


@pytest.mark.parametrize("said,cause", [
    ("Error response from daemon: manifest for python:9 not found: manifest unknown", "has no such image"),
    ("Error response from daemon: unauthorized: authentication required", "refused the login"),
    ("Error response from daemon: toomanyrequests: You have reached your pull rate limit", "pull limit"),
    ("x509: certificate signed by unknown authority", "does not trust"),
    ("something new", "the pull failed"),
])
def test_other_pull_failures_have_their_own_short_cause(said, cause):
    assert cause in base.pull_failure(said)
