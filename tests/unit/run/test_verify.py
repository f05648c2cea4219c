"""`gpuenv verify`'s evaluation, on the program's real outputs (tests/fixtures/verify/SOURCE.md: recorded on
a machine without a GPU, under Pythons 2.7 to 3.11; two derived GPU fixtures, labelled there), and the
program itself: the syntax old Pythons accept, and real runs under the Pythons found here."""

from __future__ import annotations

import ast
import copy
import glob
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
from rich.console import Console

from gpuenv.errors import GpuenvError
from gpuenv.run import verify, verify_program
from gpuenv.run.verify import covering, covers, evaluate, matched_rows, parse_output

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "verify"
FAILURE_MODES = ROOT.parent / "shared" / "research" / "failure-modes.md"
PROGRAM = ROOT / "src" / "gpuenv" / "run" / "verify_program.py"
H200 = [(0, "NVIDIA H200", "9.0")]


def recorded(name: str) -> dict[str, Any]:
    return parse_output((FIXTURES / name).read_text())


def rows_of(verdict: verify.Verdict, check: str, status: Optional[str] = None) -> list[verify.Row]:
    return [r for r in verdict.rows if r.check == check and (status is None or r.status == status)]


# --- covers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("archs, cc, expected", [
    (["sm_80"], "8.6", True),            # a cubin runs on later minors of its major
    (["sm_80"], "9.0", False),           # never on another major
    (["sm_90"], "8.9", False),           # nor on an earlier minor
    (["compute_70"], "9.0", True),       # PTX is compiled for any later GPU
    (["compute_90"], "8.9", False),
    ([], "9.0", False),
    (["sm_90a"], "9.0", True),           # architecture-specific: its own GPU only
    (["compute_90a"], "10.0", False),
    (["sm_100f"], "10.3", True),         # family-specific: later minors of the major
    (["compute_100f"], "12.0", False),
    (["sm_120"], "12.1", True),
    (["8.6"], "8.9", True),              # TensorFlow's own spelling of sm_86
    (["lto_90", "", "sm_", "nonsense"], "9.0", False),
    (["sm_90"], "", False),              # an unknown capability is covered by nothing
])
def test_covers(archs, cc, expected):
    assert covers(archs, cc) is expected


def test_covering_names_the_first_arch_that_covers():
    tf_2_21 = ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]        # cpu-tensorflow-cupy-paddle-notorch.txt
    assert covering(tf_2_21, "8.6") == "sm_80"
    assert covering(tf_2_21, "9.0") == "compute_90"
    assert covering(tf_2_21, "12.0") == "compute_90"
    assert covering(tf_2_21, "5.2") is None


# --- parse_output ---------------------------------------------------------------------------------------

def test_no_marked_line_is_an_error_with_the_end_of_the_output():
    with pytest.raises(GpuenvError) as caught:
        parse_output("starting\nSegmentation fault (core dumped)\n")
    assert "gave no result" in caught.value.message and "Segmentation fault" in caught.value.message
    assert caught.value.hint


def test_a_marked_line_after_log_noise_on_the_same_line_parses():
    line = (FIXTURES / "cpu-torch-jax.txt").read_text().strip()
    noisy = "2026 W some.cc:1] unterminated noise" + line + "\nmore noise\n"
    assert parse_output(noisy)["families"] == ["torch", "jax"]


def test_a_broken_result_is_an_error():
    with pytest.raises(GpuenvError, match="not JSON"):
        parse_output(verify.MARK + '{"frameworks": [')
    with pytest.raises(GpuenvError, match="no frameworks"):
        parse_output(verify.MARK + '{"format": 1, "error": "TypeError: ..."}')


# --- the signatures against research/failure-modes.md ---------------------------------------------------

# Column 3 (the error text) of the rows the table knows, as failure-modes.md says them (checked against the
# file itself below when it is there: it lives beside the repository, in ../shared/research).
FAILURE_TEXTS = {
    5: ["load library failed: libnvidia-ml.so.1: cannot open shared object file"],
    8: ["Failed to initialize NVML: Unknown Error"],
    9: ["Driver/library version mismatch"],
    11: ["CUDA driver version is insufficient for CUDA runtime version", "The NVIDIA driver on your system is too old"],
    12: ["Error 804: forward compatibility was attempted on non supported HW"],
    13: ["Error 802: system not yet initialized"],
    14: ["all CUDA-capable devices are busy or unavailable"],
    16: ["Failed to initialize NVML: Insufficient Permissions"],
    20: ["libcuda.so.1: cannot open shared object file", "Found no NVIDIA driver on your system"],
    23: ["Could not load dynamic library 'libcudnn.so.7'"],
    24: ["Cannot dlopen some GPU libraries ... Skipping registering GPU devices"],
    25: ["Torch not compiled with CUDA enabled"],
    26: ["sm_90 is not compatible with the current PyTorch installation",
         "no kernel image is available for execution on the device"],
    27: ["Ignoring visible gpu device ... The minimum required Cuda capability is 7.0"],
    28: ["Compile with USE_CUDA=1 to enable GPU usage", "libcudart.so.10.0: cannot open shared object file"],
}


