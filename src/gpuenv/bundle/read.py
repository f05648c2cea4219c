"""`gpuenv load`: a verified bundle into the engine, in an order that leaves nothing half-done:

    1. verify.py has read the whole file and checked every checksum (nothing reached the engine yet)
    2. the spec is parsed, the target folder checked (a different gpuenv.toml there is not replaced)
    3. this host against the bundle's requirements (fits.py), unless forced
    4. the image member streamed: zstd -> `docker load` stdin, zstd's content checksum checked at its end
       (the file must not change between the two passes); skipped when the engine already has that image
    5. the image ID checked against the manifest, tagged; for another UID/GID a derived image
       (build/retarget.py) under the tag gpuenv computes for this user
    6. the files the spec names, gpuenv.toml (and gpuenv.lock) written into the folder
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from gpuenv.bundle.fits import Misfit, misfits
from gpuenv.bundle.format import CHUNK, LOCK, SPEC, Damaged, damaged
from gpuenv.bundle.verify import Verified
from gpuenv.errors import BadInput, EngineError, GpuenvError
from gpuenv.run.docker import Docker


@dataclass(frozen=True)
class Loaded:
    name: str
    tag: str                     # the tag `gpuenv up` looks for on this host
    image_id: str
    loaded: bool                 # False: the engine had the image already
    retargeted: Optional[tuple[int, int]]   # the UID/GID the derived image was made for
    folder: Path
    written: tuple[str, ...]
    forced: tuple[Misfit, ...]   # requirements this host does not meet, loaded anyway (--force)


class Unfit(GpuenvError):
    """This host cannot run the bundle's image."""


def target_folder(verified: Verified, into: Optional[Path]) -> Path:
    return (into or Path.cwd() / verified.manifest.name).resolve()


def parsed_spec(verified: Verified) -> Any:
    """The bundle's spec, validated before anything is loaded or written: the files it names are staged
    in a temporary folder for the check (the spec checks that its requirements file exists)."""
    import tempfile

    from gpuenv.spec.load import parse_spec

    try:
        text = verified.spec.decode("utf-8")
    except UnicodeDecodeError:
        raise damaged(verified.path, "holds a gpuenv.toml that is not UTF-8 text") from None
    with tempfile.TemporaryDirectory(prefix="gpuenv-load-") as staged:
        for name, data in verified.files:
            (Path(staged) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(staged) / name).write_bytes(data)
        return parse_spec(text, f"{verified.path.name}:{SPEC}", Path(staged))


def check_folder(verified: Verified, folder: Path, force: bool) -> None:
    """Refuse before loading anything when the folder holds a different spec (or lock) of its own."""
    for name, data in _files(verified):
        there = folder / name
        if data is not None and there.is_file() and there.read_bytes() != data and not force:
            raise BadInput(f"{there} exists and differs from the bundle's {name}",
                           "load into another folder (--into DIR), or replace it with --force")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a folder", "give another folder with --into DIR")


def check_host(verified: Verified, driver: Any, force: bool) -> tuple[Misfit, ...]:
    found = tuple(misfits(verified.manifest.requires, driver))
    if found and not force:
        reasons = "; ".join(m.message for m in found)
        works = "; ".join(dict.fromkeys(m.would_work for m in found))
        raise Unfit(f"this host cannot run {verified.manifest.tag}: {reasons}",
                    f"what would work: {works}. `gpuenv load --force` loads it anyway")
    return found


