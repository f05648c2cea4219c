"""Hashes from recorded PyPI pages of six (tests/fixtures/lock/SOURCES.md): PEP 691 JSON and PEP 503 HTML
say the same, and every file of the pinned version is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuenv.errors import GpuenvError
from gpuenv.lock.hashes import Indexes, _extra_urls, html_files, json_files, of_version

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lock"
SIX_1_16 = ["sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926",   # the sdist
            "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"]   # the wheel


def test_json_and_html_pages_give_the_same_hashes() -> None:
    json_found = json_files((FIXTURES / "pypi-six.json").read_text(), "https://pypi.org/simple/six/")
    html_found = html_files((FIXTURES / "pypi-six.html").read_text())
    assert sorted(json_found) == sorted(html_found)
    assert len(json_found) == 48


@pytest.mark.parametrize("page", ["json", "html"])
def test_every_file_of_the_version_and_no_other(page: str) -> None:
    text = (FIXTURES / f"pypi-six.{page}").read_text()
    files = json_files(text, "x") if page == "json" else html_files(text)
    assert of_version(files, "six", "1.16.0") == SIX_1_16
    assert of_version(files, "Six", "1.16") == SIX_1_16                # names and versions as PEP 503/440 compare
    assert of_version(files, "six", "1.16.1") == []
    assert len(of_version(files, "six", "1.10.0")) == 2


def test_a_page_that_is_not_pep_691_is_an_error() -> None:
    with pytest.raises(GpuenvError, match="not a PEP 691 project page"):
        json_files("<html>", "https://example.org/simple/six/")


def test_a_wheel_with_a_local_version_and_the_other_projects_files() -> None:
    files = [("torch-2.5.1+cpu-cp311-cp311-linux_x86_64.whl", "aa"), ("torch-2.5.1-cp311-cp311-linux_x86_64.whl", "bb"),
             ("torchvision-2.5.1.tar.gz", "cc"), ("not a file name", "dd")]
    assert of_version(files, "torch", "2.5.1+cpu") == ["sha256:aa"]
    assert of_version(files, "torch", "2.5.1") == ["sha256:bb"]


class _Index:
    """An index that answers from the recorded page, as the index client would."""

    def __init__(self, index: str, pages: dict[str, str]) -> None:
        self.index, self.pages = index, pages

    def page_url(self, project: str) -> str:
        return f"{self.index}/{project}/"

    def get(self, url: str, headers: dict) -> object:
        from gpuenv.kb.index import Response

        text = self.pages.get(url)
        if text is None:
            return Response(url, 404, {})
        return Response(url, 200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, text.encode())


def test_the_first_index_that_has_the_version_gives_its_hashes() -> None:
    six = (FIXTURES / "pypi-six.json").read_text()
    first, extra = _Index("https://mirror.example/simple", {}), _Index("https://pypi.org/simple",
                                                                      {"https://pypi.org/simple/six/": six})
    indexes = Indexes([first, extra])
    assert indexes.hashes("six", "1.16.0") == (SIX_1_16, "https://pypi.org/simple")
    hashes, why = indexes.hashes("my-local-build", "1.0")
    assert hashes == [] and "no index" in why


def test_extra_indexes_from_pip_options() -> None:
    assert _extra_urls(("--extra-index-url", "https://download.pytorch.org/whl/cu118",
                        "--extra-index-url=https://x.example/simple")) == \
        ["https://download.pytorch.org/whl/cu118", "https://x.example/simple"]


def test_an_unreachable_index_is_a_clear_error(tmp_path: Path) -> None:
    """The real index client, pointed at a port where nothing listens: no traceback, the index named."""
    from gpuenv.kb.index import IndexAccessError
    from gpuenv.lock.hashes import indexes_for
    from gpuenv.spec import load_spec

    (tmp_path / "gpuenv.toml").write_text('name = "x"\n[network]\npip_index = "https://127.0.0.1:9/simple"\n')
    spec = load_spec(tmp_path / "gpuenv.toml")
    indexes = indexes_for(spec.network, (), tmp_path)
    with pytest.raises(IndexAccessError, match="127.0.0.1:9") as failed:
        indexes.all([("six", "1.16.0")])
    assert failed.value.hint