def failure_mode_rows(text: str) -> dict[int, list[str]]:
    """Row number -> the backquoted texts of its error-text column."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) > 3 and re.fullmatch(r"\| \d+", cells[0]):
            rows[int(cells[0][2:])] = re.findall(r"`([^`]+)`", cells[2])
    return rows


def test_every_row_of_the_table_is_a_row_with_texts_it_matches():
    assert sorted(FAILURE_TEXTS) == sorted(row for _, row, _, _ in verify.SIGNATURES)
    for row, texts in FAILURE_TEXTS.items():
        for text in texts:
            family = "mxnet" if row == 28 else "torch"         # MXNet's missing cudart is its -cuXXX package
            assert row in matched_rows([text], family), (row, text)


def test_a_cuda_library_missing_is_row_23_except_for_mxnet():
    assert matched_rows(["libcudart.so.10.0: cannot open shared object file"], "tensorflow") == [23]
    assert matched_rows(["libcudart.so.10.0: cannot open shared object file"], "mxnet") == [28]


@pytest.mark.skipif(not FAILURE_MODES.exists(), reason="../shared/research/failure-modes.md is not there")
def test_the_texts_are_those_of_failure_modes_md():
    rows = failure_mode_rows(FAILURE_MODES.read_text())
    for row, texts in FAILURE_TEXTS.items():
        assert row in rows and rows[row] == texts, (row, rows.get(row))


def test_texts_a_signature_must_not_take():
    assert matched_rows(["FileNotFoundError: [Errno 2] No such file or directory: 'nvidia-smi'"]) == []
    assert matched_rows(["ModuleNotFoundError: No module named 'torch'"]) == []
    assert matched_rows(["Failed to initialize NVML: Insufficient Permissions"]) == [16]      # not 8


# --- evaluation of the recorded runs -------------------------------------------------------------------

def test_cpu_mode_with_a_cuda_torch_and_jax_verifies():
    verdict = evaluate(recorded("cpu-torch-jax.txt"), ["torch", "jax"], [], [])
    assert verdict.ok and verdict.cpu_only and verdict.causes == ()
    assert verdict.note == "no GPU: checked the CPU path"
    assert [(r.subject, r.status) for r in rows_of(verdict, "computes")] == [
        ("torch on the CPU", "ok"), ("jax on the CPU", "ok")]
    assert rows_of(verdict, "cuda-build")[0].detail == "built with CUDA 13.2, cuDNN 9.26.0"
    assert not rows_of(verdict, "sees-gpus") and not rows_of(verdict, "driver")


def test_a_gpu_expected_where_none_was_given_is_row_20():
    result = recorded("nogpu-expect1-torch-jax.txt")
    assert result["expect_gpus"] == 1
    verdict = evaluate(result, ["torch", "jax"], H200, ["sm_80", "sm_90"])
    assert not verdict.ok and not verdict.cpu_only
    assert [c.row for c in verdict.causes] == [20]
    assert "gpuenv up" in verdict.causes[0].fix
    driver = rows_of(verdict, "driver")[0]
    assert driver.status == "fail" and "no /dev/nvidia* nodes" in driver.detail
    torch = rows_of(verdict, "sees-gpus")[0]
    assert torch.status == "fail" and "Found no NVIDIA driver on your system" in torch.detail
    assert torch.causes == (20,)
    assert [(r.subject, r.status) for r in rows_of(verdict, "cuda-build")] == [("torch", "ok"), ("jax", "fail")]


def test_no_driver_is_row_20_even_where_cudart_blames_the_driver_version():
    """CuPy, without libcuda.so.1, says "CUDA driver version is insufficient": that is not row 11 here."""
    result = recorded("nogpu-expect1-tensorflow-cupy-paddle.txt")
    cupy = next(r for r in result["frameworks"] if r["family"] == "cupy")
    assert "CUDA driver version is insufficient" in cupy["gpu_error"]
    verdict = evaluate(result, ["tensorflow", "cupy", "paddle"], H200, [])
    assert [c.row for c in verdict.causes] == [20]
    tf = next(r for r in rows_of(verdict, "sees-gpus") if r.subject == "tensorflow")
    assert tf.detail.startswith("0 of 1; Could not find cuda drivers on your machine")     # from its log
    assert next(r for r in rows_of(verdict, "arch") if r.subject.startswith("cupy")).status == "skip"


def test_the_cpu_mxnet_package_on_a_gpu_host_is_row_28():
    verdict = evaluate(recorded("nogpu-expect1-mxnet-py38.txt"), ["mxnet"], H200, [])
    assert rows_of(verdict, "cuda-build")[0].causes == (28,)
    assert {c.row for c in verdict.causes} == {20, 28}
    assert "mxnet-cu" in next(c.fix for c in verdict.causes if c.row == 28)


def test_mxnet_in_cpu_mode_verifies():
    verdict = evaluate(recorded("cpu-mxnet-py38.txt"), ["mxnet"], [], [])
    assert verdict.ok and rows_of(verdict, "computes")[0].status == "ok"


def test_tensorflow_gpu_1_2_1_without_cuda_8_fails_to_import_with_row_23():
    result = recorded("nogpu-expect1-tensorflowgpu121-py27.txt")
    assert result["environment"]["python"] == "2.7.18"
    verdict = evaluate(result, ["tensorflow"], H200, [])
    (row,) = rows_of(verdict, "import")
    assert row.status == "fail" and row.detail.startswith("ImportError: libcusolver.so.8.0: cannot open shared")
    assert 23 in [c.row for c in verdict.causes]


@pytest.mark.parametrize("fixture, python", [("cpu-tensorflow121-notorch-py27.txt", "2.7.18"),
                                             ("cpu-tensorflow121-py36.txt", "3.6.15")])
def test_tensorflow_1_computes_through_a_session_on_old_pythons(fixture, python):
    result = recorded(fixture)
    assert result["environment"]["python"] == python
    verdict = evaluate(result, ["tensorflow"], [], [])
    assert verdict.ok and rows_of(verdict, "import")[0].detail.startswith("1.2.1,")
    assert rows_of(verdict, "computes")[0].status == "ok"


def test_a_family_that_is_not_installed_fails_without_a_cause():
    verdict = evaluate(recorded("cpu-tensorflow-cupy-paddle-notorch.txt"), ["tensorflow", "cupy", "paddle", "torch"],
                       [], [])
    assert not verdict.ok and verdict.causes == ()
    assert [(r.subject, r.status, r.detail) for r in rows_of(verdict, "import", "fail")] == [
        ("torch", "fail", "not installed")]
    assert next(r for r in rows_of(verdict, "computes") if r.subject == "cupy on the CPU").status == "skip"


def test_a_family_past_its_time_limit_fails():
    verdict = evaluate(recorded("cpu-torch-timeout.txt"), ["torch"], [], [])
    assert [(r.check, r.status) for r in verdict.rows] == [("import", "fail"), ("finishes", "fail")]
    assert verdict.rows[1].detail == "no answer within 0.5 s, during import"


def test_a_family_the_program_did_not_report_on_fails():
    verdict = evaluate(recorded("cpu-torch-jax.txt"), ["torch", "paddle"], [], [])
    assert [(r.subject, r.status) for r in rows_of(verdict, "import")] == [("torch", "ok"), ("paddle", "fail")]


def test_every_real_computation_met_the_known_answer():
    for path in sorted(FIXTURES.glob("*.txt")):
        for report in parse_output(path.read_text())["frameworks"]:
            assert all(c.get("wrong") == 0 for c in report.get("compute", []) if "wrong" in c), path.name


# --- the GPU branches, on the DERIVED fixtures (SOURCE.md) ----------------------------------------------

def test_derived_a_working_h200():
    verdict = evaluate(recorded("derived-h200-torch-jax-working.txt"), ["torch", "jax"], H200, ["sm_80", "sm_90"])
    assert verdict.ok and not verdict.cpu_only and verdict.note == ""
    assert [r.status for r in verdict.rows if r.check in ("driver", "sees-gpus", "computes", "arch")] == ["ok"] * 9
    assert rows_of(verdict, "arch")[0].detail.startswith("sm_90 of the build's")
    assert rows_of(verdict, "arch")[1].detail.startswith("sm_90 of the image's planned")     # jax has no list


def test_derived_torch_without_sm_90_on_an_h200_is_row_26():
    verdict = evaluate(recorded("derived-h200-torch-without-sm90.txt"), ["torch"], H200, [])
    assert [c.row for c in verdict.causes] == [26]
    (arch,) = rows_of(verdict, "arch")
    assert arch.status == "fail" and arch.subject == "torch on GPU 0 (NVIDIA H200, 9.0)"
    assert "sm_86" in arch.detail and "NVIDIA H200 is 9.0" in arch.detail
    (gpu,) = [r for r in rows_of(verdict, "computes") if "GPU" in r.subject]
    assert gpu.detail == "RuntimeError: CUDA error: no kernel image is available for execution on the device"


def test_derived_tensorflow_without_the_gpus_capability_is_row_27():
    """The working fixture's torch report, relabelled as TensorFlow with a list that stops at sm_75."""
    result = recorded("derived-h200-torch-jax-working.txt")
    tf = copy.deepcopy(result["frameworks"][0])
    tf.update(family="tensorflow", module="tensorflow", arch_list=["sm_35", "sm_50", "sm_60", "sm_70", "sm_75"])
    result["frameworks"] = [tf]
    verdict = evaluate(result, ["tensorflow"], H200, [])
    assert [c.row for c in verdict.causes] == [27]


