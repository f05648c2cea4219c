"""The toolchain of a plan (issue 18): the level, the compiler of the framework's CUDA, the host gcc the
base OS offers that nvcc accepts, and the architectures to build (kb plans; no resolver, no engine)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuenv import planning
from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve.toolchain import Archs, Needs, Toolchain, compiled_row, host_compiler, level, needs_of, toolchain


def _plan(words: list[str], ccs: tuple[str, ...] = (), names: tuple[str, ...] = (), toolkit: str = "auto"):
    request = replace(planning.request_from_words(words), toolkit=toolkit)
    flags = planning.TargetFlags(gpu_ccs=ccs, gpu_names=names)
    target = planning.target_for(flags, None, probe=bool(ccs or names))
    return planning.plan(request, target)


def test_auto_is_devel_only_when_something_is_compiled():
    assert level("auto") == ("runtime", 'nothing is compiled here (toolkit = "auto")')
    chosen, why = level("auto", Needs(build=("flash-attn",)))
    assert chosen == "devel" and "flash-attn is compiled from source here" in why
    chosen, why = level("auto", Needs(first_use=("deepspeed",)))
    assert chosen == "devel" and "deepspeed is compiled with nvcc when first used" in why
    assert level("auto", Needs(first_use_cc=("triton",), unknown=("html5lib",)))[0] == "runtime"
    assert level("runtime", Needs(build=("flash-attn",)))[0] == "runtime"   # the spec's word stands (refused later)
    assert level("devel")[0] == "devel"


def test_what_compiles_is_read_from_the_knowledge_base_by_version():
    pins = [("torch", "2.6.0"), ("triton", "3.2.0"), ("deepspeed", "0.16.4"), ("flash-attn", "2.7.4.post1"),
            ("html5lib", "0.9999999"), ("numpy", "2.2.0")]
    needs = needs_of(pins, ["flash-attn", "html5lib"])
    assert needs == Needs(build=("flash-attn",), first_use=("deepspeed",), first_use_cc=("triton",),
                          unknown=("html5lib",), no_isolation=("flash-attn",))
    assert compiled_row("flash-attn", "2.7.4.post1")["downloads_prebuilt"] is True
    assert compiled_row("flash-attn", "2.0.5")["downloads_prebuilt"] is False
    assert compiled_row("numpy", "2.2.0") is None


def test_triton_alone_gives_a_runtime_environment_a_c_compiler():
    chain = toolchain(_plan(["torch==2.6.0"]), "auto", Needs(first_use_cc=("triton",)))
    assert chain.level == "runtime" and chain.packages == () and chain.env() == ()
    assert chain.compiler is not None and chain.compiler.packages == ("gcc", "g++") and "triton" in chain.compiler.why
    assert toolchain(_plan(["torch==2.6.0"]), "runtime", Needs(first_use_cc=("triton",))).compiler is None


def test_cuda_13_wheels_get_nvidias_compiler_packages_of_the_same_release_and_the_targets_arch():
    plan = _plan(["torch==2.11.0"], ccs=("9.0",), toolkit="devel")
    assert (plan.cuda_source, plan.cuda, plan.base.cuda) == ("wheels", "13.0", None)     # still the slim base
    chain = toolchain(plan, "devel")
    assert chain.packages == ("nvidia-cuda-nvcc==13.0.*", "nvidia-cuda-crt==13.0.*", "nvidia-nvvm==13.0.*",
                              "nvidia-cuda-runtime==13.0.*", "nvidia-cuda-cccl==13.0.*")
    assert chain.pip == chain.packages + ("ninja", "setuptools", "wheel", "packaging", "psutil")
    assert chain.archs == Archs(("9.0",), "9.0", chain.archs.origin) and "target's GPUs" in chain.archs.origin
    env = dict(chain.env())
    assert env["TORCH_CUDA_ARCH_LIST"] == "9.0+PTX" and env["CMAKE_CUDA_ARCHITECTURES"] == "90"
    assert env["CUDAARCHS"] == "90" and env["CUDA_HOME"] == "/usr/local/cuda"
    assert chain.compiler is not None and not chain.compiler.versioned and "CC" not in env


def test_cuda_12_wheels_take_the_compiler_from_the_nvidia_cuda_devel_image_of_their_cuda():
    """NVIDIA's nvidia-cuda-nvcc-cu12 wheels hold ptxas but no nvcc (tests/fixtures/kb/compilers/)."""
    plan = _plan(["torch==2.6.0"], ccs=("9.0",), toolkit="devel")
    assert (plan.cuda_source, plan.cuda) == ("wheels", "12.4")
    assert plan.base.image.startswith("nvidia/cuda:12.4.") and "-devel-" in plan.base.image
    assert "CUDA is in the image twice" in " ".join(plan.base.reasons)
    chain = toolchain(plan, "devel")
    assert chain.packages == () and chain.pip == ("ninja", "setuptools", "wheel", "packaging", "psutil")
    assert dict(chain.env())["CUDA_HOME"] == "/usr/local/cuda" and chain.archs is not None


