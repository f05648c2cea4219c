"""A bundle's requirements against a host's driver and GPUs (pure: DriverState as the probe makes it)."""

from __future__ import annotations

from gpuenv.bundle.fits import misfits
from gpuenv.bundle.manifest import Requires, requires_from
from gpuenv.host.nvidia import DriverState, Gpu

CUDA12 = Requires(True, "525.60.13", "12.4", "wheels", ("sm_80", "sm_90"))
H200 = Gpu(0, "NVIDIA H200", "GPU-1", cc="9.0")
K80 = Gpu(1, "Tesla K80", "GPU-2", cc="3.7")


def test_a_host_that_fits() -> None:
    assert misfits(CUDA12, DriverState("580.159.04", "13.0", (H200,))) == []


def test_an_old_driver_is_refused_with_what_would_work() -> None:
    [m] = misfits(CUDA12, DriverState("470.82.01", "11.4", (H200,)))
    assert m.code == "driver-too-old"
    assert "470.82.01 is older than the 525.60.13 that the bundle's CUDA 12.4 (from its wheels) needs" in m.message
    assert "a driver >= 525.60.13" in m.would_work and "gpuenv plan --driver 470.82.01" in m.would_work
    assert "CUDA <= 11.x" in m.would_work


def test_a_gpu_the_build_has_no_code_for() -> None:
    [m] = misfits(CUDA12, DriverState("580.159.04", "13.0", (H200, K80)))
    assert m.code == "gpu-arch-unsupported"
    assert "GPU 1 (Tesla K80, compute capability 3.7)" in m.message and "sm_80, sm_90" in m.message
    assert "gpuenv plan --gpu 3.7" in m.would_work


def test_sm_90a_code_runs_only_on_9_0_and_ptx_runs_on_newer() -> None:
    only_a = Requires(True, "525.60.13", "12.4", "wheels", ("sm_90a",))
    assert misfits(only_a, DriverState("580.159.04", "13.0", (H200,))) == []
    blackwell = Gpu(0, "NVIDIA B200", "GPU-3", cc="10.0")
    found = misfits(only_a, DriverState("580.159.04", "13.0", (blackwell,)))
    assert [m.code for m in found] == ["gpu-arch-unsupported"]
    ptx = Requires(True, "525.60.13", "12.4", "wheels", ("sm_80", "compute_90"))
    assert misfits(ptx, DriverState("580.159.04", "13.0", (blackwell,))) == []


def test_both_reasons_at_once() -> None:
    codes = [m.code for m in misfits(CUDA12, DriverState("470.82.01", "11.4", (K80,)))]
    assert codes == ["driver-too-old", "gpu-arch-unsupported"]


def test_no_driver() -> None:
    [m] = misfits(CUDA12, DriverState(error="no NVIDIA driver: nvidia-smi not found"))
    assert m.code == "no-driver" and "nvidia-smi not found" in m.message and "--force" in m.would_work


def test_cpu_bundles_and_cpu_environments_need_nothing() -> None:
    none = DriverState(error="no NVIDIA driver")
    assert misfits(Requires(True, "", "", "none", ()), none) == []
    assert misfits(Requires(False, "525.60.13", "12.4", "wheels", ("sm_90",)), none) == []


def test_requirements_from_image_labels() -> None:
    labels = {"io.gpuenv.min-driver": "384.81", "io.gpuenv.cuda": "9.0", "io.gpuenv.cuda-source": "base-image",
              "io.gpuenv.gpu-archs": "sm_30,sm_35,sm_50"}
    r = requires_from(labels, True)
    assert r == Requires(True, "384.81", "9.0", "base-image", ("sm_30", "sm_35", "sm_50"))
    [m] = misfits(r, DriverState("580.159.04", "13.0", (H200,)))
    assert m.code == "gpu-arch-unsupported"


def test_load_refuses_an_unfit_host_unless_forced(tmp_path) -> None:   # type: ignore[no-untyped-def]
    """The bundle of helpers.make_bundle asks for CUDA 12.4 from wheels (driver >= 525.60.13, sm_80/sm_90)."""
    import pytest

    from gpuenv.bundle.read import Unfit, check_host
    from gpuenv.bundle.verify import verify

    from .helpers import make_bundle

    verified = verify(make_bundle(tmp_path))
    old = DriverState("470.82.01", "11.4", (K80,))
    with pytest.raises(Unfit) as caught:
        check_host(verified, old, force=False)
    assert caught.value.exit_code == 1
    assert "470.82.01 is older than the 525.60.13" in caught.value.message and "Tesla K80" in caught.value.message
    assert caught.value.hint.startswith("what would work: a driver >= 525.60.13") and "--force" in caught.value.hint
    assert [m.code for m in check_host(verified, old, force=True)] == ["driver-too-old", "gpu-arch-unsupported"]
    assert check_host(verified, DriverState("580.159.04", "13.0", (H200,)), force=False) == ()