def test_derived_the_planned_list_yields_to_a_computation_that_worked():
    result = recorded("derived-h200-torch-jax-working.txt")
    verdict = evaluate(result, ["jax"], H200, ["sm_80"])
    (arch,) = rows_of(verdict, "arch")
    assert arch.status == "ok" and arch.detail.endswith("it computes there all the same")
    jax = next(r for r in result["frameworks"] if r["family"] == "jax")
    jax["compute"][-1] = {"device": "gpu:0", "ok": False, "error": "XlaRuntimeError: INTERNAL: ..."}
    verdict = evaluate(result, ["jax"], H200, ["sm_80"])
    assert rows_of(verdict, "arch")[0].causes == (26,) and 26 in [c.row for c in verdict.causes]


def test_derived_device_nodes_without_libcuda_is_row_5_and_names_missing_capabilities():
    result = recorded("nogpu-expect1-torch-jax.txt")
    result["environment"]["dev_nodes"] = ["/dev/nvidia0", "/dev/nvidiactl"]
    result["environment"]["variables"]["NVIDIA_DRIVER_CAPABILITIES"] = "utility"
    verdict = evaluate(result, ["torch"], H200, [])
    driver = rows_of(verdict, "driver")[0]
    assert driver.causes == (5,) and driver.detail.endswith("NVIDIA_DRIVER_CAPABILITIES=utility lacks compute")
    assert [c.row for c in verdict.causes] == [5]


