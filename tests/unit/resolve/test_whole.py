"""The whole-environment resolution (resolve/packages.py, resolve/whole.py) with the real resolver, uv,
against the recorded index on 127.0.0.1 (tests/fixtures/index, recorded from PyPI on 2026-12-07; each
fact below is in its cases.toml and answers/). No internet: `uv_offline` points every proxy at a closed
port, 127.0.0.1 exempt."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve import Target, want
from gpuenv.resolve.packages import Source, compile_steps
from gpuenv.resolve.request import Request
from gpuenv.resolve.resolved import step_layout
from gpuenv.resolve.whole import resolve_whole

pytestmark = pytest.mark.resolver


@pytest.fixture
def source(recorded_index, uv_offline) -> Source:
    """The recorded index as the spec's network policy would give it, the internet shut out (uv_offline's
    proxies, read from the environment as for any user)."""
    from gpuenv.resolve.packages import source_for

    found = source_for(None)
    assert dict(found.proxies)["HTTPS_PROXY"].endswith(":9")
    return Source(index=recorded_index.simple, trusted_hosts=("127.0.0.1",), proxies=found.proxies)


def request(*frameworks: str, packages: tuple[str, ...] = (), python=None) -> Request:
    return Request(wants=tuple(want(f) for f in frameworks), packages=packages, python=python)


def test_a_package_that_pins_the_framework_moves_the_plan_and_says_which(source):
    """torch>=2.4 with xformers 0.0.28.post1: the kb's first choice (the newest torch, on the newest Python)
    does not resolve; xformers has wheels for cp38-cp312 only and pins torch==2.4.1, so the plan is torch
    2.4.1 (its PyPI build: CUDA 12.1, cuDNN 9.1.0.70) on Python 3.12, and it says why, in uv's words."""
    plan = resolve_whole(request("torch>=2.4", packages=("xformers==0.0.28.post1",)), Target(), (), source)
    assert plan.python == "3.12" and plan.builds[0].version == "2.4.1" and plan.cuda == "12.1"
    assert plan.resolved.status == "resolved" and plan.resolved.version_of("torch") == "2.4.1"
    assert plan.resolved.version_of("nvidia-cudnn-cu12") == "9.1.0.70"
    said = " ".join(plan.reasons)
    assert "xformers==0.0.28.post1 depends on torch==2.4.1" in said
    assert "has no usable wheels" in said and "(not 3.14)" in said


def test_pins_go_to_the_first_pip_step_that_needs_them_each_once_and_hashed(source, recorded_index):
    steps = step_layout(("torch==2.5.1",), ("jupyterlab",), ("pandas",))
    resolved = compile_steps(steps, (), "3.12", source)
    by_step = {s.id: {p.name for p in s.pins} for s in resolved.steps}
    names = [p.name for p in resolved.pins]
    assert len(names) == len(set(names))
    assert {"torch", "nvidia-cudnn-cu12", "jinja2", "typing-extensions"} <= by_step["frameworks"]
    assert "jupyterlab" in by_step["tools"] and "jinja2" not in by_step["tools"]   # torch's, installed before
    assert {"pandas", "numpy"} <= by_step["packages-1"]
    assert all(p.hashes and all(h.startswith("sha256:") for h in p.hashes) for p in resolved.pins)
    assert {p.index for p in resolved.pins} == {recorded_index.simple}
    assert "-r" not in " ".join(v for p in resolved.pins for v in p.via)
    torch = next(p for p in resolved.pins if p.name == "torch")
    assert "frameworks" in torch.via


def test_a_cudnn_clash_between_two_frameworks_is_a_conflict_naming_both_pins(source):
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request("torch==2.5.1", "jax[cuda12]==0.6.0"), Target(), (), source)
    error = caught.value
    assert error.code == "conflict"
    assert "nvidia-cudnn-cu12" in error.message and "9.1.0.70" in error.message and ">=9.8" in error.message
    assert "torch==2.5.1" in error.message and "jax[cuda12]==0.6.0" in error.message


def test_a_clash_between_two_packages_is_a_conflict_with_the_shared_dependency(source):
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request(packages=("numba==0.59.1", "opencv-python==4.12.0.88"), python="3.12"), Target(),
                      (), source)
    assert caught.value.code == "conflict"
    assert "numpy" in caught.value.message and "numba==0.59.1" in caught.value.message


