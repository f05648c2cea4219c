"""flash-attn's release wheels first (issue 18): its builds are GitHub release assets, one per torch minor,
CUDA major, Python and C++ ABI, with no index. The whole-environment resolution pins the one asset of the
plan's torch (kb/data/companions.toml: the newest release listed for it that the spec allows) against the
release's asset list read as a find-links page, with the real resolver (uv) against the recorded index
(tests/fixtures/index: torch 2.4.0, its nvidia-*-cu12 12.1 pins, einops; torch 2.4 is pre-cxx11, ABI FALSE).

GitHub is not reachable from here: the asset list is served on 127.0.0.1 through network.wheel_mirrors (as a
user behind a copy of github.com reaches it), in the shape of GitHub's expanded_assets page (root-relative
links under /OWNER/REPO/releases/download/vX/); its wheels are stand-ins that carry the release's real
METADATA (Name, Version, Requires-Python, Requires-Dist as flash-attn 2.8.3's PKG-INFO on PyPI writes them)
and nothing else. When the release lacks the asset, flash-attn is compiled from its source distribution: a
stand-in sdist (the same PKG-INFO, and a setup.py that imports torch as the real one does) on a copy of the
recorded index. No internet: `uv_offline` closes every proxy but 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.errors import ImpossibleRequest
from gpuenv.render.recipe import step_file
from gpuenv.resolve import Target, want
from gpuenv.resolve.companions import releases, torch_abi
from gpuenv.resolve.packages import Source, source_for
from gpuenv.resolve.plan import resolve
from gpuenv.resolve.request import Request
from gpuenv.resolve.whole import resolve_whole
from tests.support.static import serving

pytestmark = pytest.mark.resolver
RELEASES = "/Dao-AILab/flash-attention/releases"
# flash-attn 2.8.3's PKG-INFO (files.pythonhosted.org/.../flash_attn-2.8.3.tar.gz, read 2026-12-08)
REQUIRES = ("torch", "einops")


def _metadata(version: str) -> str:
    base = version.split("+", 1)[0]
    requires = "".join(f"Requires-Dist: {r}\n" for r in REQUIRES)
    return f"Metadata-Version: 2.2\nName: flash_attn\nVersion: {version if '+' in version else base}\n" \
           f"Requires-Python: >=3.9\n{requires}"


def _asset(folder: Path, version: str, label: str, python: str) -> str:
    tag = f"cp{python}-cp{python}-linux_x86_64"
    stem = f"flash_attn-{version}{label}"
    name = f"{stem}-{tag}.whl"
    with zipfile.ZipFile(folder / name, "w") as wheel:
        wheel.writestr(f"{stem}.dist-info/METADATA", _metadata(version + label))
        wheel.writestr(f"{stem}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        wheel.writestr(f"{stem}.dist-info/RECORD", "")
    return name


@pytest.fixture
def github(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A copy of github.com on 127.0.0.1: (its URL, its folder)."""
    root = tmp_path / "github"
    root.mkdir()
    with serving(root) as url:
        yield url, root


def _release(root: Path, version: str, assets: list[tuple[str, str]]) -> None:
    """The release vX: its assets (label, Python) and its expanded_assets page, GitHub's shape (an HTML
    fragment of root-relative links, `+` as it is, the source archives listed too)."""
    folder = root / RELEASES.strip("/") / "download" / f"v{version}"
    folder.mkdir(parents=True)
    names = [_asset(folder, version, label, python) for label, python in assets]
    links = "".join(f'<a href="{RELEASES}/download/v{version}/{n}" rel="nofollow"><span>{n}</span></a>\n'
                    for n in names)
    links += f'<a href="/Dao-AILab/flash-attention/archive/refs/tags/v{version}.tar.gz">Source code</a>\n'
    page = root / RELEASES.strip("/") / "expanded_assets" / f"v{version}"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f'<div data-view-component="true" class="Box">\n{links}</div>\n')


def _source(index_url: str, github_url: str) -> Source:
    return Source(index=index_url, trusted_hosts=("127.0.0.1",), proxies=source_for(None).proxies,
                  wheel_mirrors=(("https://github.com", github_url),))


