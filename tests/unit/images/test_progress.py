"""BuildKit's plain progress, read from recorded builds (tests/fixtures/buildkit, SOURCE.md says how)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator, List

import pytest
from rich.console import Console

from gpuenv.images.progress import CACHED, CANCELED, DONE, ERROR, BuildLog, clean_error, size_of
from gpuenv.images.progress_view import follow, render

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "buildkit"
ENGINES = ["docker-20.10", "buildx-0.13"]
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
COLD_STEPS = [
    "[system 1/3] FROM docker.io/gpuenv-test/debian:bookworm",
    '[system 2/3] RUN echo "nonce {nonce}" && apt-get update && apt-get install -y --no-install-recommends '
    "python3-pip python3-venv",
    '[system 3/3] RUN for i in 1 2 3; do echo "system line $i"; done',
    '[python 1/2] RUN python3 -m venv /opt/venv && echo "venv {nonce}"',
    "[python 2/2] RUN --mount=type=cache,target=/root/.cache/pip,id=gpuenv-progress-fixture-pip     "
    "--mount=type=secret,id=ca     PIP_CERT=/run/secrets/ca /opt/venv/bin/pip install --progress-bar on numpy==2.1.3",
    "[app 1/3] WORKDIR /code",
    "[app 2/3] COPY app/ /code/",
    "[app 3/3] RUN /opt/venv/bin/python -c \"import numpy; print('numpy', numpy.__version__)\" && "
    "python3 /code/main.py",
]
NONCE = {"docker-20.10": "1795341950620872969", "buildx-0.13": "1795342167824323657"}
COLD_IMAGE = {"docker-20.10": "sha256:7b98170e0d92e8a4853b5d347dd576976d5803e23f2c031d1b5d38fd94aa5d50",
              "buildx-0.13": "sha256:2ca7349e76a30213673c5713fef3de612dfae93f6f65328dd5f6e43d2bd9bd75"}
FAILED_RUN = '[3/4] RUN echo "checking the toolchain" && echo "gcc: not found" >&2 && exit 1'


class Ticks:
    """A clock that moves 0.01 s each time it is read."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def lines_of(name: str) -> List[str]:
    """The lines as a build runner reading the pipe gets them: split on \\n only (apt's \\r stay in)."""
    return (FIXTURES / name).read_bytes().decode("utf-8").split("\n")


def parsed(name: str, upto: int = -1) -> BuildLog:
    log = BuildLog(clock=Ticks())
    for line in lines_of(name)[:upto] if upto >= 0 else lines_of(name):
        log.feed(line)
    if upto < 0:
        log.close()
    return log


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cold_build_has_its_dockerfile_steps_bytes_and_image(engine: str) -> None:
    log = parsed(f"{engine}/cold.log")
    steps = log.steps()
    assert [step.name for step in steps] == [name.format(nonce=NONCE[engine]) for name in COLD_STEPS]
    assert [(step.stage, step.index, step.total) for step in steps][:2] == [("system", 1, 3), ("system", 2, 3)]
    assert steps[1].instruction.startswith("RUN echo")
    assert [step.status for step in steps] == [CACHED] + [DONE] * 7     # the local base is a cache hit
    assert steps[1].duration == {"docker-20.10": 14.7, "buildx-0.13": 13.6}[engine]
    assert steps[1].last_line == "done." and len(steps[1].tail) == 20
    assert list(steps[2].tail) == ["system line 1", "system line 2", "system line 3"]
    summary = log.summary()
    assert (summary.steps, summary.cached, summary.built) == (8, 1, 7)
    # apt: "Fetched 6258 kB" + "Fetched 16.2 MB"; pip: "Downloading numpy-2.1.3-...whl (16.3 MB)"
    assert summary.downloaded == 6_258_000 + 16_200_000 + 16_300_000
    assert summary.context == 81_280       # "transferring context: 81.28kB done" of the build context
    assert IMAGE_ID.fullmatch(summary.image_id) and summary.image_id == COLD_IMAGE[engine]
    assert summary.names == ("docker.io/library/gpuenv-progress-fixture:" + ("cold" if "20.10" in engine
                                                                              else "bx-cold"),)
    assert summary.elapsed > 0 and log.error() is None and log.current() is None
    assert re.fullmatch(r"8 steps \(1 cached, 7 built\) in \d+\.\ds, 38\.8 MB downloaded, image sha256:[0-9a-f]{12}",
                        summary.describe())


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_build_again_is_all_cached(engine: str) -> None:
    log = parsed(f"{engine}/cached.log")
    steps = {step.instruction.split()[0] + " " + step.name.split("]")[0] + "]": step for step in log.steps()}
    assert len(steps) == 8
    assert all(step.status == CACHED for key, step in steps.items() if not key.startswith("FROM"))
    base = steps["FROM [system 1/3]"]
    assert base.status == DONE and base.duration == 0.0 and base.reused     # the second time: DONE 0.0s
    summary = log.summary()
    assert (summary.steps, summary.cached, summary.built, summary.downloaded) == (8, 8, 0, 0)
    assert summary.image_id == COLD_IMAGE[engine]      # the image of the cold build, unchanged


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failed_run_gives_its_step_output_and_exit_code(engine: str) -> None:
    log = parsed(f"{engine}/run-fails.log")
    failure = log.error()
    assert failure is not None and failure.step == FAILED_RUN
    assert failure.logs == ("checking the toolchain", "gcc: not found")
    assert failure.exit_code == 1
    assert failure.message == ('command failed with exit code 1: echo "checking the toolchain" && '
                               'echo "gcc: not found" >&2 && exit 1')
    assert "executor failed running [/bin/sh -c" in failure.raw
    assert [step.status for step in log.steps()] == [CACHED, DONE, ERROR]     # [4/4] never started
    assert log.steps()[1].last_line == "compile unit 30 of 30" and len(log.steps()[1].tail) == 20
    assert log.summary().image_id is None


