"""scripts/gpu/carry's wheels follow pyproject.toml: every runtime dependency the GPU machine lacks is
carried (zstandard was not, and scripts/gpu/up-run stopped at its first step), whatever pyproject adds."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "scripts" / "gpu" / "wheels.py")
wheels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wheels)

PYPROJECT = (ROOT / "pyproject.toml").read_text()


def names(reqs) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def test_every_runtime_dependency_the_gpu_machine_lacks_is_wanted():
    runtime = [Requirement(r) for r in wheels.pyproject_lists(PYPROJECT)["dependencies"]]
    lacking = {canonicalize_name(r.name) for r in runtime if wheels.applies(r)} - wheels.PRESENT
    assert lacking and lacking <= names(wheels.wanted(PYPROJECT))
    assert {"zstandard", "pydantic"} <= names(wheels.wanted(PYPROJECT))
    assert not names(wheels.wanted(PYPROJECT)) & wheels.PRESENT


def test_a_dependency_pyproject_adds_is_carried_and_one_for_old_pythons_is_not():
    added = PYPROJECT.replace('dependencies = [\n', 'dependencies = [\n  "brand-new-dep>=1.0",\n'
                              '  "backport-only>=1; python_version < \'3.10\'",\n', 1)
    got = {canonicalize_name(r.name): str(r.specifier) for r in wheels.wanted(added)}
    assert got["brand-new-dep"] == ">=1.0" and "backport-only" not in got
    assert "tomli" not in got                     # tomli>=2.0; python_version < '3.11': the target is 3.12


def test_the_test_extra_gives_what_the_gpu_tests_import_and_not_the_browser():
    wanted = names(wheels.wanted(PYPROJECT))
    assert wheels.TEST_PROJECTS <= wanted and "playwright" not in wanted
    assert not wheels.TEST_PROJECTS & names(wheels.wanted(PYPROJECT, with_test=False))


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> None:
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n"
                   + "".join(f"Requires-Dist: {r}\n" for r in requires))


def test_the_check_finds_a_requirement_nobody_meets(tmp_path):
    _wheel(tmp_path, "pydantic", "2.14.4", ["typing-extensions>=4.16", "annotated-types>=0.6",
                                            "email-validator>=2; extra == 'email'"])
    _wheel(tmp_path, "annotated-types", "0.8.0", [])
    problems = wheels.check(tmp_path, [Requirement("pydantic>=2.5"), Requirement("zstandard>=0.21")])
    assert any("typing-extensions" in p and "neither carried" in p for p in problems), problems
    assert any("zstandard" in p for p in problems) and not any("email" in p for p in problems)
    _wheel(tmp_path, "typing-extensions", "4.10.0", [])
    assert any("carried typing-extensions 4.10.0" in p for p in wheels.check(tmp_path, [Requirement("pydantic")]))
