"""benchmarks/torch_build.py reads where a build's time went from BuildKit's plain log: checked on the
logs of a real cold build of examples/torch (gpuenv's, uv; the hand-written one, pip), trimmed to the
lines it reads (tests/fixtures/bench/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import torch_build  # noqa: E402

LOGS = ROOT / "tests" / "fixtures" / "bench"


def _installs(log: str) -> dict[str, dict]:
    return torch_build.where_time_went((LOGS / log).read_text())["installs"]


def test_gpuenv_build_splits_uv_prepare_from_install_and_finds_apt_and_export():
    time = torch_build.where_time_went((LOGS / "gpuenv-torch-cold.log").read_text())
    framework = next(v for k, v in time["installs"].items() if k.startswith("[stage-3 2/8]"))
    assert framework == {"seconds": 30.0, "uv_prepared_s": 16.81, "uv_installed_s": 12.4, "distributions": 29}
    tools = next(v for k, v in time["installs"].items() if k.startswith("[stage-3 3/8]"))
    assert (tools["uv_prepared_s"], tools["uv_installed_s"], tools["distributions"]) == (0.76, 1.55, 88)
    assert (time["apt_s"], time["export_s"]) == (10.4, 20.4)


def test_handwritten_build_splits_pip_download_from_install():
    torch = next(v for k, v in _installs("hand-torch-cold.log").items() if "torch==2.15.0" in k)
    assert torch["seconds"] == 45.3
    assert torch["pip_resolve_download_s"] == 13.57
    assert torch["pip_install_s"] == pytest.approx(31.73)
    assert torch["pip_downloads"] == 29


@pytest.mark.parametrize("text, seconds", [("16.81s", 16.81), ("764ms", 0.76), ("1m 02s", 62.0), ("soon", 0.0)])
def test_uv_durations(text, seconds):
    assert torch_build._uv_seconds(text) == seconds


def test_handwritten_file_must_pin_the_plans_torch():
    assert "pip3 install torch==2.15.0 && : t\n" in torch_build.handwritten("t", "2.15.0")
    with pytest.raises(SystemExit, match="does not pin torch==2.4.1"):
        torch_build.handwritten("t", "2.4.1")


def test_handwritten_rebuild_adds_one_pip_line_before_workdir():
    text = torch_build.handwritten("t", "2.15.0", "tomli")
    assert text.index("pip3 install tomli && : t\n") < text.index("WORKDIR")
    assert text.count("pip3 install") == 4
    assert "BENCH_ROUND=t" in text


def test_every_run_of_a_continued_dockerfile_ends_with_the_round_tag():
    text = "FROM x\nRUN a \\\n    && b\nCOPY c d\nRUN e\n"
    tagged = "FROM x\nRUN a \\\n    && b && : bench-1\nCOPY c d\nRUN e && : bench-1\n"
    assert torch_build.tagged(text, "bench-1") == tagged
    with pytest.raises(SystemExit, match="exec-form"):
        torch_build.tagged('RUN ["a"]\n', "t")


def test_a_step_through_uv_install_sh_is_split_and_says_when_it_kept_the_wheels():
    """gpuenv's pinned steps now run .gpuenv/uv-install.sh (BuildKit's plain log, in its format)."""
    log = "\n".join([
        '#11 [stage-3 2/8] RUN --mount=type=cache,id=x/root/.cache/uv,target=/root/.cache/uv,sharing=locked '
        '    sh /tmp/gpuenv-lock/uv-install.sh "$(command -v python3)" --no-deps --require-hashes '
        '-r /tmp/gpuenv-lock/frameworks.txt  && : bench-torch-000000',
        "#11 14.10 Prepared 29 packages in 13.80s",
        "#11 14.40 Installed 29 packages in 301ms",
        "#11 19.90 gpuenv: 4391 MB in 14s: keeping them in the cache mount for the next build of this step",
        "#11 DONE 20.5s",
        "#12 exporting to image",
        "#12 DONE 19.2s",
    ])
    time = torch_build.where_time_went(log)
    (step,) = time["installs"].values()
    assert step == {"seconds": 20.5, "uv_prepared_s": 13.8, "uv_installed_s": 0.3, "distributions": 29,
                    "wheels_kept_in_mount": True}
    assert time["export_s"] == 19.2 and time["other_steps_s"] == 0.0