def _request(packages: tuple[str, ...] = ("flash-attn",), toolkit: str = "auto") -> Request:
    return Request(wants=(want("torch==2.4.0"),), packages=packages, python="3.12",
                   toolkit=toolkit)  # type: ignore[arg-type]


# every torch 2.4 asset of v2.8.3 (cu12, ABI TRUE and FALSE, Python 3.11 and 3.12), and one of torch 2.8
FULL = [(f"+cu12torch2.4cxx11abi{abi}", py) for abi in ("FALSE", "TRUE") for py in ("311", "312")] + \
       [("+cu12torch2.8cxx11abiTRUE", "312")]


def test_the_asset_of_the_plans_torch_cuda_python_and_abi_is_chosen():
    plan = resolve(_request(), Target())
    [found] = releases(plan.builds, plan.user_packages, plan.python)
    assert (found.version, found.label) == ("2.8.3", "+cu12torch2.4cxx11abiFALSE")    # the newest listed
    assert found.page == "https://github.com/Dao-AILab/flash-attention/releases/expanded_assets/v2.8.3"
    assert found.asset.endswith("/download/v2.8.3/flash_attn-2.8.3+cu12torch2.4cxx11abiFALSE-cp312-cp312-"
                                "linux_x86_64.whl")
    older = resolve(_request(("flash-attn<2.7",)), Target())
    [pinned] = releases(older.builds, older.user_packages, older.python)
    assert (pinned.version, pinned.label) == ("2.6.3", "+cu123torch2.4cxx11abiFALSE")   # 2.6.3 labels cu123
    assert releases(plan.builds, plan.user_packages, "3.13") == ()                    # none for torch 2.4 + 3.13
    assert releases(plan.builds, ("flash-attn==2.5.9",), plan.python) == ()           # before any listed
    assert releases(plan.builds, plan.user_packages, plan.python, skip=("flash-attn",)) == ()


def test_torchs_cxx11_abi_follows_its_build():
    assert torch_abi("2.5", "12.4") == "FALSE"
    assert torch_abi("2.6", "12.4") == "FALSE"       # PyPI's 2.6.0
    assert torch_abi("2.6", "12.6") == "TRUE"        # download.pytorch.org's cu126
    assert torch_abi("2.7", "11.8") == "TRUE"
    assert torch_abi("2.11", "13.0") == "TRUE"


def test_the_release_wheel_is_pinned_and_nothing_is_compiled(recorded_index, uv_offline, github):
    url, root = github
    _release(root, "2.8.3", FULL)
    plan = resolve_whole(_request(), Target(), (), _source(recorded_index.simple, url))
    resolved = plan.resolved
    assert resolved is not None and resolved.status == "resolved", resolved
    assert resolved.version_of("flash-attn") == "2.8.3+cu12torch2.4cxx11abifalse"   # PEP 440 normal form
    assert resolved.version_of("einops") and resolved.built == ()
    page = f"{url}{RELEASES}/expanded_assets/v2.8.3"
    pin = next(p for p in resolved.pins if p.name == "flash-attn")
    assert pin.index == page and len(pin.hashes) == 1                       # the lock keeps the page and hash
    assert resolved.find_links == (page,)
    assert plan.toolchain is not None and plan.toolchain.level == "runtime"  # auto: no compiler needed
    said = " ".join(plan.reasons)
    assert "flash-attn 2.8.3+cu12torch2.4cxx11abifalse: flash-attn's release wheel for torch 2.4 + CUDA 12 + " \
           "Python 3.12, C++ ABI FALSE" in said and "nothing compiled" in said
    step = next(s for s in resolved.steps if any(p.name == "flash-attn" for p in s.pins))
    text = step_file(step.id, resolved.requirements_text(step.id), [p.index for p in step.pins],
                     resolved.indexes[0], resolved.find_links)
    assert f"--find-links {page}\n" in text and "flash-attn==2.8.3+cu12torch2.4cxx11abifalse" in text


def test_the_users_own_bound_picks_the_release(recorded_index, uv_offline, github):
    url, root = github
    _release(root, "2.8.3", FULL)
    _release(root, "2.6.3", [("+cu123torch2.4cxx11abiFALSE", "312"), ("+cu123torch2.4cxx11abiTRUE", "312"),
                             ("+cu118torch2.4cxx11abiFALSE", "312")])
    plan = resolve_whole(_request(("flash-attn<2.7",)), Target(), (), _source(recorded_index.simple, url))
    assert plan.resolved is not None and plan.resolved.status == "resolved", plan.resolved
    assert plan.resolved.version_of("flash-attn") == "2.6.3+cu123torch2.4cxx11abifalse"
    assert plan.user_packages == ("flash-attn<2.7",)                         # the request as written


