"""Pip steps rendered from the resolution: each installs exactly its pins (bound-in requirements file,
--no-deps, --require-hashes when all are hashed), uv where it runs on the target Python and pip below,
the framework layer untouched by an added package; an unresolved plan renders as before. The pinned
jax-cpu Dockerfile is a golden: tests/golden/pinned/ (`--update-goldens`, then review the diff)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.errors import GpuenvError
from gpuenv.lock import locked
from gpuenv.lock.built import pending
from gpuenv.lock.lockfile import from_data, to_text
from gpuenv.lock.resolution import lock_from_plan
from gpuenv.render import render
from gpuenv.render.dockerfile import dockerfile, locked_file
from gpuenv.render.recipe import Inputs, installer_for, step_file
from gpuenv.resolve.resolved import Pin, Resolved, StepPins, unresolved
from gpuenv.tomlcompat import tomllib

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "pinned" / "jax-cpu" / "Dockerfile"
FIXED = Inputs(uid=1000, gid=1000, tokens={"JUPYTER_TOKEN": "t", "GPUENV_GATEWAY_TOKEN": "g"})
PYPI = "https://pypi.org/simple"
UV = 'sh /tmp/gpuenv-lock/uv-install.sh "$(command -v python3)" --no-deps'


def _pin(name: str, version: str, *hashes: str) -> Pin:
    return Pin(name, version, hashes, PYPI)


FRAMEWORKS = StepPins("frameworks", ("jax==0.10.2",), (_pin("jax", "0.10.2", "sha256:aa", "sha256:ab"),
                                                       _pin("jaxlib", "0.10.2", "sha256:ac"),
                                                       _pin("numpy", "2.1.3", "sha256:ad")))
TOOLS = StepPins("tools", ("jupyterlab",), (_pin("jupyterlab", "4.4.1", "sha256:ba"),))
PACKAGES = StepPins("packages-1", ("matplotlib",), (_pin("matplotlib", "3.9.2", "sha256:ca"),))


def _resolved(*steps: StepPins) -> Resolved:
    return Resolved("resolved", steps or (FRAMEWORKS, TOOLS, PACKAGES), "3.11", "x86_64-manylinux_2_28", (PYPI,))


def _planned(packages: tuple[str, ...] = (), resolved: Resolved = None):
    request, spec = request_from_spec(ROOT / "examples" / "jax-cpu" / "gpuenv.toml")
    if packages:
        spec = spec.model_copy(update={"packages": list(packages)})
        request = dataclasses.replace(request, packages=packages)
    planned = plan(request, target_for(TargetFlags(), spec, probe=False))
    return dataclasses.replace(planned, resolved=resolved), spec


def test_a_resolved_plan_installs_exactly_each_step_with_hashes(update_goldens: bool) -> None:
    plan_, spec = _planned(resolved=_resolved())
    rendered = render(plan_, spec, FIXED)
    text = rendered.text("Dockerfile")
    for step in ("frameworks", "tools", "packages-1"):
        assert f"--mount=type=bind,source=.gpuenv/lock/{step}.txt,target=/tmp/gpuenv-lock/{step}.txt" in text
        assert f"{UV} --require-hashes -r /tmp/gpuenv-lock/{step}.txt" in text
        assert rendered.text(locked_file(step)) == step_file(step, plan_.resolved.requirements_text(step))
    assert text.index("frameworks.txt") < text.index("tools.txt") < text.index("packages-1.txt")
    assert "install jax==0.10.2" not in text and "install matplotlib" not in text
    assert "FROM python AS uv" in text and "--require-hashes --target /opt/uv -r /tmp/gpuenv-lock/uv.txt" in text
    assert "uv==" in rendered.text(".gpuenv/uv.txt") and "--hash=sha256:" in rendered.text(".gpuenv/uv.txt")
    assert "pip uninstall --yes rfc3987-syntax" in text                # the tools step's trim stays
    assert 'jax==0.10.2' in dict(rendered.recipe.labels)["io.gpuenv.frameworks"]
    if update_goldens:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_adding_a_package_leaves_the_framework_layer_alone() -> None:
    one = render(*_planned(resolved=_resolved()), FIXED)
    more = StepPins("packages-2", ("matplotlib", "six"), (_pin("six", "1.17.0", "sha256:da"),))
    two = render(*_planned(("matplotlib", "six"), _resolved(FRAMEWORKS, TOOLS, PACKAGES, more)), FIXED)
    a, b = one.text("Dockerfile"), two.text("Dockerfile")
    cut = a.index("-r /tmp/gpuenv-lock/packages-1.txt")
    assert _instructions(a[:cut]) == _instructions(b[:cut])            # every layer up to the new step is the same
    assert one.text(locked_file("frameworks")) == two.text(locked_file("frameworks"))
    assert f"{UV} --require-hashes -r /tmp/gpuenv-lock/packages-2.txt" in b
    assert "six==1.17.0" in two.text(locked_file("packages-2"))
    moved = StepPins("frameworks", FRAMEWORKS.requires, FRAMEWORKS.pins[:2] + (_pin("numpy", "2.2.0", "sha256:ae"),))
    three = render(*_planned(("matplotlib", "six"), _resolved(moved, TOOLS, PACKAGES, more)), FIXED)
    assert three.text(locked_file("frameworks")) != one.text(locked_file("frameworks"))   # a framework pin moved


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions (comments are no layer: the header names the spec's hash)."""
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_an_unresolved_plan_renders_as_before() -> None:
    plain = render(*_planned(), FIXED)
    assert render(*_planned(resolved=unresolved("no index answered: https://pypi.org/simple")), FIXED).files == \
        plain.files
    text = plain.text("Dockerfile")
    assert "python3 -m pip install jax==0.10.2" in text and "/opt/uv" not in text