def test_pip_without_the_proxy_ca_fails_with_pips_own_words() -> None:
    log = parsed("docker-20.10/pip-without-ca.log")
    failure = log.error()
    assert failure.step.startswith("[2/2] RUN echo \"no CA given") and failure.exit_code == 1
    assert any("CERTIFICATE_VERIFY_FAILED" in line for line in failure.logs)
    assert failure.logs[-1] == "ERROR: No matching distribution found for requests==2.32.3"
    assert log.downloaded == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_base_image_no_registry_answers_for(engine: str) -> None:
    failure = parsed(f"{engine}/missing-base-hub.log").error()
    assert failure.step == "[internal] load metadata for docker.io/gpuenv-test/nothing:here"
    assert failure.message.startswith('failed to do request: Head "https://registry-1.docker.io/v2/gpuenv-test/')
    assert failure.message.endswith("no such host") and failure.exit_code is None
    assert "rpc error" not in failure.message and "failed to solve" not in failure.message


def test_a_base_image_the_registry_does_not_have() -> None:
    failure = parsed("docker-20.10/missing-base-registry.log").error()
    assert failure.message == "127.0.0.1:5000/gpuenv-progress-fixture/nothing:here: not found"
    assert failure.step == "[internal] load metadata for 127.0.0.1:5000/gpuenv-progress-fixture/nothing:here"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dockerfile_syntax_error_has_no_step(engine: str) -> None:
    log = parsed(f"{engine}/syntax-error.log")
    failure = log.error()
    assert failure.step is None and failure.logs == ()
    assert failure.message == "dockerfile parse error line 3: unknown instruction: COPPY"
    assert log.steps() == []


@pytest.mark.parametrize("engine", ENGINES)
def test_pulling_the_base_counts_its_layers(engine: str) -> None:
    log = parsed(f"{engine}/pull-from-registry.log")
    pull = log.steps()[0]
    assert pull.instruction.startswith("FROM 127.0.0.1:5000/gpuenv-progress-fixture/pullbase:")
    assert pull.status == DONE and pull.active and not pull.reused
    assert log.downloaded == 48_010_000 + 1_070 + 617        # the layer, the config, the manifest
    assert log.summary().built == 2 and IMAGE_ID.fullmatch(log.image_id)


def test_a_layer_half_pulled_counts_what_came() -> None:
    lines = lines_of("buildx-0.13/pull-from-registry.log")
    upto = next(i for i, line in enumerate(lines) if "40.89MB / 48.01MB" in line) + 1
    log = parsed("buildx-0.13/pull-from-registry.log", upto)
    assert log.downloaded == 40_890_000 + 1_070 + 617
    assert log.current().index == 1


def test_interleaved_steps_keep_their_own_lines() -> None:
    log = parsed("docker-20.10/interleaved.log")
    steps = {step.stage: step for step in log.steps() if step.stage in ("left", "right")}
    assert len(log.steps()) == 7        # names printed again after "#6 ..." are not new steps
    assert list(steps["left"].tail) == [f"left {i}" for i in range(1, 13)]
    assert list(steps["right"].tail) == [f"right {i}" for i in range(1, 13)]
    assert (steps["left"].duration, steps["right"].duration) == (12.6, 10.8)


