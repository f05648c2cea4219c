"""The bundle's format without an engine: a bundle made from bytes, read back, and every way of damaging
it refused (a flipped byte in each member, a cut at each member boundary, files that are no bundle)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from gpuenv.errors import BadInput

from gpuenv.bundle import manifest as manifests
from gpuenv.bundle.format import BLOCK, IMAGE, MANIFEST, SEAL, Damaged
from gpuenv.bundle.verify import verify
from gpuenv.bundle.write import content_tag

from .helpers import BASE_ID, CONTEXT, IMAGE_BYTES, REQUIREMENTS, _tag, make_bundle

@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


def _offsets(path: Path) -> list[tuple[str, int, int]]:
    """(name, header offset, data offset) of every member, read with the standard tarfile module."""
    with tarfile.open(path) as tar:
        return [(m.name, m.offset, m.offset_data) for m in tar.getmembers()]


def test_round_trip(bundle: Path) -> None:
    got = verify(bundle)
    m = got.manifest
    assert (m.name, m.tag, m.image_id, m.user) == ("demo", _tag(), "sha256:" + "ab" * 32, (1000, 1000))
    assert m.requires.to_dict() == {"gpu": True, "min_driver": "525.60.13", "cuda": "12.4", "cuda_source": "wheels",
                                    "gpu_archs": ["sm_80", "sm_90"]}
    assert m.bases == [("gpuenv-base/debian:bookworm", BASE_ID)]
    assert "other.label" not in m.data["labels"]
    assert got.spec.startswith(b'name = "demo"') and got.lock == b"version = 1\n"
    assert got.context == tuple(CONTEXT)
    assert got.files == (("deps/requirements.txt", REQUIREMENTS.encode()),)
    assert content_tag("demo", 1000, 1000, got.context_text()) == m.tag
    with open(bundle, "rb") as f:
        f.seek(got.image.offset)
        packed = f.read(got.image.size)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed) == IMAGE_BYTES
    assert len(packed) < len(IMAGE_BYTES) / 5


def test_plain_tar_lists_it_in_order(bundle: Path) -> None:
    names = [name for name, _, _ in _offsets(bundle)]
    assert names == ["gpuenv-bundle", "gpuenv.toml", "gpuenv.lock", "context/Dockerfile", "context/.dockerignore",
                     "context/.gpuenv/start.sh", "files/deps/requirements.txt", IMAGE, MANIFEST, SEAL]
    listed = json.loads(tarfile.open(bundle).extractfile(MANIFEST).read())["members"]
    assert [m["name"] for m in listed] == names[:-2]


def test_without_a_lock(tmp_path: Path) -> None:
    assert verify(make_bundle(tmp_path, lock=False)).lock is None


def test_progress_counts_every_byte(bundle: Path) -> None:
    seen: list[int] = []
    verify(bundle, seen.append)
    assert sum(seen) == sum(m.size for m in tarfile.open(bundle).getmembers())


@pytest.mark.parametrize("member", ["gpuenv-bundle", "gpuenv.toml", "gpuenv.lock", "context/Dockerfile",
                                    "context/.gpuenv/start.sh", "files/deps/requirements.txt", IMAGE, MANIFEST, SEAL])
def test_a_flipped_byte_in_any_member_is_refused(bundle: Path, member: str) -> None:
    _, _, data = next(o for o in _offsets(bundle) if o[0] == member)
    raw = bytearray(bundle.read_bytes())
    raw[data + 3] ^= 0x01
    bundle.write_bytes(bytes(raw))
    with pytest.raises(Damaged) as caught:
        verify(bundle)
    assert caught.value.exit_code == 2
    assert str(bundle) in caught.value.message and caught.value.hint


def test_a_flipped_byte_in_a_header_is_refused(bundle: Path) -> None:
    _, header, _ = next(o for o in _offsets(bundle) if o[0] == IMAGE)
    raw = bytearray(bundle.read_bytes())
    raw[header + 130] ^= 0x04               # in the size field
    bundle.write_bytes(bytes(raw))
    with pytest.raises(Damaged, match="damaged|truncated"):
        verify(bundle)


def _cuts(path: Path) -> list[int]:
    """Every member boundary (each header's start and each data's start), the archive's end marker, and a
    point inside each member's data."""
    cuts = set()
    for _, header, data in _offsets(path):
        cuts |= {header, data, data + 1}
    size = path.stat().st_size
    cuts |= {size - 2 * BLOCK, size - BLOCK, size - 1}
    return sorted(c for c in cuts if 0 <= c < size)


def test_truncated_at_every_member_boundary_is_refused(bundle: Path, tmp_path: Path) -> None:
    raw = bundle.read_bytes()
    cut_file = tmp_path / "cut.gpuenv"
    cuts = _cuts(bundle)
    assert len(cuts) > 20
    for cut in cuts:
        cut_file.write_bytes(raw[:cut])
        with pytest.raises(Damaged) as caught:
            verify(cut_file)
        assert "truncated" in caught.value.message or "not a gpuenv bundle" in caught.value.message, (cut, caught.value)