def test_uv_where_it_runs_and_pip_below() -> None:
    assert [installer_for(v) for v in ("2.7", "3.5", "3.6", "3.11", "3.14")] == ["pip", "pip", "uv", "uv", "uv"]
    recipe = render(*_planned(resolved=_resolved()), FIXED).recipe
    text = dockerfile(dataclasses.replace(recipe, installer="pip"))
    assert "python3 -m pip install --no-deps --require-hashes -r /tmp/gpuenv-lock/frameworks.txt" in text
    assert "/opt/uv" not in text and "AS uv" not in text and "FROM system\n" in text


def test_unhashed_pins_drop_require_hashes_and_foreign_step_ids_make_no_file() -> None:
    mixed = StepPins("frameworks", ("jax",), (_pin("jax", "0.10.2", "sha256:aa"), _pin("mine", "1.0")))
    rendered = render(*_planned(resolved=_resolved(mixed, StepPins("../../etc/x", (), FRAMEWORKS.pins))), FIXED)
    assert f"{UV} -r /tmp/gpuenv-lock/frameworks.txt" in rendered.text("Dockerfile")
    assert "mine==1.0\n" in rendered.text(locked_file("frameworks"))
    assert [f.path for f in rendered.files if "etc" in f.path] == []
    assert "python3 -m pip install jupyterlab" in rendered.text("Dockerfile")   # a step with no pins: as named


def test_the_lock_from_the_resolution_renders_the_same_image() -> None:
    plan_, spec = _planned(resolved=_resolved())
    rendered = render(plan_, spec, FIXED)
    prepared = SimpleNamespace(rendered=rendered, image=rendered.image)
    made = lock_from_plan(prepared, None)
    back = from_data(tomllib.loads(to_text(made)))
    assert back == made and back.image.id == "" and back.apt == ()
    assert [(s.id, [(p.name, p.version, p.hashes, p.index) for p in s.packages]) for s in back.steps] == \
        [(s.id, [(p.name, p.version, p.hashes, p.index) for p in s.pins]) for s in plan_.resolved.steps]
    again = render(plan_, spec, dataclasses.replace(FIXED, locked=locked.requirement_files(back)))
    assert again.image == rendered.image                               # `build --locked` reuses that image
    assert pending(back, SimpleNamespace(rendered=again)) and pending(back, prepared)
    assert not pending(dataclasses.replace(back, image=dataclasses.replace(back.image, id="sha256:1")), prepared)
    assert not pending(back, SimpleNamespace(rendered=render(*_planned(), FIXED)))


def test_uv_hash_mismatch_names_the_package() -> None:
    # uv 0.13.10's refusal of a forged hash, as it printed it here on 2026-12-07
    log = ("error: Failed to download `six==1.17.0`\n  cause: Hash mismatch for `six==1.17.0`\n\n"
           "         Expected:\n           sha256:0000\n\n         Computed:\n           sha256:4721\n")
    error = locked.explain(GpuenvError("the build failed at [stage-2 3/9] RUN ..."), log)
    assert "six==1.17.0 does not match the hashes in gpuenv.lock" in error.message and "gpuenv lock" in error.hint
    other = locked.explain(GpuenvError("x"), log, "the resolution's pins")
    assert "in the resolution's pins" in other.message


@pytest.mark.parametrize("bad", ['{"name": "x; rm", "version": "1"}', '{"name": "x", "version": "1 --index-url=h"}'])
def test_a_lock_cannot_smuggle_a_line_into_a_requirements_file(bad: str) -> None:
    made = lock_from_plan(SimpleNamespace(rendered=render(*_planned(resolved=_resolved()), FIXED), image="i"), None)
    data = tomllib.loads(to_text(made))
    data["step"][0]["package"][0].update(json.loads(bad))
    with pytest.raises(ValueError):
        from_data(data)


def test_a_pin_of_another_index_names_it_in_its_step_file() -> None:
    wheels = "https://wheels.example/simple"
    other = StepPins("frameworks", ("jax",), FRAMEWORKS.pins[:2] + (Pin("numpy", "2.1.3", ("sha256:ad",), wheels),))
    plan_, spec = _planned(resolved=_resolved(other, TOOLS, PACKAGES))
    rendered = render(plan_, spec, FIXED)
    text = rendered.text(locked_file("frameworks"))
    assert text.count("--extra-index-url") == 1 and f"--extra-index-url {wheels}\n" in text
    assert "--extra-index-url" not in rendered.text(locked_file("tools"))      # PyPI is the build's own index
    assert f"{UV} --require-hashes -r /tmp/gpuenv-lock/frameworks.txt" in rendered.text("Dockerfile")
    made = lock_from_plan(SimpleNamespace(rendered=rendered, image=rendered.image), None)
    assert locked.requirement_files(from_data(tomllib.loads(to_text(made))))[0] == ("frameworks", text)
    data = tomllib.loads(to_text(made))
    data["step"][0]["package"][2]["index"] = "https://x.example/simple\n--trusted-host x.example"
    with pytest.raises(ValueError, match="index"):
        from_data(data)
