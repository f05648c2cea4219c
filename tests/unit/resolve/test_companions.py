"""The PyTorch ecosystem's prebuilt wheels first (issue 18): PyG's page of the plan's torch and CUDA variant
joins the whole-environment resolution, with the real resolver (uv) against the recorded index
(tests/fixtures/index: torch 2.4.0 and its nvidia-*-cu12 12.1 pins; torch-scatter 2.1.2 is an sdist on
PyPI) and a PyG-style page served on 127.0.0.1 through network.wheel_mirrors, as a user behind a mirror
of data.pyg.org reaches it. The page is constructed in PyG's own format (pyg-lib's upload script:
relative hrefs, `+` written %2B, no hashes; tests/fixtures/kb/companions/recorded/SOURCE.md), its wheels
minimal ones carrying only their METADATA. No internet: `uv_offline` closes every proxy but 127.0.0.1."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve import Target, want
from gpuenv.resolve.companions import pages
from gpuenv.resolve.packages import Source
from gpuenv.resolve.request import Request
from gpuenv.resolve.whole import resolve_whole
from tests.support.static import serving

pytestmark = pytest.mark.resolver
PYG = "https://data.pyg.org/whl"


def _wheel(folder: Path, name: str, version: str, tag: str) -> str:
    stem = f"{name.replace('-', '_')}-{version}"
    filename = f"{stem}-{tag}.whl"
    with zipfile.ZipFile(folder / filename, "w") as wheel:
        wheel.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{stem}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        wheel.writestr(f"{stem}.dist-info/RECORD", "")
    return filename


@pytest.fixture
def pyg_page(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(the page server's /whl URL, its folder): serves whl/torch-2.4.0+cu121.html and its wheels."""
    root = tmp_path / "pyg"
    (root / "whl" / "torch-2.4.0+cu121").mkdir(parents=True)
    with serving(root) as url:
        yield f"{url}/whl", root / "whl"


def _publish(folder: Path, pythons: tuple[str, ...]) -> None:
    """PyG's page for torch 2.4.0 + cu121 with torch-scatter 2.1.2 for these CPythons (and Windows)."""
    files = [_wheel(folder / "torch-2.4.0+cu121", "torch-scatter", "2.1.2+pt24cu121", f"cp{p}-cp{p}-{plat}")
             for p in pythons for plat in ("linux_x86_64", "win_amd64")]
    links = "".join(f'<a href="torch-2.4.0%2Bcu121/{f.replace("+", "%2B")}">{f}</a><br/>' for f in sorted(files))
    (folder / "torch-2.4.0+cu121.html").write_text(f"<!DOCTYPE html>\n<html>\n<body>\n{links}\n</body>\n</html>\n")


def _source(recorded_index, upstream: str, copy: str) -> Source:
    """The recorded index, the internet shut out (uv_offline's proxies), and a copy of one wheel server."""
    from gpuenv.resolve.packages import source_for

    return Source(index=recorded_index.simple, trusted_hosts=("127.0.0.1",), proxies=source_for(None).proxies,
                  wheel_mirrors=((upstream, copy),))


def _request(toolkit: str = "auto") -> Request:
    return Request(wants=(want("torch==2.4.0"),), packages=("torch-scatter==2.1.2",), python="3.12",
                   toolkit=toolkit)  # type: ignore[arg-type]


def test_the_page_of_the_plans_torch_and_variant_is_asked(recorded_index, uv_offline):
    found = pages(resolve_whole(_request(), Target(), (), None).builds, ("torch-scatter==2.1.2", "numpy"))
    assert [(p.family, p.url, p.packages, p.label) for p in found] == [
        ("pyg", f"{PYG}/torch-2.4.0+cu121.html", ("torch-scatter",), "+pt24cu121")]


def test_a_prebuilt_wheel_that_fits_is_taken_and_nothing_is_compiled(recorded_index, uv_offline, pyg_page):
    url, folder = pyg_page
    _publish(folder, ("311", "312"))
    plan = resolve_whole(_request(), Target(), (), _source(recorded_index, PYG, url))
    resolved = plan.resolved
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.version_of("torch-scatter") == "2.1.2+pt24cu121" and resolved.built == ()
    pin = next(p for p in resolved.pins if p.name == "torch-scatter")
    assert pin.index == f"{url}/torch-2.4.0+cu121.html" and pin.hashes       # the lock keeps the page and hash
    said = " ".join(plan.reasons)
    assert "torch-scatter 2.1.2+pt24cu121: pyg's prebuilt wheel for torch 2.4 + cu121" in said
    assert plan.toolchain is not None and plan.toolchain.packages == ()        # no CUDA compiler (auto)
    assert resolved.find_links == (f"{url}/torch-2.4.0+cu121.html",)