def test_a_version_the_index_does_not_publish_is_no_such_version_naming_those_it_does(source):
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request(packages=("requests==99.0",), python="3.12"), Target(), (), source)
    error = caught.value
    assert error.code == "no-such-version" and error.message.startswith("requests==99.0: no such version")
    assert error.alternatives and all(a.startswith("requests==2.") for a in error.alternatives)
    assert "requests publishes:" in error.hint


def test_an_extra_the_release_does_not_publish_is_refused_not_dropped(source):
    """uv only warns and installs requests without it; gpuenv refuses, naming the extras requests has."""
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request(packages=("requests[nosuch]",), python="3.12"), Target(), (), source)
    error = caught.value
    assert error.code == "no-such-version" and "publishes no extra 'nosuch'" in error.message
    assert "socks" in error.hint and "requests[socks]" in error.alternatives


def test_no_index_answering_leaves_the_kb_plan_and_says_the_packages_were_not_resolved(uv_offline):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Source(index=f"http://127.0.0.1:{port}/simple", trusted_hosts=("127.0.0.1",))
    plan = resolve_whole(request("torch==2.5.1", packages=("pandas",)), Target(), (), closed)
    assert plan.builds[0].version == "2.5.1" and plan.resolved.status == "unresolved"
    assert "no package index answered" in plan.resolved.why
    assert any("packages not resolved" in r for r in plan.reasons)


def test_offline_is_the_knowledge_base_alone_and_asks_no_index(source, recorded_index):
    mark = recorded_index.log.mark()
    plan = resolve_whole(request("torch==2.5.1"), Target(), (), Source(index=source.index, offline=True))
    assert plan.resolved.status == "unresolved" and "offline" in plan.resolved.why
    assert recorded_index.log.paths(since=mark) == []


def _gpuenv(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ}, timeout=300)


