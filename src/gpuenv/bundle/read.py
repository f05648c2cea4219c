"""`gpuenv load`: a verified bundle into the engine, in an order that leaves nothing half-done:

    1. verify.py has read the whole file and checked every checksum (nothing reached the engine yet)
    2. the spec is parsed, the target folder checked (a different gpuenv.toml there is not replaced)
    3. this host against the bundle's requirements (fits.py), unless forced
    4. the image member streamed: zstd -> imagetar.py (every tag the archive carries removed, its images
       checked against the manifest) -> `docker load` stdin; the member hashed again and the archive ended
       only when it is the one verified; skipped when the engine already has that image
    5. the image ID checked against the manifest, tagged where that moves no tag (tags.py); for another
       UID/GID a derived image (build/retarget.py) under the tag gpuenv computes for this user
    6. the files the spec names, gpuenv.toml (and gpuenv.lock) written into the folder, inside it
    A step that fails takes away what the load put on the engine (tags.Placed.undo).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Callable, Optional

import zstandard

from gpuenv.bundle import imagetar, tags
from gpuenv.bundle.fits import Misfit, misfits
from gpuenv.bundle.format import CHUNK, FILES, LOCK, SPEC, damaged, forged
from gpuenv.bundle.manifest import Manifest
from gpuenv.bundle.names import content_tag
from gpuenv.bundle.tags import Kept, Placed, TagTaken
from gpuenv.bundle.verify import Verified
from gpuenv.bundle.write import spec_files
from gpuenv.errors import BadInput, EngineError, GpuenvError
from gpuenv.images.retarget import DERIVED_FROM, retarget
from gpuenv.run.docker import Docker
from gpuenv.spec.load import parse_spec

if TYPE_CHECKING:
    from gpuenv.host.nvidia import DriverState
    from gpuenv.spec.model import EnvSpec


class Unfit(GpuenvError):
    """This host cannot run the bundle's image."""


def target_folder(verified: Verified, into: Optional[Path]) -> Path:
    return (into or Path.cwd() / verified.manifest.name).resolve()


def parsed_spec(verified: Verified) -> EnvSpec:
    """The bundle's spec, validated before anything is loaded or written: the files it names are staged
    in a temporary folder for the check (the spec checks that its requirements file exists)."""
    try:
        text = verified.spec.decode("utf-8")
    except UnicodeDecodeError:
        raise damaged(verified.path, "holds a gpuenv.toml that is not UTF-8 text") from None
    with tempfile.TemporaryDirectory(prefix="gpuenv-load-") as staged:
        _stage(verified, Path(staged))
        spec = parse_spec(text, f"{verified.path.name}:{SPEC}", Path(staged))
        _only_named(verified, spec, Path(staged))
        return spec


def _stage(verified: Verified, staged: Path) -> None:
    """The spec's files in a private temporary folder (names.py checked: plain relative paths)."""
    for name, data in verified.files:
        try:
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            (staged / name).write_bytes(data)
        except OSError as exc:
            raise forged(verified.path, f"carries files whose paths collide ({FILES}{name}: {exc.strerror})") from None


def _only_named(verified: Verified, spec: EnvSpec, staged: Path) -> None:
    """The bundle carries exactly the files its spec names (write.spec_files: what save carries)."""
    named = {name for name, _ in spec_files(spec, staged)}
    extra = sorted({name for name, _ in verified.files} - named)
    if extra:
        raise forged(verified.path,
                     f"carries files its gpuenv.toml does not name ({', '.join(FILES + n for n in extra)})")


def check_folder(verified: Verified, folder: Path, force: bool) -> None:
    """Refuse before loading anything when the folder holds a different spec (or lock) of its own, or a
    symlink on the way to a file the load writes."""
    for name, data in _files(verified):
        there = _inside(folder, name)
        if data is not None and there.is_file() and there.read_bytes() != data and not force:
            raise BadInput(f"{there} exists and differs from the bundle's {name}",
                           "load into another folder (--into DIR), or replace it with --force")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a folder", "give another folder with --into DIR")


