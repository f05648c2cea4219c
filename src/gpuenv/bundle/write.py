"""`gpuenv save`: an environment's image, spec, lock and build context into one bundle.

The image goes `docker save` -> zstd (multi-threaded) -> the bundle, CHUNK bytes at a time. The bundle
is written under a temporary name in the target's folder and renamed once complete and on disk, so an
interrupted save (Ctrl-C, a full disk, docker failing) leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Callable, Optional

import zstandard

from gpuenv.bundle import manifest as manifests
from gpuenv.bundle.format import (CHUNK, CONTEXT, FILES, IMAGE, LOCK, MAGIC, MAGIC_TEXT, MANIFEST, SEAL, SIGNATURE,
                                  SPEC, Member, Writer)
from gpuenv.bundle.names import content_tag, from_refs
from gpuenv.errors import BadInput, EngineError, GpuenvError, StorageError
from gpuenv.run.docker import Docker
from gpuenv.spec.requirements import read_requirements

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect
    from gpuenv.spec.model import EnvSpec

Sign = Callable[[bytes], bytes]     # the manifest's bytes -> its signature (signature.signer)
LEVEL = 3                  # zstd's default level; see docs/notes/issue7-bundle.md for the measured choice


@dataclass(frozen=True)
class Source:
    """What a bundle is made of: the environment's name, its image and the files it was built from."""

    name: str
    tag: str
    info: ImageInspect               # `docker image inspect` of the image
    spec_file: Path
    folder: Path                     # where its Dockerfile and .gpuenv/ are
    gpu: bool
    bases: tuple[tuple[str, str], ...] = ()   # (tag, ID) of base images whose layers the image starts with
    files: tuple[tuple[str, Path], ...] = ()  # (path from the spec's folder, file) the spec names


@dataclass(frozen=True)
class Saved:
    path: Path
    size: int
    image_bytes: int                 # the `docker save` stream's length
    members: tuple[Member, ...]


def env_name(tag: str) -> str:
    """The environment's name in an image tag gpuenv made (gpuenv-NAME:CONTENTTAG)."""
    found = re.fullmatch(r"gpuenv-(.+):[^:/]+", tag)
    return found[1] if found else tag.rsplit(":", 1)[0]


def context_files(folder: Path) -> list[tuple[str, bytes, int]]:
    """The build context the image's content tag hashes: Dockerfile, .dockerignore, .gpuenv/*."""
    names = [folder / "Dockerfile", folder / ".dockerignore"]
    support = folder / ".gpuenv"
    names += sorted(p for p in support.rglob("*") if p.is_file()) if support.is_dir() else []
    return [(p.relative_to(folder).as_posix(), p.read_bytes(), p.stat().st_mode & 0o777) for p in names if p.is_file()]


def spec_files(spec: EnvSpec, folder: Path) -> tuple[tuple[str, Path], ...]:
    """The files a spec names that a loaded copy needs next to it (its requirements file)."""
    if not spec.requirements:
        return ()
    path = (folder / spec.requirements).resolve()
    try:
        name = path.relative_to(folder.resolve()).as_posix()
    except ValueError:
        raise BadInput(f"gpuenv.toml's requirements file {spec.requirements} is outside its folder {folder}, so a "
                       "bundle cannot place it next to the loaded spec", "move it into the spec's folder") from None
    if not path.is_file():
        raise BadInput(f"gpuenv.toml's requirements file {path} does not exist", "create it, or remove `requirements`")
    return ((name, path),) + _included(path, folder.resolve())


def _included(path: Path, root: Path) -> tuple[tuple[str, Path], ...]:
    """The files the requirements file includes with `-r` (each inside the folder: the spec's check refuses
    any other), so that the loaded copy reads the same requirements."""
    found = read_requirements(path, root)
    inside = [f for f in found.files if f != path and root in f.parents]
    return tuple((f.relative_to(root).as_posix(), f) for f in sorted(set(inside)))


def bases_of(docker: Docker, info: ImageInspect, dockerfile: str) -> tuple[tuple[str, str], ...]:
    """The Dockerfile's FROM images that the image is built on (its layers start with theirs): saved with
    it at no cost in size, so that the loading engine has the base too (gpuenv's plan names it there)."""
    layers = (info.get("RootFS") or {}).get("Layers") or []
    stages: set[str] = set()
    found = []
    for ref, stage in from_refs(dockerfile):
        if ref.lower() not in stages and ref != "scratch":
            base = docker.image(ref)
            theirs = ((base or {}).get("RootFS") or {}).get("Layers") or []
            if base and theirs and layers[:len(theirs)] == theirs:
                found.append((ref, base["Id"]))
        if stage:
            stages.add(stage.lower())
    return tuple(dict.fromkeys(found))


