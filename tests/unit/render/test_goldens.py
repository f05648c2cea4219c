"""Every example's generated folder, byte for byte, against tests/golden/generate/<example>/.

The examples are planned for the machine their spec describes (no probe of this host) and rendered
with fixed host facts, so the goldens are the same on every machine. After a deliberate change:
`scripts/test tests/unit/render --update-goldens`, then review `git diff tests/golden`.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.render import Rendered, render
from gpuenv.render.recipe import Inputs

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "generate"
EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/gpuenv.toml"))
FIXED = Inputs(workspace=".", uid=1000, gid=1000, project="", ssh_key="/home/you/.ssh/id_ed25519.pub",
               tokens={"JUPYTER_TOKEN": "golden-jupyter-token-not-a-secret",
                       "GPUENV_GATEWAY_TOKEN": "golden-gateway-token-not-a-secret"})


def rendered_example(name: str) -> Rendered:
    request, spec = request_from_spec(ROOT / "examples" / name / "gpuenv.toml")
    return render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, FIXED)


def _write(folder: Path, rendered: Rendered) -> None:
    for f in rendered.files:
        path = folder / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.text)
        path.chmod(f.mode)


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_files_match_the_golden_folder(name: str, update_goldens: bool) -> None:
    rendered, folder = rendered_example(name), GOLDEN / name
    if update_goldens:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        _write(folder, rendered)
    golden = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert golden == sorted(f.path for f in rendered.files), "files differ: run with --update-goldens and review"
    for f in rendered.files:
        assert (folder / f.path).read_text() == f.text, f"{name}/{f.path} differs from its golden copy"


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendering_is_deterministic(name: str) -> None:
    assert rendered_example(name).files == rendered_example(name).files


def test_every_example_has_a_golden_folder() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == EXAMPLES


def test_the_env_file_is_private_and_scripts_are_executable() -> None:
    for name in EXAMPLES:
        modes = {f.path: f.mode for f in rendered_example(name).files}
        assert modes[".env"] == 0o600
        assert all(mode & stat.S_IXUSR for path, mode in modes.items() if path.endswith(".sh"))


# The same example for a host whose GPU mode is `none` (`gpuenv doctor`; this machine): no GPU request in
# compose.yaml (it would stop the container: `could not select device driver "nvidia"`), the GPU
# "optional" in devcontainer.json. tests/golden/generate/torch keeps the request of a host with a GPU.
GPU_NONE = ROOT / "tests" / "golden" / "gpu-none" / "torch"
STARTS_IT = ("compose.yaml", ".devcontainer/devcontainer.json")


def test_a_host_without_a_gpu_gets_files_that_start_there(update_goldens: bool) -> None:
    from dataclasses import replace

    planned = rendered_example("torch")
    r = planned.recipe
    rendered = render(r.plan, r.spec, replace(FIXED, gpu_mode="none"))
    if update_goldens:
        for path in STARTS_IT:
            (GPU_NONE / path).parent.mkdir(parents=True, exist_ok=True)
            (GPU_NONE / path).write_text(rendered.text(path))
    for path in STARTS_IT:
        assert (GPU_NONE / path).read_text() == rendered.text(path), f"gpu-none/torch/{path} differs"
    assert "driver: nvidia" in planned.text("compose.yaml") and "driver: nvidia" not in rendered.text("compose.yaml")
    assert rendered.image == planned.image          # the same image: only how it is started differs