def _inside(folder: Path, name: str) -> Path:
    """folder/name, when the folder it is written in is inside `folder` (no symlink leads out) and it is no
    symlink or folder itself (os.replace would replace the link, not what it names; still, refused)."""
    target = folder / name
    root, parent = folder.resolve(), target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise BadInput(f"{target.parent} leads outside {folder} (a symlink), where the bundle's {name} would go",
                       "remove that symlink, or load into another folder: --into DIR")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"{target.parent} is a file, where the bundle's {name} needs a folder",
                       "move it away, or load into another folder: --into DIR")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise BadInput(f"{target} is a symlink or not a plain file, where the bundle's {name} would go",
                       "remove it, or load into another folder: --into DIR")
    return target


def check_host(verified: Verified, driver: DriverState, force: bool) -> tuple[Misfit, ...]:
    found = tuple(misfits(verified.manifest.requires, driver))
    if found and not force:
        reasons = "; ".join(m.message for m in found)
        works = "; ".join(dict.fromkeys(m.would_work for m in found))
        raise Unfit(f"this host cannot run {verified.manifest.tag}: {reasons}",
                    f"what would work: {works}. `gpuenv load --force` loads it anyway")
    return found


@dataclass(frozen=True)
class Loading:
    loaded: bool                 # False: the engine had the image already
    placed: Placed               # what this load put on the engine (undo() takes it away)
    kept: tuple[Kept, ...]       # base tags left on this engine's own images


def load_image(docker: Docker, verified: Verified, progress: Optional[Callable[[int], None]] = None) -> Loading:
    """The image into the engine, untagged, then tagged where that moves no tag (tags.py); whatever this
    put on the engine is removed again when any step fails."""
    m = verified.manifest
    planned = tags.plan(docker, m)
    wanted = list(dict.fromkeys([m.image_id, *(image_id for _, image_id in m.bases)]))
    placed = Placed([image_id for image_id in wanted if not docker.image(image_id)])
    loaded = m.image_id in placed.new_ids
    try:
        if loaded:
            _stream_into(docker, verified, _allowed(m), progress)
        placed.new_ids = [image_id for image_id in placed.new_ids if docker.image(image_id)]
        if not docker.image(m.image_id):
            raise forged(verified.path, f"did not give the engine the image its manifest names ({m.image_id})")
        tags.apply(docker, planned, placed)
    except BaseException:
        placed.undo(docker)
        raise
    return Loading(loaded, placed, planned.kept)


def _allowed(m: Manifest) -> imagetar.Allowed:
    refs = [m.tag, *(ref for ref, _ in m.bases)]
    return imagetar.Allowed(frozenset([m.image_id, *(i for _, i in m.bases)]),
                            frozenset(imagetar.familiar(r) for r in refs))