def test_no_wheel_for_the_python_compiles_it_at_devel_and_says_what_pyg_publishes(recorded_index, uv_offline,
                                                                                   pyg_page):
    url, folder = pyg_page
    _publish(folder, ("311",))                       # none for Python 3.12: PyPI's sdist, built here
    plan = resolve_whole(_request(), Target(), (), _source(recorded_index, PYG, url))
    resolved = plan.resolved
    assert resolved is not None and resolved.built == ("torch-scatter",)
    assert resolved.version_of("torch-scatter") == "2.1.2"
    assert plan.toolchain is not None and plan.toolchain.level == "devel"
    assert plan.toolchain.no_isolation == ("torch-scatter",)
    assert plan.base.image.startswith("nvidia/cuda:12.1.") and "-devel-" in plan.base.image   # cu12: no pip nvcc
    assert plan.toolchain.packages == () and "ninja" in plan.toolchain.pip
    said = " ".join(plan.reasons)
    assert "toolkit devel: torch-scatter is compiled from source here" in said
    assert "has no wheel of it for Python 3.12" in said
    assert "it publishes torch-scatter for torch 2.4 with cu118, cu121, cu124" in said


def test_runtime_with_no_wheel_is_refused_before_any_build(recorded_index, uv_offline, pyg_page):
    url, folder = pyg_page
    _publish(folder, ("311",))
    with pytest.raises(ImpossibleRequest) as refused:
        resolve_whole(_request("runtime"), Target(), (), _source(recorded_index, PYG, url))
    assert "torch-scatter 2.1.2 has no wheel for Python 3.12" in refused.value.message
    assert 'toolkit = "devel"' in (refused.value.hint or "")


@pytest.fixture
def pages_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server of any page layout under one root: (its URL, its folder)."""
    root = tmp_path / "pages"
    root.mkdir()
    with serving(root) as url:
        yield url, root


def _page(folder: Path, page: str, wheels: list[str]) -> None:
    (folder / page).parent.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{w.replace("+", "%2B")}">{w}</a>\n' for w in wheels)
    (folder / page).write_text(f"<html><body>\n{links}</body></html>\n")


def test_mmcv_has_no_local_label_and_its_page_decides_the_build(recorded_index, uv_offline, pages_server):
    """OpenMMLab's wheels carry no +cuXYZ: the same file name is in every CUDA/torch folder, so what says
    which build was taken is the pin's page, which the lock keeps (Resolved.find_links)."""
    url, root = pages_server
    upstream = "https://download.openmmlab.com/mmcv/dist"
    folder = root / "mmcv" / "cu121" / "torch2.4"
    folder.mkdir(parents=True)
    _page(root / "mmcv", "cu121/torch2.4/index.html",
          [_wheel(folder, "mmcv", "2.2.0", "cp312-cp312-manylinux1_x86_64")])
    source = _source(recorded_index, upstream, f"{url}/mmcv")
    request = Request(wants=(want("torch==2.4.0"),), packages=("mmcv==2.2.0",), python="3.12")
    plan = resolve_whole(request, Target(), (), source)
    resolved = plan.resolved
    assert resolved is not None and resolved.status == "resolved", resolved
    pin = next(p for p in resolved.pins if p.name == "mmcv")
    assert pin.version == "2.2.0" and pin.index == f"{url}/mmcv/cu121/torch2.4/index.html"
    assert "mmcv 2.2.0: mmcv's prebuilt wheel for torch 2.4 + cu121" in " ".join(plan.reasons)


def test_dgls_cuda_build_wins_over_pypis_cpu_only_wheel(recorded_index, uv_offline, pages_server):
    """PyPI's dgl (2.1.0) is a CPU-only wheel; DGL's page for the plan's torch and variant has the CUDA one,
    with its +cu121 label: that is the one taken, and the plan says so."""
    url, root = pages_server
    upstream = "https://data.dgl.ai/wheels"
    folder = root / "dgl" / "torch-2.4" / "cu121"
    folder.mkdir(parents=True)
    _page(folder, "repo.html", [_wheel(folder, "dgl", "2.4.0+cu121", "cp312-cp312-manylinux1_x86_64")])
    source = _source(recorded_index, upstream, f"{url}/dgl")
    request = Request(wants=(want("torch==2.4.0"),), packages=("dgl",), python="3.12")
    plan = resolve_whole(request, Target(), (), source)
    resolved = plan.resolved
    assert resolved is not None and resolved.status == "resolved", resolved
    assert resolved.version_of("dgl") == "2.4.0+cu121"
    assert "dgl 2.4.0+cu121: dgl's prebuilt wheel for torch 2.4 + cu121" in " ".join(plan.reasons)