def test_a_failure_cancels_the_parallel_step() -> None:
    log = parsed("docker-20.10/parallel-fail-canceled.log")
    statuses = {step.stage: step.status for step in log.steps() if step.index == 1 and step.total == 1}
    assert statuses == {"slow": CANCELED, "broken": ERROR}
    failure = log.error()
    assert failure.step.startswith("[broken 1/1]") and failure.exit_code == 3
    assert failure.logs == ("downloading weights", "checksum mismatch")


@pytest.mark.parametrize("name", sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("*/*.log")))
def test_lines_read_with_universal_newlines_give_the_same_log(name: str) -> None:
    """A runner reading the pipe in text mode splits apt's \r progress into lines of their own."""
    log = BuildLog(clock=Ticks())
    for line in io.StringIO((FIXTURES / name).read_bytes().decode("utf-8"), newline=None):
        log.feed(line)
    log.close()
    expected = parsed(name)
    assert log.error() == expected.error() and log.downloaded == expected.downloaded
    assert [(step.name, step.status) for step in log.steps()] == [(s.name, s.status) for s in expected.steps()]


def test_an_error_printed_by_a_running_step_is_not_the_builds() -> None:
    log = BuildLog()
    for line in ["#5 [2/2] RUN ./download.sh", "#5 0.512 retrying\r", "error: mirror 1 timed out", "#5 DONE 3.0s"]:
        log.feed(line)
    assert log.error() is None and log.steps()[0].status == DONE


def test_buildx_names_its_builder() -> None:
    assert parsed("buildx-0.13/cold.log").builder == '"default" instance using docker driver'
    assert parsed("docker-20.10/cold.log").builder is None


def test_the_newer_format_of_buildkit_0_10_and_later() -> None:
    """Not recordable here (no engine newer than 20.10): lines written in the format of BuildKit's
    printer and of current buildx error output (see SOURCE.md), with this project's own content."""
    log = BuildLog(clock=Ticks())
    for line in ['#0 building with "default" instance using docker driver', "",
                 "#1 [internal] load build definition from Dockerfile", "#1 transferring dockerfile: 1.2kB done",
                 "#1 WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 3)", "#1 DONE 0.0s",
                 "#7 [runtime  3/10] RUN pip install torch", "#7 2.104 Collecting torch",
                 "#7 2.300   Downloading torch-2.5.1-cp311-cp311-manylinux1_x86_64.whl (906.4 MB)",
                 "#7 9.100      ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 412.0/906.4 MB 61.2 MB/s eta 0:00:09"]:
        log.feed(line)
    assert log.downloaded == 412_000_000 and log.current().stage == "runtime" and log.current().index == 3
    for line in ["#7 14.90 ERROR: No space left on device",
                 '#7 ERROR: process "/bin/sh -c pip install torch" did not complete successfully: exit code: 1',
                 "------", " > [runtime  3/10] RUN pip install torch:", "14.90 ERROR: No space left on device",
                 "------", "Dockerfile:12", "--------------------", "  12 | >>> RUN pip install torch",
                 "--------------------", "ERROR: failed to build: failed to solve: process \"/bin/sh -c pip install "
                 "torch\" did not complete successfully: exit code: 1"]:
        log.feed(line)
    failure = log.error()
    assert failure.step == "[runtime  3/10] RUN pip install torch" and failure.exit_code == 1
    assert failure.message == "command failed with exit code 1: pip install torch"
    assert failure.logs[-1] == "ERROR: No space left on device"
    assert log.downloaded == 412_000_000 and log.warnings[0].startswith("FromAsCasing")


def test_an_image_exported_to_containerds_store_is_its_index() -> None:
    log = BuildLog()
    for line in ["#9 exporting to image", "#9 exporting layers 0.3s done",
                 "#9 exporting manifest sha256:" + "a" * 64 + " done", "#9 exporting config sha256:" + "b" * 64,
                 "#9 exporting manifest list sha256:" + "c" * 64 + " 0.0s done",
                 "#9 naming to docker.io/library/demo:latest done", "#9 unpacking to docker.io/library/demo:latest"]:
        log.feed(line)
    assert log.image_id == "sha256:" + "c" * 64 and log.names == ["docker.io/library/demo:latest"]


@pytest.mark.parametrize("raw, message, code", [
    ("executor failed running [/bin/sh -c make]: exit code: 2", "command failed with exit code 2: make", 2),
    ('ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 137',
     "command failed with exit code 137: make", 137),
    ("ERROR: BuildKit is enabled but the buildx component is missing or broken.",
     "BuildKit is enabled but the buildx component is missing or broken.", None),
])
def test_errors_lose_buildkits_wrappers(raw: str, message: str, code: object) -> None:
    assert clean_error(raw) == (message, code)