def _stream_into(docker: Docker, verified: Verified, allowed: imagetar.Allowed,
                 progress: Optional[Callable[[int], None]]) -> None:
    """zstd -> the tag-stripping copy (imagetar.py) -> `docker load`. The compressed member is hashed again
    as it is read, and the archive is ended only when its sha256 is the one verify() checked: a file changed
    between the two passes loads nothing."""
    try:
        proc = subprocess.Popen(docker.argv("load"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as exc:
        raise EngineError(f"cannot run {docker.client}: {exc}") from None
    ended = False
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None         # both PIPE, above
    try:
        _copy(verified, stdin, allowed, progress)
        ended = True
        stdin.close()
        said = stdout.read().decode("utf-8", "replace")
        if proc.wait() != 0:
            raise EngineError(f"`docker load` failed: {said.strip()[-500:] or 'no output'}")
    except BrokenPipeError:
        said = stdout.read().decode("utf-8", "replace")
        raise EngineError(f"`docker load` stopped reading: {said.strip()[-500:] or 'no output'}") from None
    finally:
        _finish(proc, ended)


def _copy(verified: Verified, out: IO[bytes], allowed: imagetar.Allowed,
          progress: Optional[Callable[[int], None]]) -> None:
    try:
        with open(verified.path, "rb") as f:
            f.seek(verified.image.offset)
            member = _Counted(f, verified.image.size, progress)
            # zstandard's stubs ask for an IO[bytes]; its documentation (and code) takes any object with read()
            with zstandard.ZstdDecompressor().stream_reader(member, read_size=CHUNK) as unpacked:  # type: ignore[arg-type]
                imagetar.copy(unpacked, out, allowed, verified.path, lambda: _unchanged(verified, unpacked, member))
    except zstandard.ZstdError as exc:
        raise damaged(verified.path, f"changed after it was verified, or holds an image stream zstd cannot "
                      f"read ({exc})") from None


def _unchanged(verified: Verified, unpacked: zstandard.ZstdDecompressionReader, member: _Counted) -> None:
    """The rest of the zstd stream read (its content checksum checked at its end) and the member's sha256
    compared with the one verify() found, before the archive is ended."""
    while unpacked.read(CHUNK):
        pass
    while member.read(CHUNK):
        pass
    if member.digest.hexdigest() != verified.image.sha256:
        raise damaged(verified.path, "changed after it was verified (its image member's sha256 differs now)")


def _finish(proc: subprocess.Popen[bytes], ended: bool) -> None:
    """A stream not ended is cut inside a tar block, so `docker load` fails and loads nothing; it is given
    time to fail before the caller removes what it might have left."""
    if not ended and proc.stdin and not proc.stdin.closed:
        imagetar.cut(proc.stdin)
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Counted:
    """The image member's bytes, at most `size` of them, counted and hashed as zstd reads them."""

    def __init__(self, f: BinaryIO, size: int, progress: Optional[Callable[[int], None]]) -> None:
        self.f, self.left, self.progress = f, size, progress
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        self.digest.update(data)
        if self.progress and data:
            self.progress(len(data))
        return data


def for_user(docker: Docker, verified: Verified, uid: int, gid: int,
             placed: Placed) -> tuple[str, str, Optional[tuple[int, int]]]:
    """(tag, image ID) of the image for this UID/GID: the bundle's own, or one derived for this user (its
    tag placed only when free or already on an image derived from this one: TagTaken otherwise)."""
    m = verified.manifest
    if m.user is None or m.user == (uid, gid):
        return m.tag, m.image_id, None
    tag = content_tag(m.name, uid, gid, verified.context_text())
    there = docker.image(tag)
    if there and ((there.get("Config") or {}).get("Labels") or {}).get(DERIVED_FROM) != m.image_id:
        raise TagTaken(f"{tag} (the tag of this environment for UID {uid} / GID {gid}) names image "
                       f"{there['Id'][:19]} on this engine, not one derived from the bundle's; loading would take it",
                       f"keep yours, or remove it first: docker rmi {tag}")
    made = retarget(docker, docker.image(m.image_id) or {"Id": m.image_id}, uid, gid, tag)
    if not there:
        placed.new_ids.append(made)
        placed.tags.append((tag, made))
    return tag, made, (uid, gid)


def _files(verified: Verified) -> list[tuple[str, Optional[bytes]]]:
    """What load writes into the folder: the spec's own files first, then gpuenv.toml and gpuenv.lock."""
    return [*verified.files, (SPEC, verified.spec), (LOCK, verified.lock)]


def write_files(verified: Verified, folder: Path) -> tuple[str, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in _files(verified):
        if data is None:
            continue
        _inside(folder, name)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _inside(folder, name)
        temp = (folder / name).with_name(f".{Path(name).name}.{os.getpid()}.tmp")
        try:
            temp.write_bytes(data)
            os.replace(temp, folder / name)
        finally:
            temp.unlink(missing_ok=True)
        written.append(str(folder / name))
    return tuple(written)