def test_trailing_garbage_after_the_end_is_ignored_but_a_member_after_the_seal_is_not(bundle: Path) -> None:
    raw = bundle.read_bytes()
    seal_end = raw.rindex(b"\0" * (2 * BLOCK))    # start of the end-of-archive marker
    extra = tarfile.TarInfo("extra")
    extra.size = 1
    bundle.write_bytes(raw[:seal_end] + extra.tobuf(tarfile.GNU_FORMAT) + b"x" + b"\0" * 511 + b"\0" * (2 * BLOCK))
    with pytest.raises(Damaged, match="after the manifest's seal"):
        verify(bundle)


def test_an_altered_manifest_with_a_matching_seal_still_fails_on_the_members(bundle: Path, tmp_path: Path) -> None:
    """Someone edits the manifest (and its seal) to claim another image: the member checksums disagree."""
    with tarfile.open(bundle) as tar:
        data = json.loads(tar.extractfile(MANIFEST).read())
    data["members"][-1]["sha256"] = "0" * 64
    text = json.dumps(data).encode()
    rebuilt = tmp_path / "rebuilt.gpuenv"
    with tarfile.open(bundle) as src, tarfile.open(rebuilt, "w", format=tarfile.GNU_FORMAT) as out:
        for m in src.getmembers():
            body = text if m.name == MANIFEST else manifests.seal(text) if m.name == SEAL else \
                src.extractfile(m).read()
            m.size = len(body)
            out.addfile(m, io.BytesIO(body))
    with pytest.raises(Damaged, match="does not match its checksum in the manifest"):
        verify(rebuilt)


@pytest.mark.parametrize("content,said", [
    (b"", "not a gpuenv bundle"),
    (b"hello, this is a text file\n" * 40, "not a gpuenv bundle"),
    (b"\0" * 4096, "not a gpuenv bundle"),
    (zstandard.ZstdCompressor().compress(b"x" * 5000), "not a gpuenv bundle"),
])
def test_files_that_are_not_bundles(tmp_path: Path, content: bytes, said: str) -> None:
    path = tmp_path / "x.gpuenv"
    path.write_bytes(content)
    with pytest.raises(Damaged, match=said):
        verify(path)


def test_a_docker_save_tar_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    with pytest.raises(Damaged, match="docker load"):
        verify(path)


def test_a_missing_file_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        verify(tmp_path / "nothing.gpuenv")
    with pytest.raises(Exception, match="folder"):
        verify(tmp_path)


def test_the_spec_and_its_files_are_written_into_the_folder(bundle: Path, tmp_path: Path) -> None:
    from gpuenv.bundle.read import check_folder, write_files

    folder = tmp_path / "into"
    verified = verify(bundle)
    check_folder(verified, folder, force=False)
    written = write_files(verified, folder)
    assert sorted(Path(w).relative_to(folder).as_posix() for w in written) == [
        "deps/requirements.txt", "gpuenv.lock", "gpuenv.toml"]
    assert (folder / "deps" / "requirements.txt").read_text() == REQUIREMENTS
    assert [p.name for p in folder.rglob(".*")] == []                  # no temporary file left
    (folder / "deps" / "requirements.txt").write_text("mine\n")
    with pytest.raises(BadInput, match="requirements.txt exists and differs"):
        check_folder(verified, folder, force=False)
    check_folder(verified, folder, force=True)


def test_a_requirements_file_outside_the_spec_folder_is_refused(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from gpuenv.bundle.write import spec_files

    (tmp_path / "reqs.txt").write_text("x\n")
    (tmp_path / "spec").mkdir()
    with pytest.raises(BadInput, match="outside its folder"):
        spec_files(SimpleNamespace(requirements="../reqs.txt"), tmp_path / "spec")
    assert spec_files(SimpleNamespace(requirements=None), tmp_path / "spec") == ()


def test_files_a_requirements_file_includes_with_r_travel_with_it(tmp_path: Path) -> None:
    """`-r base.txt` inside requirements.txt: the bundle carries both, so the loaded spec reads the same."""
    from types import SimpleNamespace

    from gpuenv.bundle.write import spec_files

    (tmp_path / "deps").mkdir()
    (tmp_path / "requirements.txt").write_text("-r deps/base.txt\nrich\n")
    (tmp_path / "deps" / "base.txt").write_text("-r more.txt\nclick\n")
    (tmp_path / "deps" / "more.txt").write_text("pyyaml\n")
    (tmp_path / "unrelated.txt").write_text("numpy\n")
    carried = spec_files(SimpleNamespace(requirements="requirements.txt"), tmp_path)
    assert [name for name, _ in carried] == ["requirements.txt", "deps/base.txt", "deps/more.txt"]