def save(docker: Docker, source: Source, out: Path, progress: Optional[Callable[[int], None]] = None,
         level: int = LEVEL, sign: Optional[Sign] = None) -> Saved:
    """Write the bundle to `out` (replaced only when complete); `sign` signs its manifest."""
    context = _checked_context(source)
    temp = out.parent / f".{out.name}.{os.getpid()}.partial"
    try:
        with open(temp, "wb") as f:
            members, streamed = write_members(f, source, context,
                                              lambda w: _image(w, docker, source, progress, level), sign)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError.from_os(exc, out) or GpuenvError(
                f"cannot write {out}: {exc.strerror or exc}",
                "save to another disk: gpuenv save -o /disk/x.gpuenv") from None
        raise
    return Saved(out, out.stat().st_size, streamed, tuple(members))


def _checked_context(source: Source) -> list[tuple[str, bytes, int]]:
    files = context_files(source.folder)
    user = manifests.image_user(source.info)
    as_text = [(p, b.decode("utf-8", "replace"), m) for p, b, m in files]
    if user is None or content_tag(source.name, user[0], user[1], as_text) != source.tag:
        raise BadInput(f"the build files in {source.folder} are not the ones {source.tag} was built from "
                       "(generated again since?)", "build it again (gpuenv build), then save")
    return files


def write_members(f: BinaryIO, source: Source, context: list[tuple[str, bytes, int]],
                  image: Callable[[Writer], int], sign: Optional[Sign] = None) -> tuple[list[Member], int]:
    """Every member in order into `f`; `image` streams the image member (it returns the bytes it read);
    `sign` (the manifest's bytes -> an SSH signature) adds manifest.sig after the seal."""
    writer = Writer(f)
    writer.add(MAGIC, MAGIC_TEXT)
    writer.add(SPEC, source.spec_file.read_bytes())
    lock = source.spec_file.parent / LOCK
    if lock.is_file():
        writer.add(LOCK, lock.read_bytes())
    for path, data, mode in context:
        writer.add(CONTEXT + path, data, mode)
    for name, file in source.files:
        writer.add(FILES + name, file.read_bytes())
    streamed = image(writer)
    members = list(writer.members)
    manifest = manifests.make(source.name, source.tag, source.info, source.gpu, members, source.bases)
    writer.add(MANIFEST, manifest)
    writer.add(SEAL, manifests.seal(manifest))
    if sign is not None:
        writer.add(SIGNATURE, sign(manifest))
    writer.close()
    return members, streamed


def compress(writer: Writer, stream: IO[bytes], progress: Optional[Callable[[int], None]] = None,
             level: int = LEVEL) -> int:
    """`stream` (a binary file) compressed into the image member, CHUNK bytes at a time; its length."""
    sink = writer.stream(IMAGE)
    total = 0
    # zstandard's stubs ask for an IO[bytes]; its documentation (and code) takes any object with write()
    with zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True).stream_writer(
            sink, closefd=False) as packed:  # type: ignore[arg-type]
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            packed.write(chunk)
            total += len(chunk)
            if progress:
                progress(len(chunk))
    sink.finish()
    return total


def _image(writer: Writer, docker: Docker, source: Source, progress: Optional[Callable[[int], None]],
           level: int) -> int:
    """`docker save` of the image (and its bases), compressed into the image member as it streams."""
    tag = source.tag
    proc = _start(docker, "save", tag, *[ref for ref, _ in source.bases])
    try:
        assert proc.stdout is not None and proc.stderr is not None      # both PIPE (_start)
        total = compress(writer, proc.stdout, progress, level)
        err = proc.stderr.read().decode("utf-8", "replace")
        if proc.wait() != 0:
            raise EngineError(f"`docker save {tag}` failed: {err.strip()[-500:] or 'no output'}")
    finally:
        _stop(proc)
    return total


def _start(docker: Docker, *args: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(docker.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise EngineError(f"cannot run {docker.client}: {exc}") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()
