"""The recorded package index (tests/fixtures/index/, served by tests/support/pyindex.py) and the real
resolver on it, with the internet shut out: the index speaks PEP 691 JSON, PEP 503 HTML and PEP 658
metadata; `uv pip compile` answers every recorded case as live PyPI did."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gpuenv.kb.index import IndexClient, Network, parse_html_page, parse_json_page
from tests.support.indexcases import FIXTURES, answer, load_cases
from tests.support.pyindex import JSON_TYPE, IndexFile, Project, wants_json
from tests.support.uvrun import pins, uv_compile

CASES = [(case, python) for case in load_cases() for python in case.pythons]


def get(url: str, accept: str = "") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as answer_:
            return answer_.status, answer_.headers.get("Content-Type", ""), answer_.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def compile_(recorded_index, uv_env, requirements, python="3.12", variants=()):
    return uv_compile(requirements, python, recorded_index.simple, uv_env,
                      extra_index_urls=[recorded_index.variant(t) for t in variants])


# --- the server ----------------------------------------------------------------------------------


def test_a_project_page_is_pep691_json_with_hashes_requires_python_and_core_metadata(recorded_index):
    status, kind, body = get(f"{recorded_index.simple}/torch/", JSON_TYPE)
    assert (status, kind) == (200, JSON_TYPE)
    page = json.loads(body)
    assert page["meta"]["api-version"] == "1.1" and page["name"] == "torch"
    wheel = next(f for f in page["files"] if f["filename"] == "torch-2.4.1-cp312-cp312-manylinux1_x86_64.whl")
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["hashes"]["sha256"])
    assert wheel["requires-python"] == ">=3.8.0"
    assert wheel["core-metadata"] == wheel["data-dist-info-metadata"]
    assert "2.4.1" in page["versions"] and "2.5.1" in page["versions"]


def test_the_metadata_file_is_the_recorded_one_and_matches_the_hash_the_page_gives(recorded_index):
    page = json.loads(get(f"{recorded_index.simple}/torch/", JSON_TYPE)[2])
    wheel = next(f for f in page["files"] if f["filename"] == "torch-2.4.1-cp312-cp312-manylinux1_x86_64.whl")
    status, _, metadata = get(f"{recorded_index.server.url}{wheel['url']}.metadata")
    assert status == 200
    assert hashlib.sha256(metadata).hexdigest() == wheel["core-metadata"]["sha256"]
    text = metadata.decode()
    assert "\nVersion: 2.4.1\n" in text
    assert re.search(r"^Requires-Dist: nvidia-cudnn-cu12 ?\(?==9\.1\.0\.70", text, re.M)


def test_plain_pep503_html_when_html_is_asked(recorded_index):
    url = f"{recorded_index.simple}/requests/"
    status, kind, body = get(url, "text/html")
    assert status == 200 and kind.startswith("application/vnd.pypi.simple.v1+html")
    html_page = parse_html_page(body.decode(), url, "requests")
    json_page = parse_json_page(get(url, JSON_TYPE)[2].decode(), url, "requests")
    assert [link.filename for link in html_page.links] == [link.filename for link in json_page.links]
    assert all(link.url.startswith(recorded_index.server.url + "/packages/") for link in html_page.links)
    assert any(link.metadata for link in html_page.links) and any(link.requires_python for link in html_page.links)
    assert "#sha256=" in body.decode()


@pytest.mark.parametrize("accept, query, as_json", [
    (JSON_TYPE, "", True),
    ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01", "", True),
    ("text/html", "", False),
    ("", "", False),
    ("application/vnd.pypi.simple.v1+json;q=0.1, text/html", "", False),
    ("text/html", "format=application/vnd.pypi.simple.v1%2Bjson", True),
])
def test_content_negotiation(accept, query, as_json):
    assert wants_json(accept, query) is as_json


def test_an_unknown_project_is_404_and_no_distribution_is_ever_served(recorded_index):
    assert get(f"{recorded_index.simple}/no-such-project-here/", JSON_TYPE)[0] == 404
    page = json.loads(get(f"{recorded_index.simple}/requests/", JSON_TYPE)[2])
    assert get(recorded_index.server.url + page["files"][0]["url"])[0] == 404


def test_gpuenv_index_client_reads_the_metadata_through_pep658(recorded_index):
    client = IndexClient(Network(index=recorded_index.simple, trusted_hosts=("127.0.0.1",)))
    page = client.project_page("xformers")
    assert page is not None and page.kind == "json"
    link = next(link for link in page.links if link.filename.startswith("xformers-0.0.28.post1-cp312"))
    metadata = client.wheel_metadata(link)
    assert metadata is not None and "Requires-Dist: torch==2.4.1" in metadata
    assert (client.stats.metadata_pep658, client.stats.metadata_range) == (1, 0)


def test_the_variant_index_has_pytorch_layout_and_local_versions(recorded_index):
    url = f"{recorded_index.variant('cu118')}/torch/"
    page = json.loads(get(url, JSON_TYPE)[2])
    names = [f["filename"] for f in page["files"]]
    assert "torch-2.4.1+cu118-cp312-cp312-linux_x86_64.whl" in names
    assert all(f["url"].startswith("/whl/cu118/torch-2.4.1%2Bcu118-") for f in page["files"])
    assert page["versions"] == ["2.4.1+cu118"]
    with pytest.raises(KeyError, match="cu118"):
        recorded_index.variant("cu999")


def test_a_real_index_url_maps_to_its_stand_in(recorded_index):
    assert recorded_index.stand_in("https://pypi.org/simple/") == recorded_index.simple
    assert recorded_index.stand_in("https://download.pytorch.org/whl/cu121") == recorded_index.variant("cu121")
    with pytest.raises(KeyError, match="cu999"):
        recorded_index.stand_in("https://download.pytorch.org/whl/cu999")
    with pytest.raises(KeyError, match="mirror.example"):
        recorded_index.stand_in("https://mirror.example/simple")


# --- the real resolver on it, offline -------------------------------------------------------------


def test_the_internet_is_shut_out_of_the_resolver(uv_env):
    done = uv_compile(["requests"], "3.12", "https://pypi.org/simple", {**uv_env, "UV_HTTP_RETRIES": "0"},
                      timeout=60)
    assert done.returncode != 0
    assert "pypi.org" in done.stderr


def test_torch_with_xformers_resolves_to_torch_2_4_1_on_python_3_12_without_a_download(recorded_index, uv_env):
    mark = recorded_index.log.mark()
    done = compile_(recorded_index, uv_env, ["torch>=2.4", "xformers==0.0.28.post1"])
    assert done.returncode == 0, done.stderr
    found = pins(done.stdout)
    assert found["torch"] == "2.4.1" and found["xformers"] == "0.0.28.post1"
    assert found["nvidia-cudnn-cu12"] == "9.1.0.70" and found["nvidia-cublas-cu12"] == "12.1.3.1"
    page = json.loads(get(f"{recorded_index.simple}/torch/", JSON_TYPE)[2])
    wheel = next(f for f in page["files"] if f["filename"] == "torch-2.4.1-cp312-cp312-manylinux1_x86_64.whl")
    assert f"--hash=sha256:{wheel['hashes']['sha256']}" in done.stdout
    assert recorded_index.log.paths(".metadata", since=mark)
    assert not [p for p in recorded_index.log.paths(since=mark) if p.endswith((".whl", ".tar.gz", ".zip"))]


def test_torch_with_xformers_fails_on_python_3_14_naming_xformers(recorded_index, uv_env):
    done = compile_(recorded_index, uv_env, ["torch>=2.4", "xformers==0.0.28.post1"], python="3.14")
    assert done.returncode == 1
    assert "xformers==0.0.28.post1 has no usable wheels" in done.stderr


def test_torch_2_5_1_with_jax_cuda12_fails_on_the_cudnn_pin(recorded_index, uv_env):
    done = compile_(recorded_index, uv_env, ["torch==2.5.1", "jax[cuda12]==0.6.0"])
    assert done.returncode == 1
    assert "nvidia-cudnn-cu12>=9.8" in done.stderr and "==9.1.0.70" in done.stderr


def test_the_cu118_variant_gives_torch_with_its_cuda_11_pins(recorded_index, uv_env):
    done = compile_(recorded_index, uv_env, ["torch==2.4.1+cu118"], variants=["cu118"])
    assert done.returncode == 0, done.stderr
    found = pins(done.stdout)
    assert found["torch"] == "2.4.1+cu118"
    assert found["nvidia-cudnn-cu11"] == "9.1.0.70" and found["nvidia-cuda-runtime-cu11"] == "11.8.89"
    assert not [name for name in found if name.endswith("-cu12")]


@pytest.mark.parametrize("case, python", CASES, ids=[f"{c.id}-py{p}" for c, p in CASES])
def test_every_recorded_case_answers_as_live_pypi_did(recorded_index, uv_env, case, python):
    got = answer(case, python, recorded_index.simple, recorded_index.variant, uv_env, recorded_index.server.url)
    assert got == case.answer_path(python).read_text()


def test_uv_offline_gives_code_that_starts_uv_itself_the_offline_environment(recorded_index, uv_offline):
    import os
    import subprocess

    from tests.support.uvrun import compile_args

    assert os.environ["UV_PYTHON_DOWNLOADS"] == "never" and os.environ["NO_PROXY"] == "127.0.0.1,localhost"
    done = subprocess.run(compile_args("3.12", recorded_index.simple), input="requests\n", capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "requests==" in done.stdout


# --- scripts/record-index: what it keeps, what it constructs ------------------------------------------


def record_index():
    """scripts/record-index as a module (it has no .py name), loaded once."""
    if "record_index" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "scripts" / "record-index"
        loader = importlib.machinery.SourceFileLoader("record_index", str(path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader("record_index", loader))
        sys.modules["record_index"] = module
        loader.exec_module(module)
    return sys.modules["record_index"]


@pytest.mark.parametrize("filename, kept", [
    ("torch-2.4.1-cp312-cp312-manylinux1_x86_64.whl", True),
    ("torch-2.4.1+cu118-cp312-cp312-linux_x86_64.whl", True),
    ("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
    ("requests-2.32.3-py3-none-any.whl", True),
    ("requests-2.32.3.tar.gz", True),
    ("torch-2.4.1-cp312-none-macosx_11_0_arm64.whl", False),
    ("torch-2.4.1-cp312-cp312-win_amd64.whl", False),
    ("numpy-2.1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", False),
    ("numpy-2.1.0-cp312-cp312-musllinux_1_1_x86_64.whl", False),
])
def test_the_recording_keeps_linux_x86_64_pure_wheels_and_sdists(filename, kept):
    assert record_index().kept_platform(filename) is kept


def test_the_recording_keeps_what_the_resolver_read_and_two_releases_either_side():
    script = record_index()
    versions = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "2.0rc1"]
    project = Project("demo", tuple(IndexFile(f"demo-{v}-py3-none-any.whl", "0" * 64) for v in versions))
    assert script.kept_versions(project, {"1.5"}) == ["1.3", "1.4", "1.5", "1.6", "1.7"]
    assert script.kept_versions(project, {"2.0rc1"}) == ["1.7", "1.8", "2.0rc1"]
    assert script.kept_versions(project, set()) == ["1.7", "1.8", "2.0rc1"]


def constructed_builds():
    return record_index().load_builds(FIXTURES / "variants.toml")


@pytest.mark.parametrize("build", constructed_builds(), ids=lambda b: f"{b.project}-{b.version}+{b.token}")
def test_each_constructed_build_is_pypis_metadata_with_only_the_local_version_and_its_pins_changed(build):
    page = json.loads((FIXTURES / "pypi" / "pages" / f"{build.project}.json").read_text())
    source = next(f["metadata"] for f in page["files"]
                  if f["filename"].startswith(f"{build.project}-{build.version}-cp312") and "x86_64" in f["filename"])
    pypi_text = (FIXTURES / "pypi" / "metadata" / source).read_text()
    variant_page = json.loads((FIXTURES / "variants" / build.token / "pages" / f"{build.project}.json").read_text())
    entry = next(f for f in variant_page["files"] if f"-{build.version}+{build.token}-" in f["filename"])
    served = (FIXTURES / "variants" / build.token / "metadata" / entry["metadata"]).read_text()
    assert served == record_index().constructed_metadata(pypi_text, build)
    assert f"\nVersion: {build.version}+{build.token}\n" in served


def test_the_cu118_torch_carries_the_cuda_11_8_pins_and_the_cpu_torch_no_cuda_wheel():
    def requires(token: str, version: str) -> list[str]:
        page = json.loads((FIXTURES / "variants" / token / "pages" / "torch.json").read_text())
        name = next(f["metadata"] for f in page["files"] if f"-{version}+{token}-" in f["filename"])
        text = (FIXTURES / "variants" / token / "metadata" / name).read_text()
        return re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)", text, re.M)

    cu118 = [name for name in requires("cu118", "2.4.1") if name.startswith("nvidia-")]
    assert len(cu118) == 11 and all(name.endswith("-cu11") for name in cu118)
    assert "triton" in requires("cu118", "2.4.1")
    cpu = requires("cpu", "2.5.1")
    assert "filelock" in cpu and not [n for n in cpu if n.startswith("nvidia-") or n == "triton"]


def test_every_constructed_file_says_so_and_its_hash_is_the_announced_fake():
    script = record_index()
    for page_path in (FIXTURES / "variants").glob("*/pages/*.json"):
        for entry in json.loads(page_path.read_text())["files"]:
            assert entry["constructed"] is True
            assert entry["sha256"] == hashlib.sha256(script.CONSTRUCTED + entry["filename"].encode()).hexdigest()
