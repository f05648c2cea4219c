"""The docker save archive as it streams to docker load (imagetar.py), on hand-made archives: every tag
removed, only the images and tags the sealed manifest names let through, and every way around the
rewrite (a symlinked manifest.json, a member under a symlink, a config that is not what its name says, a
missing manifest.json) refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from gpuenv.bundle import imagetar
from gpuenv.bundle.format import Forged

from .helpers import _tar, image_archive

OWN = "gpuenv-demo:0123456789ab"
BASE = "gpuenv-base/debian:bookworm"


def _copy(archive: bytes, ids: set[str], tags: set[str] = frozenset({OWN, BASE})) -> tuple[bytes, frozenset[str]]:
    out = io.BytesIO()
    allowed = imagetar.Allowed(frozenset(ids), frozenset(imagetar.familiar(t) for t in tags))
    loads = imagetar.copy(io.BytesIO(archive), out, allowed, Path("x.gpuenv"), lambda: None)
    return out.getvalue(), loads


def test_the_tags_are_removed_and_everything_else_passes(tmp_path: Path) -> None:
    archive, image_id = image_archive([OWN, BASE], "1000:1000", "a")
    copied, loads = _copy(archive, {image_id})
    assert loads == {image_id}
    with tarfile.open(fileobj=io.BytesIO(archive)) as before, tarfile.open(fileobj=io.BytesIO(copied)) as after:
        names = after.getnames()
        assert "repositories" not in names and names == [n for n in before.getnames() if n != "repositories"]
        assert json.loads(after.extractfile("manifest.json").read())[0]["RepoTags"] == []
        for name in names:
            if after.getmember(name).isreg() and name != "manifest.json":
                assert after.extractfile(name).read() == before.extractfile(name).read()
    assert len(copied) % 512 == 0 and copied.endswith(b"\0" * 1024)


@pytest.mark.parametrize("tags", [["python:3.11-slim-bookworm"], [OWN, "gpuenv-other:1"], ["docker.io/library/python:3"]])
def test_a_tag_the_manifest_does_not_name_is_refused(tags: list[str]) -> None:
    archive, image_id = image_archive(tags, "1000:1000", "b")
    with pytest.raises(Forged, match="would load tags"):
        _copy(archive, {image_id})


def test_an_image_the_manifest_does_not_name_is_refused() -> None:
    archive, _ = image_archive([OWN], "1000:1000", "c")
    with pytest.raises(Forged, match="would load image sha256:"):
        _copy(archive, {"sha256:" + "ab" * 32})


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def test_a_config_that_is_not_what_its_name_says_is_refused() -> None:
    archive, image_id = image_archive([OWN], "1000:1000", "d")
    members = _members(archive)
    config = f"{image_id[7:]}.json"
    members[config] = members[config].replace(b"1000:1000", b"0:0")
    with pytest.raises(Forged, match="does not have the sha256 its name says"):
        _copy(_tar(dict(sorted(members.items()))), {image_id})


def test_an_archive_without_manifest_json_is_refused() -> None:
    archive, image_id = image_archive([OWN], "1000:1000", "e")
    members = {n: d for n, d in _members(archive).items() if n != "manifest.json"}
    with pytest.raises(Forged, match="without manifest.json"):
        _copy(_tar(members), {image_id})


def _with_link(archive: bytes, link: str, target: str, then: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w") as tar:
        for m in src.getmembers():
            if m.name == "manifest.json":
                info = tarfile.TarInfo(link)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
                for name, data in then.items():
                    extra = tarfile.TarInfo(name)
                    extra.size = len(data)
                    tar.addfile(extra, io.BytesIO(data))
            tar.addfile(m, src.extractfile(m) if m.isreg() else None)
    return out.getvalue()


@pytest.mark.parametrize("link,target,then,said", [
    ("manifest.json", "evil.json", {}, "its path or type"),
    ("up", ".", {"up/repositories": b"{}"}, "under a symlink"),
])
def test_a_way_around_the_rewrite_is_refused(link: str, target: str, then: dict[str, bytes], said: str) -> None:
    archive, image_id = image_archive([OWN], "1000:1000", "f")
    with pytest.raises(Forged, match=said):
        _copy(_with_link(archive, link, target, then), {image_id})


@pytest.mark.parametrize("name", ["../manifest.json", "/manifest.json", "a/../../x"])
def test_a_member_outside_the_archive_is_refused(name: str) -> None:
    archive, image_id = image_archive([OWN], "1000:1000", "g", extra={name: b"x"})
    with pytest.raises(Forged, match="its path or type"):
        _copy(archive, {image_id})


def test_a_refused_stream_ends_inside_a_block() -> None:
    out = io.BytesIO(b"\0" * 1024)
    out.seek(0, 2)
    imagetar.cut(out)
    assert len(out.getvalue()) % 512 != 0


@pytest.mark.parametrize("ref,short", [("python:3.11", "python:3.11"), ("docker.io/library/python:3.11", "python:3.11"),
                                       ("python", "python:latest"), ("localhost:5000/x/y", "localhost:5000/x/y:latest"),
                                       ("gpuenv-base/debian:bookworm", "gpuenv-base/debian:bookworm"),
                                       ("docker.io/gpuenv-base/debian:bookworm", "gpuenv-base/debian:bookworm")])
def test_references_compare_in_dockers_short_form(ref: str, short: str) -> None:
    assert imagetar.familiar(ref) == short


@pytest.mark.parametrize("form", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_names_in_pax_or_gnu_headers_pass_as_they_are(form: int) -> None:
    """Go writes a PAX record for a name over 100 bytes; GNU tar a long-name member: either is read, and
    written again as a fresh PAX header with the same name and data."""
    archive, image_id = image_archive([OWN], "1000:1000", "h")
    long = "d" * 64 + "/" + "n" * 120 + ".tar"
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w", format=form) as tar:
        for m in src.getmembers():
            tar.addfile(m, src.extractfile(m) if m.isreg() else None)
        info = tarfile.TarInfo(long)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    copied, _ = _copy(out.getvalue(), {image_id})
    with tarfile.open(fileobj=io.BytesIO(copied)) as tar:
        assert tar.extractfile(long).read() == b"hello"


def test_a_negative_size_in_a_pax_record_is_refused() -> None:
    archive, image_id = image_archive([OWN], "1000:1000", "i")
    record = b"12 size=-42\n"
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(record)
    evil = header.tobuf(tarfile.USTAR_FORMAT) + record + b"\0" * (512 - len(record))
    with pytest.raises(Forged, match="negative size"):
        _copy(evil + archive, {image_id})


def test_a_bundle_changed_after_verification_is_never_ended(tmp_path: Path) -> None:
    """Between verify() and the stream the file changes where zstd does not look (a skippable frame):
    the image decompresses the same, but the member's sha256, computed again as it streams, differs. The
    archive docker load would read is left unended (its end-of-archive blocks never written)."""
    import zstandard

    from gpuenv.bundle import read
    from gpuenv.bundle.format import Damaged
    from gpuenv.bundle.verify import verify

    from .helpers import _tag, handmade_bundle, rebuild

    archive, image_id = image_archive([_tag()], "1000:1000", "j")
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(archive)
    made = handmade_bundle(tmp_path / "made", "demo", archive, image_id, (), 1000, 1000)
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"abcd"
    bundle = rebuild(made, tmp_path / "x.gpuenv", members={"image.tar.zst": frame + skippable})
    verified = verify(bundle)
    allowed = read._allowed(verified.manifest)
    whole = io.BytesIO()
    read._copy(verified, whole, allowed, None)                    # unchanged: the archive is ended
    assert whole.getvalue().endswith(b"\0" * 1024)
    raw = bytearray(bundle.read_bytes())
    raw[verified.image.offset + len(frame) + 8] = ord("x")
    bundle.write_bytes(bytes(raw))
    out = io.BytesIO()
    with pytest.raises(Damaged, match="changed after it was verified"):
        read._copy(verified, out, allowed, None)
    assert len(out.getvalue()) == len(whole.getvalue()) - 1024     # all but the end of the archive