def load_image(docker: Docker, verified: Verified, progress: Optional[Callable[[int], None]] = None) -> bool:
    """Stream the image into the engine and check its ID; False when the engine already had it."""
    want = verified.manifest.image_id
    if docker.image(want):
        for ref, image_id in [(verified.manifest.tag, want), *verified.manifest.bases]:
            docker.run("tag", image_id, ref, check=False)
        return False
    had = {ref for ref, _ in verified.manifest.bases if docker.image(ref)}
    try:
        _stream_into(docker, verified, progress)
    except Damaged:           # docker load may have finished before zstd's check at the stream's end
        _remove_new(docker, want, verified.manifest.tag, [r for r, _ in verified.manifest.bases if r not in had])
        raise
    got = docker.image(verified.manifest.tag)
    if not got or got["Id"] != want:
        _remove_new(docker, got["Id"] if got else want, verified.manifest.tag)
        raise GpuenvError(f"the engine loaded image {got['Id'] if got else 'none'} from the bundle, not the "
                          f"manifest's {want}", "the bundle was not written by `gpuenv save`; save it again")
    return True


def _stream_into(docker: Docker, verified: Verified, progress: Optional[Callable[[int], None]]) -> None:
    """zstd -> `docker load`. The stream carries zstd's own content checksum, checked as it ends: a file
    changed since verify() read it is caught without hashing it a second time."""
    import zstandard

    try:
        proc = subprocess.Popen(docker.argv("load"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as exc:
        raise EngineError(f"cannot run {docker.client}: {exc}") from None
    try:
        with open(verified.path, "rb") as f:
            f.seek(verified.image.offset)
            member = _Counted(f, verified.image.size, progress)
            with zstandard.ZstdDecompressor().stream_reader(member, read_size=CHUNK) as unpacked:
                while True:
                    chunk = unpacked.read(CHUNK)
                    if not chunk:
                        break
                    proc.stdin.write(chunk)   # type: ignore[union-attr]
        proc.stdin.close()   # type: ignore[union-attr]
        said = proc.stdout.read().decode("utf-8", "replace")   # type: ignore[union-attr]
        if proc.wait() != 0:
            raise EngineError(f"`docker load` failed: {said.strip()[-500:] or 'no output'}")
    except zstandard.ZstdError as exc:
        raise damaged(verified.path, f"changed after it was verified, or holds an image stream zstd cannot "
                      f"read ({exc})") from None
    except BrokenPipeError:
        said = proc.stdout.read().decode("utf-8", "replace")   # type: ignore[union-attr]
        raise EngineError(f"`docker load` stopped reading: {said.strip()[-500:] or 'no output'}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class _Counted:
    """The image member's bytes, at most `size` of them, counted as zstd reads them."""

    def __init__(self, f: Any, size: int, progress: Optional[Callable[[int], None]]) -> None:
        self.f, self.left, self.progress = f, size, progress

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        if self.progress and data:
            self.progress(len(data))
        return data


def _remove_new(docker: Docker, image_id: str, tag: str, bases: Sequence[str] = ()) -> None:
    for ref in (tag, image_id, *bases):
        docker.run("rmi", ref, check=False)


def for_user(docker: Docker, verified: Verified, uid: int, gid: int) -> tuple[str, str, Optional[tuple[int, int]]]:
    """(tag, image ID) of the image for this UID/GID: the bundle's own, or one derived for this user."""
    from gpuenv.build.retarget import retarget
    from gpuenv.bundle.write import content_tag

    m = verified.manifest
    if m.user is None or m.user == (uid, gid):
        return m.tag, m.image_id, None
    tag = content_tag(m.name, uid, gid, verified.context_text())
    info = docker.image(m.image_id)
    return tag, retarget(docker, info or {"Id": m.image_id}, uid, gid, tag), (uid, gid)


def _files(verified: Verified) -> list[tuple[str, Optional[bytes]]]:
    """What load writes into the folder: the spec's own files first, then gpuenv.toml and gpuenv.lock."""
    return [*verified.files, (SPEC, verified.spec), (LOCK, verified.lock)]


def write_files(verified: Verified, folder: Path) -> tuple[str, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in _files(verified):
        if data is None:
            continue
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        temp = (folder / name).with_name(f".{Path(name).name}.{os.getpid()}.tmp")
        try:
            temp.write_bytes(data)
            os.replace(temp, folder / name)
        finally:
            temp.unlink(missing_ok=True)
        written.append(str(folder / name))
    return tuple(written)