def test_cuda_inside_old_framework_wheels_takes_the_devel_image_of_that_cuda_too():
    plan = _plan(["torch==1.12.1"], toolkit="devel")
    assert plan.cuda_source == "wheels" and plan.cuda is not None and plan.cuda < "11.8"
    assert "-devel-" in plan.base.image and plan.base.cuda == plan.cuda


def test_several_gpus_build_each_and_ptx_of_the_newest_only():
    archs = toolchain(_plan(["torch==2.11.0"], ccs=("8.0", "9.0", "8.6", "8.0")), "devel").archs
    assert archs is not None
    assert (archs.torch, archs.cmake) == ("8.0;8.6;9.0+PTX", "80-real;86-real;90")


def test_no_gpu_in_particular_takes_the_frameworks_own_list_and_says_so():
    plan = _plan(["torch==2.11.0"])
    archs = toolchain(plan, "devel").archs
    assert archs is not None and "torch 2.11.0's own list" in archs.origin
    assert len(archs.ccs) == len(set(plan.gpu_archs)) and archs.ptx == archs.ccs[-1]


def test_a_cpu_plan_at_devel_gets_a_c_compiler_and_no_cuda():
    chain = toolchain(_plan(["torch==2.6.0", "cpu"]), "devel")
    assert (chain.cuda, chain.packages, chain.archs) == (None, (), None)
    assert chain.compiler is not None and chain.compiler.packages == ("gcc", "g++")
    assert "CUDA_HOME" not in dict(chain.env())


def test_runtime_has_no_toolchain():
    chain = toolchain(_plan(["torch==2.6.0"]), "auto")
    assert chain.level == "runtime" and chain.env() == () and chain.packages == ()


@pytest.mark.parametrize("os_name, cuda, gcc, versioned", [
    ("debian12", "13.2", "12", False),       # bookworm's gcc 12 <= 15
    ("debian12", "11.8", "11", True),        # 12 > 11: bookworm's gcc-11
    ("debian13", "12.6", "13", True),        # trixie's 14 > 13: gcc-13
    ("ubuntu24.04", "12.3", "12", True),     # noble's 13 > 12: gcc-12
    ("ubuntu22.04", "12.4", "11", False),
    ("ubuntu22.04", None, "11", False),      # no CUDA: the OS's gcc
])
def test_the_host_gcc_is_the_newest_the_os_offers_that_nvcc_accepts(os_name, cuda, gcc, versioned):
    compiler = host_compiler(os_name, cuda)
    assert (compiler.gcc, compiler.versioned) == (gcc, versioned)
    assert compiler.packages == ((f"gcc-{gcc}", f"g++-{gcc}") if versioned else ("gcc", "g++"))


def test_an_os_with_no_gcc_that_nvcc_accepts_is_refused_before_the_build_with_what_would_fit():
    with pytest.raises(ImpossibleRequest) as refused:
        host_compiler("debian13", "11.8")
    message, hint = refused.value.message, refused.value.hint or ""
    assert "gcc <= 11" in message and "debian13 offers gcc 12, 13, 14" in message
    assert "debian12" in hint and "ubuntu22.04" in hint and "debian13" not in hint


def test_a_versioned_gcc_is_named_to_every_build_system():
    chain = toolchain(_plan(["torch==2.11.0"], ccs=("9.0",)), "devel")
    assert chain.compiler is not None
    env = dict(Toolchain("devel", "", "12.3", "wheels", (), host_compiler("ubuntu24.04", "12.3"), chain.archs).env())
    assert (env["CC"], env["CXX"], env["CUDAHOSTCXX"]) == ("gcc-12", "g++-12", "g++-12")
