"""What `gpuenv up` gives each container for [run] cpus, memory and pids (docker run's flags, in the config
hash), MAX_JOBS in a toolkit = "devel" environment's environment, and what compose.yaml carries instead
(the spec's own limits only). The real engine is tests/integration/test_limits.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from gpuenv.host.access import RunArgs
from gpuenv.host.limits import GIB, HostSize, Limits
from gpuenv.run.container import Host, launches


def _rendered(extra: str, tmp_path: Path, frameworks: str = '["jax"]'):
    from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
    from gpuenv.render import render
    from gpuenv.render.recipe import Inputs

    (tmp_path / "gpuenv.toml").write_text(f'name = "n"\npython = "3.11"\nframeworks = {frameworks}\n[gpu]\n'
                                          'devices = "none"\n' + extra)
    request, spec = request_from_spec(tmp_path / "gpuenv.toml")
    return render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, Inputs())


def _launch(recipe, tmp_path: Path, limits: Limits, size: HostSize = HostSize(16, 128 * GIB)):
    host = Host(tmp_path, "img:tag", (), RunArgs(()), "none", "none", (), 1000, limits=limits, size=size)
    return launches(recipe, host)[0]


def _flags(argv: tuple[str, ...]) -> dict[str, str]:
    wanted = ("--cpus", "--memory", "--memory-swap", "--pids-limit")
    return {a: argv[i + 1] for i, a in enumerate(argv) if a in wanted}


def test_each_container_gets_the_limits_and_a_change_recreates_it(tmp_path):
    recipe = _rendered("", tmp_path).recipe
    launch = _launch(recipe, tmp_path, Limits(15.0, 20 * GIB, 32768))
    assert _flags(launch.argv) == {"--cpus": "15", "--memory": f"{20 * GIB}b", "--memory-swap": f"{20 * GIB}b",
                                   "--pids-limit": "32768"}
    assert _flags(_launch(recipe, tmp_path, Limits()).argv) == {}
    assert launch.config != _launch(recipe, tmp_path, Limits(15.0, 21 * GIB, 32768)).config


def test_a_devel_environment_gets_max_jobs_from_its_limits(tmp_path):
    recipe = _rendered('toolkit = "devel"\n', tmp_path).recipe
    assert recipe.plan.toolchain is not None and recipe.plan.toolchain.level == "devel"
    env = dict(_launch(recipe, tmp_path, Limits(15.0, 20 * GIB, 32768)).environment)
    assert env["MAX_JOBS"] == "5"                                   # 20 GiB at 4 GiB a job, under 15 CPUs
    lifted = dict(_launch(recipe, tmp_path, Limits(None, None, None), HostSize(6, 128 * GIB)).environment)
    assert lifted["MAX_JOBS"] == "6"                                # no limit: the host's CPUs
    runtime = _rendered('toolkit = "runtime"\n', tmp_path).recipe
    assert "MAX_JOBS" not in dict(_launch(runtime, tmp_path, Limits(15.0, 20 * GIB)).environment)


def _compose(rendered) -> dict:
    return yaml.safe_load(rendered.text("compose.yaml"))


def test_compose_carries_only_the_spec_s_own_limits(tmp_path):
    auto = _rendered("", tmp_path)
    service = _compose(auto)["services"]["shell"]
    assert not {"cpus", "mem_limit", "memswap_limit", "pids_limit"} & set(service)
    assert "# Limits: `gpuenv up` gives each container defaults" in auto.text("compose.yaml")
    given = _rendered('[run]\ncpus = 7.5\nmemory = "32g"\npids = 4096\n', tmp_path)
    service = _compose(given)["services"]["shell"]
    assert (service["cpus"], service["mem_limit"], service["memswap_limit"], service["pids_limit"]) == (
        7.5, "32g", "32g", 4096)
    assert "# Limits:" not in given.text("compose.yaml")            # nothing left to the host
    lifted = _compose(_rendered('[run]\ncpus = "none"\nmemory = 0\npids = "none"\n', tmp_path))["services"]["shell"]
    assert not {"cpus", "mem_limit", "memswap_limit", "pids_limit"} & set(lifted)
    assert _compose(_rendered("[run]\ncpus = 8\n", tmp_path))["services"]["shell"]["cpus"] == 8


def test_compose_gives_a_devel_environment_max_jobs_when_the_spec_sizes_it(tmp_path):
    sized = _compose(_rendered('toolkit = "devel"\n[run]\ncpus = 8\nmemory = "16g"\n', tmp_path))
    assert sized["services"]["shell"]["environment"]["MAX_JOBS"] == "4"
    unsized = _compose(_rendered('toolkit = "devel"\n', tmp_path))["services"]["shell"]
    assert "MAX_JOBS" not in (unsized.get("environment") or {})