@pytest.mark.parametrize("text, count", [("48.01MB", 48_010_000), ("6258 kB", 6_258_000), ("16.3 MB", 16_300_000),
                                         ("2B", 2), ("1,234 kB", 1_234_000), ("12 parsecs", 0), ("", 0)])
def test_sizes_are_decimal(text: str, count: int) -> None:
    assert size_of(text) == count


def test_unknown_and_broken_lines_are_ignored() -> None:
    log = BuildLog()
    for line in ["", "#", "#x hello", "#12", "#5 DONE 3.1s", "#3 ...", "#7 0.5", "#8 CACHED", "garbage",
                 "\x1b[31mred\x1b[0m", "------", "------", "#99 sha256:zz 1.2QB / 3XB", "Downloading x (12 parsecs)",
                 "Step 1/5 : FROM python:3.11", " ---> Running in 0123", "x" * 100_000, "#40 \udcff\x00",
                 "#40 DONE 1.2.3s", "#40 sha256:" + "a" * 64 + " 1.2.3MB / 4MB", "#40 12.3.4 text",
                 "#41 [stage 1/x] RUN"]:
        log.feed(line)
    assert log.steps() == [] and log.error() is None and log.downloaded == 0
    log.feed("#4 [1/1] FROM docker.io/library/python:3.11")
    log.feed("#4 CACHED")
    assert [step.status for step in log.steps()] == [CACHED]


def test_the_live_view_shows_the_running_step_in_the_width() -> None:
    lines = lines_of("docker-20.10/cold.log")
    upto = next(i for i, line in enumerate(lines) if "Fetched 16.2 MB" in line) + 1
    console = Console(record=True, width=80)
    console.print(render(parsed("docker-20.10/cold.log", upto)))
    shown = console.export_text().splitlines()
    assert shown[0][2:].startswith('[system 2/3] RUN echo "nonce 1795341950620872969" && apt-get update')
    assert shown[0].endswith("…") and all(len(line) <= 80 for line in shown)
    assert "22.5 MB downloaded" in shown[1] and "1 cached of 2 steps" in shown[1]
    assert shown[2].strip() == "Fetched 16.2 MB in 0s (134 MB/s)"


def test_the_live_view_before_any_line() -> None:
    console = Console(record=True, width=80)
    console.print(render(BuildLog()))
    assert "starting the build" in console.export_text()


def test_plain_mode_prints_a_line_per_step_end_and_per_step_that_works() -> None:
    out = io.StringIO()
    log = follow(lines_of("docker-20.10/cold.log"), Console(file=out, width=300), live=False)
    printed = out.getvalue().splitlines()
    ends = [line for line in printed if not line.startswith("start")]
    assert len(ends) == len(log.steps()) == 8
    for line, step in zip(ends, log.steps()):
        assert line.endswith(" ".join(step.name.split()))
    assert ends[0].startswith("cached") and ends[1].startswith("done      14.7s")
    assert len([line for line in printed if line.startswith("start")]) == 5     # the RUNs, that print
    assert "\x1b" not in out.getvalue()


def test_plain_mode_keeps_each_step_on_one_line_of_the_width() -> None:
    out = io.StringIO()
    follow(lines_of("docker-20.10/cold.log"), Console(file=out, width=80), live=False)
    printed = out.getvalue().splitlines()
    assert len(printed) == 13 and all(len(line) <= 80 for line in printed)
    assert printed[-1].startswith("done") and printed[-1].endswith("…")     # [app 3/3] RUN /opt/venv/bin/...


def test_plain_mode_marks_the_failed_step() -> None:
    out = io.StringIO()
    follow(lines_of("docker-20.10/run-fails.log"), Console(file=out, width=200), live=False)
    assert out.getvalue().splitlines()[-1] == "failed           " + FAILED_RUN


def test_following_live_returns_the_finished_log() -> None:
    out = io.StringIO()
    log = follow(lines_of("buildx-0.13/cold.log"), Console(file=out, force_terminal=True, width=80), live=True)
    assert log.summary().built == 7 and log.error() is None
    assert "7 built, 1 cached of 8 steps" in out.getvalue()     # its last frame, then taken away
    assert out.getvalue().rindex("\x1b[?25h") > out.getvalue().rindex("\x1b[?25l")


def test_ctrl_c_while_following_stops_the_display_and_propagates() -> None:
    def interrupted() -> Iterator[str]:
        yield from lines_of("docker-20.10/cold.log")[:40]
        raise KeyboardInterrupt

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with pytest.raises(KeyboardInterrupt):
        follow(interrupted(), console, live=True)
    shown = out.getvalue()
    assert shown.rindex("\x1b[?25h") > shown.rindex("\x1b[?25l")     # the cursor is back
    console.print("after")
    assert out.getvalue().endswith("after\n")
