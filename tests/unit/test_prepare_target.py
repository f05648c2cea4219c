"""`gpuenv up` plans for the driver and GPUs of the engine's host: a remote engine's, as its probe saw
them, not the machine gpuenv runs on (found by a fresh reader of environment.prepare's types)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuenv import environment, planning
from gpuenv.errors import ImpossibleRequest
from tests.unit.host.recorded import H200, HOSTS, engine_of, report_of


def test_a_remote_engines_host_is_the_target():
    engine = replace(engine_of(H200), remote=True, endpoint="ssh://me@gpu1")
    report = report_of(H200, engine)
    target = planning.target_for(planning.TargetFlags(), None, seen=environment._seen(report))
    assert target.driver == report.driver.version and target.driver.startswith("580.")
    assert [g.cc for g in target.gpus] == ["9.0"] * len(report.driver.gpus)
    assert target.origin == "the engine's host (ssh://me@gpu1)"


def test_a_local_engines_host_is_this_host():
    report = report_of(H200)
    target = planning.target_for(planning.TargetFlags(), None, seen=environment._seen(report))
    assert target.driver == report.driver.version and target.origin == "this host"


def test_a_seen_host_without_a_driver_plans_without_a_driver_limit():
    target = planning.target_for(planning.TargetFlags(), None, seen=planning.Seen(None, "the engine's host (x)"))
    assert target.driver is None and target.gpus == () and "no NVIDIA driver" in target.origin


def test_up_plans_for_the_remote_engines_driver_not_this_machines(tmp_path):
    """environment.prepare (the `up` path) with a remote engine whose host has driver 384: CUDA 12.4 is
    refused for that driver (this machine has none, which would have let it through)."""
    old = HOSTS / "upstream-openpai-2x-gtx1070-384"
    report = report_of(old, replace(engine_of(H200), remote=True, endpoint="ssh://me@old-server"))
    assert report.driver.version.startswith("384.")
    (tmp_path / "gpuenv.toml").write_text('name = "x"\n[gpu]\ncuda = "12.4"\n')
    with pytest.raises(ImpossibleRequest) as refused:
        environment.prepare(tmp_path / "gpuenv.toml", lambda: (report, None), lambda _: None, files_only=True)
    assert report.driver.version in refused.value.message, refused.value.message
