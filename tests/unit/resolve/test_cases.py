"""Resolution cases: a request and a machine, and what the plan must be (or why none exists).

The cases live in cases.toml, each with the fact it rests on. A case names only the keys it is
about; `packages` must appear in order at the front of the plan's packages; `message` and
`alternatives` are substrings that must be present.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuenv import planning
from gpuenv.errors import ImpossibleRequest
from gpuenv.tomlcompat import tomllib

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
CASES = tomllib.loads((HERE / "cases.toml").read_text("utf-8"))["case"]


def _plan(case: dict):
    flags = planning.TargetFlags(case.get("driver"), tuple(case.get("gpu_names", [])), tuple(case.get("ccs", [])))
    if "spec" in case:
        request, spec = planning.request_from_spec(ROOT / case["spec"], case.get("python"))
        target = planning.target_for(flags, spec, probe=False)
    else:
        request = planning.request_from_words(case["request"], case.get("python"))
        if "base" in case:
            request = type(request)(**{**request.__dict__, "base": case["base"]})
        target = planning.target_for(flags, None, probe=False)
    return planning.plan(request, target)


def test_there_are_enough_cases_and_every_one_says_why():
    assert len(CASES) >= 100
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert all(c.get("why") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case):
    expect = case.get("expect", {})
    error = case.get("error")
    if error:
        with pytest.raises(ImpossibleRequest) as caught:
            _plan(case)
        exc = caught.value
        assert exc.code == error["code"], exc.message
        for part in error.get("message", []):
            assert part in exc.message
        for part in error.get("alternatives", []):
            assert any(part in alt for alt in exc.alternatives), exc.alternatives
        return
    data = _plan(case).to_dict()
    for key, value in expect.items():
        if key == "packages":
            assert data["packages"][: len(value)] == value
        elif key == "packages_exclude":
            assert not any(p.startswith(tuple(value)) for p in data["packages"]), data["packages"]
        elif key == "gpu_archs_include":
            assert set(value) <= set(data["gpu_archs"]), data["gpu_archs"]
        elif key == "pip_options":
            assert data["pip_options"] == value
        elif key == "reasons":
            for part in value:
                assert any(part in r for r in data["reasons"]), data["reasons"]
        elif key == "base_build":
            assert data["base"]["build"] == value
        else:
            assert data[key] == value, (key, data[key], data["reasons"])
