"""The step partition of lock/partition.py on recorded and hand-made metadata."""

from __future__ import annotations

import json
from pathlib import Path

from gpuenv.lock.lockfile import SYSTEM_STEP
from gpuenv.lock.partition import Dist, closure, partition

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lock"
ENV = {"implementation_name": "cpython", "implementation_version": "3.11.2", "os_name": "posix",
       "platform_machine": "x86_64", "platform_release": "6.1.0", "platform_system": "Linux",
       "platform_version": "#1 SMP", "python_full_version": "3.11.2", "platform_python_implementation": "CPython",
       "python_version": "3.11", "sys_platform": "linux"}


def _names(parts: list[tuple[str, list[Dist]]]) -> dict[str, list[str]]:
    return {step: [d.key for d in dists] for step, dists in parts}


def test_markers_decide_what_a_step_pulls_in() -> None:
    dists = [Dist("app", "1", ("tomli>=1; python_version < '3.11'", "colorama; sys_platform == 'win32'",
                               "typing-extensions; python_version >= '3.8'")),
             Dist("tomli", "2"), Dist("colorama", "0.4"), Dist("typing_extensions", "4.12")]
    parts = _names(partition(dists, [("packages-1", ("app",))], [], ENV))
    assert parts["packages-1"] == ["app", "typing-extensions"]
    assert parts[SYSTEM_STEP] == ["colorama", "tomli"]       # installed, but not by this step's closure


def test_extras_are_followed_only_when_asked_for() -> None:
    dists = [Dist("jax", "0.4", ("numpy", "jaxlib; extra == 'cpu'", "pytest; extra == 'test'")),
             Dist("jaxlib", "0.4"), Dist("numpy", "2.1"), Dist("pytest", "8")]
    assert _names(partition(dists, [("frameworks", ("jax[cpu]==0.4",))], [], ENV))["frameworks"] == \
        ["jax", "jaxlib", "numpy"]
    assert _names(partition(dists, [("frameworks", ("jax==0.4",))], [], ENV))["frameworks"] == ["jax", "numpy"]


def test_an_extra_asked_later_adds_its_dependencies_to_the_later_step() -> None:
    dists = [Dist("jax", "0.4", ("numpy", "jaxlib; extra == 'cpu'")), Dist("jaxlib", "0.4"), Dist("numpy", "2.1")]
    parts = _names(partition(dists, [("frameworks", ("jax",)), ("packages-1", ("jax[cpu]",))], [], ENV))
    assert parts["frameworks"] == ["jax", "numpy"]
    assert parts["packages-1"] == ["jaxlib"]


def test_a_shared_dependency_belongs_to_the_first_step_that_needs_it() -> None:
    dists = [Dist("jax", "0.4", ("numpy>=1.26",)), Dist("matplotlib", "3.9", ("numpy>=1.23", "pillow")),
             Dist("numpy", "2.1"), Dist("pillow", "11"), Dist("pip", "24"), Dist("setuptools", "66")]
    steps = [("python", ("pip",)), ("frameworks", ("jax",)), ("packages-1", ("matplotlib",))]
    parts = _names(partition(dists, steps, ["setuptools"], ENV))
    assert parts == {"python": ["pip"], "frameworks": ["jax", "numpy"], "packages-1": ["matplotlib", "pillow"],
                     SYSTEM_STEP: []}         # the base's setuptools is no step's and not the system's either


def test_cumulative_package_steps_claim_only_what_is_new() -> None:
    dists = [Dist("a", "1", ("c",)), Dist("b", "1", ("c", "d")), Dist("c", "1"), Dist("d", "1")]
    parts = _names(partition(dists, [("packages-1", ("a",)), ("packages-2", ("a", "b"))], [], ENV))
    assert parts["packages-1"] == ["a", "c"] and parts["packages-2"] == ["b", "d"]


def test_a_dependency_cycle_ends() -> None:
    dists = [Dist("a", "1", ("b",)), Dist("b", "1", ("a",))]
    assert closure({d.key: d for d in dists}, ["a"], ENV) == ["a", "b"]


def test_what_pip_left_behind_goes_to_the_step_that_uninstalled() -> None:
    """The tools step uninstalls rfc3987-syntax and keeps its lark (render/dockerfile.py)."""
    dists = [Dist("jupyterlab", "4", ()), Dist("lark", "1.3", installer="pip"), Dist("wheel", "0.38")]
    parts = _names(partition(dists, [("tools", ("jupyterlab",)), ("packages-1", ("x",))], [], ENV))
    assert parts["tools"] == ["jupyterlab", "lark"] and parts[SYSTEM_STEP] == ["wheel"]


def test_the_recorded_jax_cpu_image_splits_by_step() -> None:
    data = json.loads((FIXTURES / "jax-cpu-dists.json").read_text())
    dists = [Dist(d["name"], d["version"], tuple(d["requires"]), d["installer"]) for d in data["dists"]]
    steps = [("python", ("pip",)), ("frameworks", ("jax==0.10.2",)), ("tools", ("jupyterlab",)),
             ("packages-1", ("matplotlib",))]
    parts = _names(partition(dists, steps, [], data["env"]))
    assert parts["python"] == ["pip"]
    assert set(parts["frameworks"]) == {"jax", "jaxlib", "ml-dtypes", "numpy", "opt-einsum", "scipy"}
    assert {"contourpy", "cycler", "fonttools", "kiwisolver", "matplotlib", "pillow", "pyparsing"} == \
        set(parts["packages-1"])                              # numpy is the framework's; python-dateutil the tools'
    assert "jupyterlab" in parts["tools"] and "lark" in parts["tools"] and "python-dateutil" in parts["tools"]
    assert parts[SYSTEM_STEP] == ["setuptools", "wheel"]      # Debian's python3-pip brought them
    every = [k for keys in parts.values() for k in keys]
    assert sorted(every) == sorted({d.key for d in dists})    # each exactly once