def test_derived_a_gpu_fewer_than_the_host_gave():
    result = recorded("derived-h200-torch-jax-working.txt")
    two = H200 + [(1, "NVIDIA H200", "9.0")]
    verdict = evaluate(result, ["torch"], two, [])
    (seen,) = rows_of(verdict, "sees-gpus")
    assert seen.status == "fail" and seen.detail.startswith("1 of 2: NVIDIA H200 (9.0)")
    assert seen.causes == (20,) and len(rows_of(verdict, "arch")) == 2


# --- output ---------------------------------------------------------------------------------------------

def test_the_table_and_the_json():
    verdict = evaluate(recorded("nogpu-expect1-torch-jax.txt"), ["torch", "jax"], H200, [])
    console = Console(record=True, width=300)
    console.print(verify.table(verdict))
    shown = console.export_text()
    assert all(h in shown for h in ("check", "subject", "status", "detail"))
    assert "Found no NVIDIA driver on your system" in shown
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["ok"] is False and data["cpu_only"] is False
    assert data["causes"][0]["row"] == 20 and len(data["checks"]) == len(verdict.rows)


def test_markup_in_a_detail_is_shown_as_it_is():
    row = verify.Row("import", "torch", "fail", "OSError: [Errno 2] No such file [bold]x[/bold]")
    console = Console(record=True, width=200)
    console.print(verify.table(verify.Verdict((row,), (), True)))
    assert "[Errno 2] No such file [bold]x[/bold]" in console.export_text()


# --- the program ----------------------------------------------------------------------------------------

def test_the_program_text_and_mark():
    assert verify.program_text() == PROGRAM.read_text()
    assert verify_program.MARK == verify.MARK


