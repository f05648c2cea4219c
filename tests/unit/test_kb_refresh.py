"""`gpuenv kb refresh` without a network: wheel names, METADATA pins, index pages (real, trimmed ones from
tests/fixtures/kb/pypi, see SOURCE.md), the network settings, and the table it writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from packaging.version import Version

from gpuenv.errors import BadInput
from gpuenv.kb import index, refresh, tables
from gpuenv.kb.index import InsecureIndex, IndexClient, Network, bypass_proxy, network_settings
from gpuenv.kb.refresh import parse_wheel_filename, pinned_cuda, python_key, release_version
from gpuenv.spec import parse_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kb" / "pypi"
DAY = dt.date(2026, 11, 22)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


# --- wheel file names ----------------------------------------------------------------------------


@pytest.mark.parametrize("filename,project,pythons,linux,pure", [
    ("torch-2.9.1-cp314-cp314t-manylinux_2_28_x86_64.whl", "torch", ["3.14t"], True, False),
    ("torch-2.9.1-cp310-cp310-manylinux_2_28_x86_64.whl", "torch", ["3.10"], True, False),
    ("tensorflow_gpu-1.2.1-cp27-cp27mu-manylinux1_x86_64.whl", "tensorflow-gpu", ["2.7"], True, False),
    ("tensorflow-2.20.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "tensorflow", ["3.10"],
     True, False),
    ("mxnet_cu90mkl-1.2.1-py2.py3-none-manylinux1_x86_64.whl", "mxnet-cu90mkl", ["py2", "py3"], True, False),
    ("nvidia_cudnn_cu12-9.1.0.70-py3-none-manylinux2014_x86_64.whl", "nvidia-cudnn-cu12", ["py3"], True, False),
    ("jax-0.4.33-py3-none-any.whl", "jax", ["py3"], False, True),
    ("example-1.0-cp38-abi3-manylinux2014_x86_64.whl", "example", ["3.8+"], True, False),
    ("example-1.0-cp36.cp37-cp36m.cp37m-linux_x86_64.whl", "example", ["3.6", "3.7"], True, False),
    ("example-1.0-py36-none-any.whl", "example", ["3.6"], False, True),
    ("torch-1.0.0-1-cp36-cp36m-linux_x86_64.whl", "torch", ["3.6"], True, False),  # a build tag
    ("torch-1.0.0-cp36-none-macosx_10_7_x86_64.whl", "torch", ["3.6"], False, False),
    ("torch-2.9.1-cp312-cp312-manylinux_2_28_aarch64.whl", "torch", ["3.12"], False, False),
    ("torch-2.9.1-cp312-cp312-win_amd64.whl", "torch", ["3.12"], False, False),
    ("example-1.0-cp312-cp312-musllinux_1_1_x86_64.whl", "example", ["3.12"], False, False),
    ("example-1.0-cp312-cp312-linux_i686.whl", "example", ["3.12"], False, False),
    ("example-1.0-pp37-pypy37_pp73-manylinux2010_x86_64.whl", "example", [], True, False),
])
def test_wheel_filenames(filename, project, pythons, linux, pure):
    wheel = parse_wheel_filename(filename)
    assert wheel is not None
    assert (wheel.project, wheel.python_versions(), wheel.linux_x86_64, wheel.pure) == (project, pythons, linux, pure)


@pytest.mark.parametrize("filename", ["torch-1.0.0.tar.gz", "torch.whl", "torch-1.0-cp36.whl", "a--b-c-d.whl"])
def test_what_is_no_wheel_name(filename):
    assert parse_wheel_filename(filename) is None


def test_pythons_sort_by_number_then_pure_tags():
    values = ["py3", "3.10", "3.9", "3.13t", "py2", "3.13", "2.7", "3.8+"]
    assert sorted(values, key=python_key) == ["2.7", "3.8+", "3.9", "3.10", "3.13", "3.13t", "py2", "py3"]


@pytest.mark.parametrize("text,kept", [
    ("1.2.1", True), ("1.0.0.post1", True), ("1.7.0.post97", True), ("2.15.0.post1", True),
    ("2.20.0rc0", False), ("2.0b1", False), ("0.4.0a1", False), ("1.0.dev1", False),
    ("9.26.0.33.dev63203437", False), ("not-a-version", False),
])
def test_pre_releases_and_unparsable_versions_are_left_out(text, kept):
    assert (release_version(text) is not None) == kept


# --- METADATA pins -------------------------------------------------------------------------------


@pytest.mark.parametrize("name,extra,pins", [
    ("torch-1.13.1-cp310-cp310-manylinux1_x86_64.whl.METADATA", "", {"cuda": "11.7", "cudnn": "8.5.0.96"}),
    ("torch-2.15.0-cp312-cp312-manylinux_2_28_x86_64.whl.METADATA", "", {"cuda": "13.2", "cudnn": "9.26.0.51"}),
    ("tensorflow-2.16.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.METADATA", "and-cuda",
     {"cuda": "12.3", "cudnn": "8.9.7.29"}),
    ("tensorflow-2.16.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.METADATA", "", {}),
    ("jax_cuda12_plugin-0.9.2-cp312-cp312-manylinux_2_27_x86_64.whl.METADATA", "with-cuda", {}),  # lower bounds
])
def test_pins_from_real_metadata(name, extra, pins):
    assert pinned_cuda(fixture(name), extra) == pins


def test_pins_apply_on_linux_x86_64_only():
    text = ("Metadata-Version: 2.1\nName: torch\nVersion: 9.0\n"
            "Requires-Dist: nvidia-cuda-runtime-cu12==12.1.105; platform_system == \"Windows\"\n"
            "Requires-Dist: nvidia-cuda-runtime-cu12==12.4.127; platform_machine == \"x86_64\"\n"
            "Requires-Dist: nvidia-cudnn-cu12==9.1.0.70; platform_machine == \"aarch64\"\n"
            "Requires-Dist: nvidia-cudnn-cu12>=9; sys_platform == \"linux\"\n"
            "Requires-Dist: this is not a requirement\n")
    assert pinned_cuda(text) == {"cuda": "12.4"}


@pytest.mark.parametrize("name,extras", [
    ("tensorflow-2.16.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.METADATA", ["and-cuda"]),
    ("torch-2.15.0-cp312-cp312-manylinux_2_28_x86_64.whl.METADATA", ["optree", "opt-einsum", "pyyaml"]),
    ("jax_cuda12_plugin-0.9.2-cp312-cp312-manylinux_2_27_x86_64.whl.METADATA", ["with-cuda"]),
])
def test_extras_from_real_metadata(name, extras):
    assert refresh.provided_extras(fixture(name)) == extras


def test_extras_are_normalized_as_pep_685_says():
    text = "Metadata-Version: 2.1\nName: jax\nVersion: 0.4.20\nProvides-Extra: cuda12_pip\nProvides-Extra: Cuda12-Local\n" \
           "Provides-Extra: cuda12-pip\n"
    assert refresh.provided_extras(text) == ["cuda12-pip", "cuda12-local"]


def test_what_a_row_takes_from_metadata():
    from packaging.version import Version

    tf = fixture("tensorflow-2.16.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.METADATA")
    assert refresh.from_metadata("tensorflow", Version("2.16.1"), tf) == {
        "cuda": "12.3", "cudnn": "8.9.7.29", "extras": ["and-cuda"]}
    torch = fixture("torch-2.15.0-cp312-cp312-manylinux_2_28_x86_64.whl.METADATA")
    assert "extras" not in refresh.from_metadata("torch", Version("2.15.0"), torch)  # torch's variants are no extras
    assert refresh.reads_metadata("jax", Version("0.4.30")) and not refresh.reads_metadata("jaxlib", Version("0.4.30"))


def test_a_release_with_only_an_sdist_is_a_row_without_pythons():
    page = index.parse_html_page(fixture("tensorflow-gpu.html"), "https://pypi.org/simple/tensorflow-gpu/",
                                 "tensorflow-gpu")
    rows = rows_of(page)
    assert list(rows) == ["1.2.1", "2.10.0", "2.12.0"]
    assert rows["2.12.0"].row["python"] == [] and rows["2.12.0"].row["sdist_only"] is True
    assert rows["2.12.0"].probe is None and "sdist_only" not in rows["2.10.0"].row


def test_the_shipped_snapshot_has_the_extras_and_the_tensorflow_gpu_history(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUENV_KB_DIR", str(tmp_path))
    tables.load_table.cache_clear()
    try:
        rows = {(r["project"], r["version"]): r for r in tables.load_table("pypi")["release"]}
    finally:
        tables.load_table.cache_clear()
    assert {"cuda", "cuda12", "cuda12-local", "cuda12-pip"} <= set(rows["jax", "0.4.30"]["extras"])
    assert "cuda13" not in rows["jax", "0.4.30"]["extras"] and "cuda13" in rows["jax", "0.7.2"]["extras"]
    assert rows["tensorflow", "2.13.0"]["extras"] == [] and "and-cuda" in rows["tensorflow", "2.14.0"]["extras"]
    assert rows["tensorflow-gpu", "2.12.0"]["sdist_only"] is True
    assert max((v for (p, v), r in rows.items() if p == "tensorflow-gpu" and r["python"]), key=Version) == "2.11.0"


def test_which_releases_have_their_pins_read():
    from packaging.version import Version

    assert refresh.wants_pins("torch", Version("1.12.1")) is None
    assert refresh.wants_pins("torch", Version("1.13.0")) == ""
    assert refresh.wants_pins("tensorflow", Version("2.16.1")) == "and-cuda"
    assert refresh.wants_pins("tensorflow", Version("2.13.0")) is None
    assert refresh.wants_pins("jaxlib", Version("0.4.30")) is None


# --- index pages ---------------------------------------------------------------------------------


def rows_of(page):
    return {r.row["version"]: r for r in refresh.releases(page, DAY)}


def test_a_json_page_of_torch():
    page = index.parse_json_page(fixture("torch.json"), "https://pypi.org/simple/torch/", "torch")
    assert page.kind == "json" and len(page.links) == 58
    rows = rows_of(page)
    assert list(rows) == ["1.0.0", "1.13.1", "2.9.1"]
    assert rows["1.0.0"].row["python"] == ["2.7", "3.5", "3.6", "3.7"]
    assert "requires_python" not in rows["1.0.0"].row  # declared nowhere
    newest = rows["2.9.1"].row
    assert newest["python"] == ["3.10", "3.11", "3.12", "3.13", "3.13t", "3.14", "3.14t"]
    assert newest["requires_python"] == ">=3.10"
    assert (newest["source"], newest["retrieved"]) == ("https://pypi.org/simple/torch/", "2026-11-22")
    probe = rows["1.13.1"].probe
    assert probe is not None and "manylinux" in probe.filename and "x86_64" in probe.filename
    assert probe.url.startswith("https://files.pythonhosted.org/packages/")


def test_a_json_page_skips_pre_releases():
    page = index.parse_json_page(fixture("tensorflow.json"), "https://pypi.org/simple/tensorflow/", "tensorflow")
    rows = rows_of(page)
    assert list(rows) == ["1.2.1", "2.20.0"]
    assert rows["1.2.1"].row["python"] == ["2.7", "3.3", "3.4", "3.5", "3.6"]


def test_an_html_page_skips_yanked_files_and_sdists():
    page = index.parse_html_page(fixture("jax.html"), "https://pypi.org/simple/jax/", "jax")
    assert page.kind == "html"
    yanked = {link.filename for link in page.links if link.yanked}
    assert yanked == {"jax-0.4.0.tar.gz", "jax-0.4.32.tar.gz", "jax-0.4.32-py3-none-any.whl"}
    rows = rows_of(page)
    assert list(rows) == ["0.4.31", "0.4.33"]  # 0.4.32 yanked, 0.4.0 an sdist
    assert rows["0.4.33"].row["python"] == ["py3"]
    assert rows["0.4.33"].row["requires_python"] == ">=3.10"  # &gt; unescaped
    assert rows["0.4.33"].probe.filename == "jax-0.4.33-py3-none-any.whl"  # a pure wheel: read for its extras
    assert all("#" not in link.url for link in page.links)  # the #sha256= fragment is dropped


def test_an_html_page_without_requires_python():
    page = index.parse_html_page(fixture("tensorflow-gpu.html"), "https://pypi.org/simple/tensorflow-gpu/",
                                 "tensorflow-gpu")
    rows = rows_of(page)
    assert list(rows) == ["1.2.1", "2.10.0", "2.12.0"]  # 2.12.0: its sdist alone (a row without Pythons)
    assert "requires_python" not in rows["1.2.1"].row
    assert rows["1.2.1"].row["python"] == ["2.7", "3.3", "3.4", "3.5", "3.6"]


def test_pep_658_and_relative_urls_in_both_formats():
    page = index.parse_json_page(json.dumps({"meta": {"api-version": "1.1"}, "name": "torch", "files": [
        {"filename": "torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl", "url": "../../files/torch.whl",
         "core-metadata": {"sha256": "ab"}, "yanked": False, "requires-python": ">=3.8"},
        {"filename": "torch-2.5.0-cp312-cp312-manylinux1_x86_64.whl", "url": "t2.whl", "dist-info-metadata": True,
         "yanked": "broken"},
        {"filename": "torch-2.4.0-cp312-cp312-manylinux1_x86_64.whl", "url": "t3.whl", "core-metadata": False},
    ]}), "https://mirror.example/simple/torch/")
    first, second, third = page.links
    assert first.url == "https://mirror.example/files/torch.whl" and first.metadata == {"sha256": "ab"}
    assert second.metadata == {} and second.yanked and second.url == "https://mirror.example/simple/torch/t2.whl"
    assert third.metadata is None and not third.yanked

    html = ('<html><body><a href="/p/torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl#sha256=00" '
            'data-core-metadata="sha256=cd" data-requires-python="&gt;=3.8">torch-2.5.1-cp312-cp312-manylinux1_x86_64'
            '.whl</a><a href="t.whl" data-dist-info-metadata>torch-2.5.0-cp312-cp312-manylinux1_x86_64.whl</a>'
            '<a href="t4.whl">torch-2.4.0-cp312-cp312-manylinux1_x86_64.whl</a></body></html>')
    page = index.parse_html_page(html, "http://mirror.example/simple/torch/", "torch")
    first, second, third = page.links
    assert (first.url, first.metadata, first.requires_python) == (
        "http://mirror.example/p/torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl", {"sha256": "cd"}, ">=3.8")
    assert second.metadata == {} and third.metadata is None


def test_a_plain_http_mirror_is_recorded_as_pypi_with_a_note():
    page = index.Page("Torch", "http://mirror.example/simple/torch/", "html", (
        index.Link("torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl", "http://mirror.example/t.whl"),))
    row = refresh.releases(page, DAY)[0].row
    assert row["source"] == "https://pypi.org/simple/torch/"
    assert row["note"] == "read from http://mirror.example/simple/torch/ (a plain-http mirror)"
    tables.parse_table("pypi", (refresh.render([row], {}), "json"))  # the loader takes it


def test_a_page_that_is_no_json_is_an_error():
    with pytest.raises(index.IndexAccessError):
        index.parse_json_page("<html>", "https://x.example/simple/torch/")


# --- the table -----------------------------------------------------------------------------------


def test_the_table_is_sorted_one_row_per_line_and_loads():
    page = index.parse_json_page(fixture("torch.json"), "https://pypi.org/simple/torch/", "torch")
    rows = [r.row for r in refresh.releases(page, DAY)]
    rows.append({**rows[0], "version": "1.13.10"})
    rows.sort(key=refresh.sort_key)
    assert [r["version"] for r in rows] == ["1.0.0", "1.13.1", "1.13.10", "2.9.1"]  # by number, not text
    text = refresh.render(rows, {"index": "https://pypi.org/simple", "retrieved": "2026-11-22"})
    lines = text.splitlines()
    assert lines[0].startswith('{"meta":') and lines[1] == '"release":['
    assert len(lines) == 2 + len(rows) + 1
    assert list(json.loads(lines[2].rstrip(","))) == ["project", "version", "python", "source", "retrieved"]
    loaded = tables.parse_table("pypi", (text, "json"))
    assert loaded["release"][0]["retrieved"] == DAY


def test_the_shipped_snapshot_loads_and_is_small(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUENV_KB_DIR", str(tmp_path))  # no user table: the shipped one
    tables.load_table.cache_clear()
    try:
        rows = tables.load_table("pypi")["release"]
        assert len(rows) > 500
        projects = {r["project"] for r in rows}
        assert {"torch", "tensorflow-gpu", "mxnet-cu90mkl", "jaxlib", "paddlepaddle-gpu"} <= projects
        torch_251 = next(r for r in rows if (r["project"], r["version"]) == ("torch", "2.5.1"))
        assert torch_251["cuda"] == "12.4" and torch_251["cudnn"].startswith("9.1.")
        assert refresh.snapshot_date() is not None
    finally:
        tables.load_table.cache_clear()
    shipped = Path(refresh.__file__).parent / "data" / "pypi.json"
    assert shipped.stat().st_size < 1_500_000


def test_a_valid_user_table_wins_and_a_broken_one_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUENV_KB_DIR", str(tmp_path))
    row = {"project": "torch", "version": "9.9.9", "python": ["3.12"], "source": "https://pypi.org/simple/torch/",
           "retrieved": "2001-02-03"}
    try:
        (tmp_path / "pypi.json").write_text(refresh.render([row], {"retrieved": "2001-02-03"}))
        tables.load_table.cache_clear()
        assert [r["version"] for r in tables.load_table("pypi")["release"]] == ["9.9.9"]
        assert refresh.snapshot_date() == dt.date(2001, 2, 3)
        (tmp_path / "pypi.json").write_text(refresh.render([{**row, "source": "ftp://x"}], {}))
        tables.load_table.cache_clear()
        assert len(tables.load_table("pypi")["release"]) > 500  # the shipped one
    finally:
        tables.load_table.cache_clear()


def test_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GPUENV_KB_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert refresh.user_table_path() == tmp_path / "gpuenv" / "kb" / "pypi.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert refresh.user_table_path() == tmp_path / ".local" / "share" / "gpuenv" / "kb" / "pypi.json"


def test_an_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "pypi.json"
    refresh.write_atomically(target, "one")
    refresh.write_atomically(target, "two")
    assert target.read_text() == "two" and [p.name for p in target.parent.iterdir()] == ["pypi.json"]


# --- network settings ----------------------------------------------------------------------------


def spec_network(text: str):
    return parse_spec(text).network


def test_the_index_comes_from_the_flag_then_the_spec_then_pip_index_url():
    env = {"PIP_INDEX_URL": "https://env.example/simple"}
    spec = spec_network('[network]\npip_index = "https://spec.example/simple/"\n')
    assert network_settings(spec, "https://flag.example/simple", env=env).index == "https://flag.example/simple"
    net = network_settings(spec, None, env=env)
    assert (net.index, net.index_origin) == ("https://spec.example/simple", "network.pip_index")
    assert network_settings(None, None, env=env).index_origin == "PIP_INDEX_URL"
    assert network_settings(None, None, env={}).index == "https://pypi.org/simple"
    with pytest.raises(BadInput):
        network_settings(None, "ftp://flag.example/simple", env={})


def test_proxies_come_from_the_spec_else_the_environment():
    env = {"HTTPS_PROXY": "http://envproxy:3128", "http_proxy": "http://envhttp:3128", "NO_PROXY": "a.example, b"}
    net = network_settings(None, None, env=env)
    assert (net.https_proxy, net.http_proxy, net.no_proxy) == ("http://envproxy:3128", "http://envhttp:3128",
                                                               ("a.example", "b"))
    spec = spec_network('[network]\nhttps_proxy = "http://specproxy:8080"\nno_proxy = ["corp"]\n')
    net = network_settings(spec, None, env=env)
    assert (net.https_proxy, net.http_proxy, net.no_proxy) == ("http://specproxy:8080", "http://envhttp:3128",
                                                               ("corp",))


def test_cas_come_from_the_spec_then_pip_cert_and_friends(tmp_path):
    env = {"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}
    assert network_settings(None, None, env=env).ca_files == ("/r.pem",)
    assert network_settings(None, None, env={**env, "PIP_CERT": "/p.pem"}).ca_origin == "PIP_CERT"
    spec = spec_network('[network]\nca_certificates = ["certs/corp.crt"]\n')
    net = network_settings(spec, None, base_dir=tmp_path, env=env)
    assert net.ca_files == (str(tmp_path / "certs" / "corp.crt"),) and net.ca_origin == "network.ca_certificates"
    assert network_settings(spec_network('[network]\nca_certificates = "none"\n'), None, env=env).ca_files == ()
    assert network_settings(spec_network('[network]\nca_certificates = "auto"\n'), None, env=env).ca_files == (
        "/r.pem",)
    with pytest.raises(BadInput, match="does not exist"):
        IndexClient(net)


def test_plain_http_only_for_trusted_hosts():
    with pytest.raises(InsecureIndex) as caught:
        IndexClient(Network(index="http://mirror.example/simple"))
    assert "pip_trusted_hosts" in caught.value.hint and caught.value.exit_code == 2
    client = IndexClient(Network(index="http://mirror.example:8080/simple", trusted_hosts=("mirror.example",)))
    client.check_url("http://mirror.example:8080/packages/x.whl")
    with pytest.raises(InsecureIndex):
        client.check_url("http://other.example/packages/x.whl")
    IndexClient(Network(index="http://mirror.example:8080/simple", trusted_hosts=("mirror.example:8080",)))


def test_credentials_in_the_index_url_are_never_recorded():
    client = IndexClient(Network(index="https://user:secret@mirror.example/simple"))
    assert client.index == "https://mirror.example/simple"
    assert client.page_url("torch") == "https://mirror.example/simple/torch/"
    assert index.public_url("https://u:p@h.example:8443/x") == "https://h.example:8443/x"


@pytest.mark.parametrize("host,port,entries,bypassed", [
    ("pypi.org", None, [], False),
    ("localhost", None, ["localhost"], True),
    ("files.corp.example", None, [".corp.example"], True),
    ("files.corp.example", None, ["corp.example"], True),
    ("notcorp.example", None, ["corp.example"], False),
    ("10.1.2.3", None, ["10.0.0.0/8"], True),
    ("11.1.2.3", None, ["10.0.0.0/8"], False),
    ("127.0.0.1", None, ["127.0.0.1"], True),
    ("mirror.example", 8080, ["mirror.example:8080"], True),
    ("mirror.example", 443, ["mirror.example:8080"], False),
    ("anything.example", None, ["*"], True),
])
def test_no_proxy(host, port, entries, bypassed):
    assert bypass_proxy(host, port, entries) == bypassed


def test_the_proxy_for_a_url():
    client = IndexClient(Network(https_proxy="http://proxy:3128", no_proxy=("pypi.org",)))
    assert client.proxy_for("https://files.pythonhosted.org/x") == "http://proxy:3128"
    assert client.proxy_for("https://pypi.org/simple/torch/") is None
    assert client.proxy_for("http://mirror.example/simple/") is None  # no http proxy set
