"""`gpuenv verify`'s judgement on the output recorded on the H200 machine (devices mode, torch 2.11 cu130):
the real GPU branch of the evaluation, beside the derived fixtures of test_verify.py."""

from pathlib import Path

from gpuenv.run.verify import evaluate, parse_output

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "verify" / "h200-torch-devices.txt"
H200 = (0, "NVIDIA H200", "9.0")
PLANNED = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")


def test_the_h200_recording_verifies():
    result = parse_output(FIXTURE.read_text())
    verdict = evaluate(result, ["torch"], [H200], PLANNED)
    rows = {(r.check, r.subject): r for r in verdict.rows}
    assert verdict.ok and not verdict.cpu_only and verdict.causes == ()
    assert rows[("sees-gpus", "torch")].detail.startswith("1 of 1: NVIDIA H200 (9.0)")
    gpu_rows = [r for r in verdict.rows if r.check == "computes" and "GPU 0" in r.subject]
    assert len(gpu_rows) == 1 and gpu_rows[0].status == "ok"
    arch = next(r for r in verdict.rows if r.check == "arch")
    assert arch.status == "ok" and "sm_90" in arch.detail
    assert result["environment"]["libcuda"]["ok"] and "/dev/nvidia0" in result["environment"]["dev_nodes"]


def test_the_same_recording_fails_on_a_host_with_two_gpus():
    """The container saw one GPU; had the host given it two, verify must fail and say why (row 20)."""
    result = parse_output(FIXTURE.read_text())
    verdict = evaluate(result, ["torch"], [H200, (1, "NVIDIA H200", "9.0")], PLANNED)
    assert not verdict.ok
    failed = [r for r in verdict.rows if r.status == "fail"]
    assert any(r.check == "sees-gpus" for r in failed)


def test_a_gpu_the_build_does_not_cover_fails_with_row_26():
    """The recorded torch build lists sm_75..sm_120; a compute capability 3.7 GPU (Tesla K80) is not in it."""
    result = parse_output(FIXTURE.read_text())
    verdict = evaluate(result, ["torch"], [(0, "Tesla K80", "3.7")], PLANNED)
    arch = next(r for r in verdict.rows if r.check == "arch")
    assert arch.status == "fail" and 26 in arch.causes