@pytest.fixture
def index_with_sdist(tmp_path: Path) -> Iterator[str]:
    """The recorded index with flash-attn's page added: one stand-in sdist of 2.8.3 (see the module doc)."""
    from tests.support.pyindex import serve_recorded

    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "index"
    copy = tmp_path / "index"
    (copy / "pypi" / "pages").mkdir(parents=True)
    (copy / "pypi" / "sdists").mkdir()
    for part in ("metadata",):
        (copy / "pypi" / part).symlink_to(fixtures / "pypi" / part)
    for page in (fixtures / "pypi" / "pages").iterdir():
        (copy / "pypi" / "pages" / page.name).symlink_to(page)
    (copy / "variants").symlink_to(fixtures / "variants")
    body = _sdist("2.8.3")
    (copy / "pypi" / "sdists" / "flash_attn-2.8.3.tar.gz").write_bytes(body)
    entry = {"filename": "flash_attn-2.8.3.tar.gz", "requires-python": ">=3.9",
             "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    (copy / "pypi" / "pages" / "flash-attn.json").write_text(json.dumps({"name": "flash-attn", "files": [entry]}))
    index = serve_recorded(copy)
    try:
        yield index.simple
    finally:
        index.stop()


def _sdist(version: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in ((f"flash_attn-{version}/PKG-INFO", _metadata(version)),
                           (f"flash_attn-{version}/setup.py", "import torch  # as flash-attn's own\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_release_without_the_asset_compiles_it_and_says_why(index_with_sdist, uv_offline, github):
    """A failed upstream job leaves a hole in a release the table lists: the asset list lacks the wheel."""
    url, root = github
    _release(root, "2.8.3", [a for a in FULL if a != ("+cu12torch2.4cxx11abiFALSE", "312")])
    plan = resolve_whole(_request(), Target(), (), _source(index_with_sdist, url))
    resolved = plan.resolved
    assert resolved is not None and resolved.status == "resolved", resolved
    assert resolved.built == ("flash-attn",) and resolved.version_of("flash-attn") == "2.8.3"
    assert plan.toolchain is not None and plan.toolchain.level == "devel"
    said = " ".join(plan.reasons)
    assert "flash-attn 2.8.3: flash-attn's release wheel for torch 2.4 + CUDA 12 + Python 3.12, C++ ABI FALSE " \
           "(https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/flash_attn-2.8.3+" \
           "cu12torch2.4cxx11abiFALSE-cp312-cp312-linux_x86_64.whl) could not be had" in said
    assert "flash-attn is compiled here from its source distribution instead" in said
    assert "network.wheel_mirrors" not in said                   # the asset is missing, not GitHub


def test_github_out_of_reach_compiles_it_and_says_so(index_with_sdist, uv_offline):
    """No copy of github.com configured, and GitHub closed (the proxies of uv_offline): compiled here."""
    source = Source(index=index_with_sdist, trusted_hosts=("127.0.0.1",), proxies=source_for(None).proxies)
    plan = resolve_whole(_request(), Target(), (), source)
    resolved = plan.resolved
    assert resolved is not None and resolved.built == ("flash-attn",), resolved
    said = " ".join(plan.reasons)
    assert "could not be had" in said and "a copy of https://github.com in network.wheel_mirrors" in said


def test_runtime_is_refused_when_the_release_lacks_the_asset(index_with_sdist, uv_offline, github):
    url, root = github
    _release(root, "2.8.3", [a for a in FULL if a != ("+cu12torch2.4cxx11abiFALSE", "312")])
    with pytest.raises(ImpossibleRequest) as refused:
        resolve_whole(_request(toolkit="runtime"), Target(), (), _source(index_with_sdist, url))
    assert "flash-attn 2.8.3" in refused.value.message and "no compiler" in refused.value.message
    assert 'toolkit = "devel"' in (refused.value.hint or "")