def test_the_program_uses_no_syntax_old_pythons_lack():
    """Python 2.7 and 3.5: no f-strings, annotations, walrus, keyword-only arguments, `raise from`,
    `yield from`, async, nonlocal; and no import of gpuenv."""
    tree = ast.parse(PROGRAM.read_text())
    banned = (ast.JoinedStr, ast.AnnAssign, ast.NamedExpr, ast.YieldFrom, ast.AsyncFunctionDef, ast.Await,
              ast.Nonlocal)
    for node in ast.walk(tree):
        assert not isinstance(node, banned), (type(node).__name__, getattr(node, "lineno", None))
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            assert not args.kwonlyargs and not args.posonlyargs
            assert all(a.annotation is None for a in args.args + args.kwonlyargs)
            assert getattr(node, "returns", None) is None
        if isinstance(node, ast.Raise):
            assert node.cause is None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.startswith("gpuenv") for n in names)


def run_program(python: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([python, "-", *args], input=PROGRAM.read_text(), capture_output=True, text=True,
                          timeout=120, check=True)
    return parse_output(done.stdout)


def test_the_program_runs_here():
    """This Python, no framework asked and one that does not exist: the environment's facts come back."""
    result = run_program(sys.executable, "nosuchfamily", "--expect-gpus", "0")
    assert result["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(result["environment"]) >= {"dev_nodes", "variables", "libcuda", "nvidia_smi", "log"}
    (report,) = result["frameworks"]
    assert report["errors"] == [{"stage": "import", "error": "unknown family 'nosuchfamily'"}]


def test_a_crash_or_a_hang_in_one_family_spares_the_others(tmp_path):
    """Stand-ins (not the real frameworks): a `torch` that kills its process on import, a `jax` that hangs."""
    (tmp_path / "torch.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    (tmp_path / "jax.py").write_text("import time\ntime.sleep(60)\n")
    done = subprocess.run([sys.executable, "-", "torch", "jax", "nosuchfamily", "--timeout", "2"],
                          input=PROGRAM.read_text(), capture_output=True, text=True, timeout=60, check=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    torch, jax, other = parse_output(done.stdout)["frameworks"]
    assert (torch["family"], torch["ended"], torch["stage"]) == ("torch", "killed by signal 11", "import")
    assert (jax["family"], jax["timed_out_s"], jax["stage"]) == ("jax", 2, "import")
    assert other["stage"] == "import" and other["errors"]
    verdict = evaluate(parse_output(done.stdout), ["torch", "jax"], [], [])
    assert [(r.subject, r.detail) for r in rows_of(verdict, "finishes")] == [
        ("torch", "killed by signal 11 during import"), ("jax", "no answer within 2 s, during import")]


def python2() -> Optional[str]:
    candidates = [shutil.which("python2.7"), shutil.which("python2"),
                  *sorted(glob.glob(str(Path.home() / ".pyenv/versions/2.7*/bin/python")))]
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[0] == 2"], capture_output=True,
                              check=False)
        if done.returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(python2() is None, reason="no Python 2.7 here")
def test_the_program_runs_on_python_2_7():
    result = run_program(python2() or "", "torch", "--expect-gpus", "0")
    assert result["environment"]["python"].startswith("2.7")
    assert result["frameworks"][0]["stage"] == "import"


def test_the_known_answer_is_the_product():
    a, b = verify_program.matrices()
    table = verify_program.expected()
    for i, j in [(0, 0), (6, 4), (13, 200), (255, 255), (100, 37)]:
        assert sum(a[i][k] * b[k][j] for k in range(256)) == table[i % 7][j % 5]
    right = [[table[i % 7][j % 5] + a[i][j] for j in range(256)] for i in range(256)]
    assert verify_program.wrong_cells(right) == 0
    right[3][5] += 1.0
    assert verify_program.wrong_cells(right) == 1
    assert verify_program.wrong_cells(right[:10]) == 256 * 256


def test_an_environment_with_no_framework_checks_that_its_python_runs() -> None:
    """No framework asked (a CPU notebook): the verdict is not an empty table that always passes; it says
    which Python ran, and fails when the program could not tell."""
    from gpuenv.run.verify import evaluate

    ran = evaluate({"environment": {"python": "3.11.7", "executable": "/usr/local/bin/python3"}, "frameworks": []},
                   [], [], [])
    assert [(r.check, r.status) for r in ran.rows] == [("python", "ok")] and "3.11.7" in ran.rows[0].detail
    silent = evaluate({"environment": {}, "frameworks": []}, [], [], [])
    assert not silent.ok and silent.rows[0].status == "fail"