def test_plan_of_a_spec_resolves_through_its_index_and_lists_every_pin(recorded_index, uv_offline, tmp_path):
    (tmp_path / "gpuenv.toml").write_text(
        'frameworks = ["torch==2.5.1"]\npackages = ["pandas"]\npython = "3.12"\n'
        f'[network]\npip_index = "{recorded_index.simple}"\npip_trusted_hosts = ["127.0.0.1"]\n')
    run = _gpuenv("plan", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    resolved = json.loads(run.stdout)["resolved"]
    assert resolved["status"] == "resolved" and resolved["indexes"][0] == recorded_index.simple
    steps = {s["id"]: [p["name"] for p in s["packages"]] for s in resolved["steps"]}
    assert "torch" in steps["frameworks"] and "pandas" in steps["packages-1"]
    text = _gpuenv("plan", cwd=tmp_path)
    assert "resolved" in text.stdout and "torch 2.5.1" in text.stdout and "pandas" in text.stdout


def test_plain_http_to_an_untrusted_index_is_refused_before_the_resolver_runs(recorded_index, uv_offline, tmp_path):
    (tmp_path / "gpuenv.toml").write_text(
        f'packages = ["pandas"]\n[network]\npip_index = "{recorded_index.simple}"\n')
    run = _gpuenv("plan", cwd=tmp_path)
    assert run.returncode == 2 and "not a trusted host" in run.stderr and "Traceback" not in run.stderr



def test_a_pytorch_local_version_resolves_from_its_variant_index_through_the_mirror(recorded_index, uv_offline,
                                                                                     tmp_path):
    """torch==2.4.1+cu118 as written: the cu118 build from PyTorch's index (here through
    network.pytorch_wheels, a mirror of download.pytorch.org/whl: the recorded variant index, constructed
    in PyTorch's layout, see tests/fixtures/index/SOURCE.md), with its nvidia-*-cu11 pins from PyPI."""
    wheels = recorded_index.variant("cu118").rsplit("/", 1)[0]
    (tmp_path / "gpuenv.toml").write_text(
        'frameworks = ["torch==2.4.1+cu118"]\npython = "3.12"\n'
        f'[network]\npip_index = "{recorded_index.simple}"\npytorch_wheels = "{wheels}"\n'
        'pip_trusted_hosts = ["127.0.0.1"]\n')
    run = _gpuenv("plan", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["packages"] == ["torch==2.4.1+cu118"] and data["cuda"] == "11.8"
    pins = {p["name"]: p for s in data["resolved"]["steps"] for p in s["packages"]}
    assert pins["torch"]["version"] == "2.4.1+cu118" and pins["torch"]["index"] == recorded_index.variant("cu118")
    assert "nvidia-cudnn-cu11" in pins and not any(n.endswith("-cu12") for n in pins)
    assert pins["nvidia-cudnn-cu11"]["index"] == recorded_index.simple


def test_the_plan_says_the_cuda_and_cudnn_of_the_resolved_wheels(source):
    """jax[cuda12]==0.6.0's plugin states lower bounds (nvidia-cudnn-cu12>=9.8): the plan's cuDNN is the one
    the resolution installs, and its CUDA the runtime wheel's major.minor, not the knowledge base's guess."""
    plan = resolve_whole(request("jax[cuda12]==0.6.0", python="3.12"), Target(), (), source)
    runtime = plan.resolved.version_of("nvidia-cuda-runtime-cu12")
    cudnn = plan.resolved.version_of("nvidia-cudnn-cu12")
    assert runtime and cudnn and plan.cuda == ".".join(runtime.split(".")[:2]) and plan.cudnn == cudnn
    assert plan.cuda_source == "wheels" and plan.min_driver == "525.60.13"


def test_a_package_that_brings_another_cuda_major_is_a_conflict(source):
    """torch 2.5.1 carries CUDA 12 wheels; nvidia-cuda-runtime-cu11 next to them would be CUDA 11's."""
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request("torch==2.5.1", packages=("nvidia-cuda-runtime-cu11",), python="3.12"), Target(),
                      (), source)
    assert caught.value.code == "conflict" and "two CUDA majors" in caught.value.message
    assert "nvidia-cuda-runtime-cu11" in caught.value.message and "nvidia-cuda-runtime-cu12" in caught.value.message


def test_a_package_by_local_url_is_refused_and_one_by_https_is_left_to_pip(source, recorded_index):
    """`name @ file:///...` would make the resolver read the host's file, and the build cannot reach it:
    exit 2. `name @ https://...` is fetched in the build: the plan says pip resolves then, and asks no index."""
    from gpuenv.errors import BadInput

    with pytest.raises(BadInput, match="names a file URL"):
        resolve_whole(request(packages=("requests @ file:///etc/passwd",), python="3.12"), Target(), (), source)
    mark = recorded_index.log.mark()
    url = "requests @ https://files.example.org/requests-2.32.3-py3-none-any.whl"
    plan = resolve_whole(request(packages=(url,), python="3.12"), Target(), (), source)
    assert plan.resolved.status == "unresolved" and "direct URL" in plan.resolved.why
    assert recorded_index.log.paths(since=mark) == []


def test_a_misspelt_package_is_no_such_project_on_the_index(source):
    with pytest.raises(ImpossibleRequest) as caught:
        resolve_whole(request(packages=("reqeusts",), python="3.12"), Target(), (), source)
    assert caught.value.code == "no-such-version"
    assert caught.value.message == f"reqeusts: no such project on {source.index}"


def test_the_same_question_within_minutes_is_answered_without_the_index(source, recorded_index, tmp_path,
                                                                         monkeypatch):
    """The index's caching horizon, kept by gpuenv (resolve/answers.py): a proxy that strips PyPI's caching
    headers would otherwise make every plan fetch every page again. GPUENV_RESOLVE_TTL=0 asks every time."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    steps = step_layout((), (), ("requests",))
    first = compile_steps(steps, (), "3.12", source)
    mark = recorded_index.log.mark()
    again = compile_steps(steps, (), "3.12", source)
    assert again == first and recorded_index.log.paths(since=mark) == []
    monkeypatch.setenv("GPUENV_RESOLVE_TTL", "0")
    mark = recorded_index.log.mark()
    assert compile_steps(steps, (), "3.12", source) == first
    assert any(p.endswith("/requests/") for p in recorded_index.log.paths(since=mark))


def test_what_only_slows_jupyter_is_left_out_of_the_tools_step_unless_the_spec_names_it(source):
    """rfc3987-syntax (jsonschema[format-nongpl], via jupyterlab) is not installed with the tools; named in
    the spec's packages, it is installed in that package's step."""
    plan = resolve_whole(request(python="3.12"), Target(), ("jupyterlab",), source)
    assert plan.resolved.version_of("rfc3987-syntax") is None and plan.resolved.version_of("jsonschema")
    named = resolve_whole(request(packages=("rfc3987-syntax",), python="3.12"), Target(), ("jupyterlab",), source)
    assert "rfc3987-syntax" in {p.name for p in named.resolved.step("packages-1").pins}
