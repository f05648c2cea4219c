"""The bundle's layout: a plain tar archive (GNU headers, so `tar tvf FILE` lists it), members in order

    gpuenv-bundle        a line saying what the file is and its format number (always first)
    gpuenv.toml          the spec
    gpuenv.lock          the lock, when the environment has one
    context/...          the build context the image was built from (Dockerfile, .dockerignore, .gpuenv/):
                         with the UID/GID it gives the image's content tag for any user
    files/...            files the spec names (its requirements file), by their path from the spec's folder
    image.tar.zst        the `docker save` stream, compressed with zstd (with its own frame checksum)
    manifest.json        every member above with its size and sha256, the image, the requirements
    manifest.sha256      the sha256 of manifest.json (so an altered manifest is caught too)
    manifest.sig         optional: an SSH signature of manifest.json (`ssh-keygen -Y sign`, namespace
                         gpuenv-bundle), when `gpuenv save --sign KEY` made it (signature.py)

Members are written and read as streams of CHUNK bytes. The image member is written after a
placeholder header that is patched with its size once the stream ends (the file is seekable: it is our
own temporary file); GNU headers hold any size in the same 512 bytes.
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

from gpuenv.errors import BadInput

FORMAT = 1
MAGIC = "gpuenv-bundle"
MAGIC_TEXT = f"gpuenv bundle, format {FORMAT}: `gpuenv load FILE` loads it; `tar tvf FILE` lists it\n".encode()
SPEC = "gpuenv.toml"
LOCK = "gpuenv.lock"
CONTEXT = "context/"
FILES = "files/"
IMAGE = "image.tar.zst"
MANIFEST = "manifest.json"
SEAL = "manifest.sha256"
SIGNATURE = "manifest.sig"
BLOCK = 512
CHUNK = 1 << 20
SMALL = 16 << 20            # members other than the image are read into memory only below this size

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: str
    offset: int = 0         # where its data starts in the file


def _header(name: str, size: int, mtime: int, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, mode
    info.uname = info.gname = "gpuenv"
    block = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")
    if len(block) != BLOCK:
        raise ValueError(f"member name too long for one header: {name}")
    return block


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class Writer:
    """Members appended to a seekable binary file, each returned with its size and sha256."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.members: list[Member] = []
        self.mtime = int(time.time())

    def add(self, name: str, data: bytes, mode: int = 0o644) -> Member:
        self.out.write(_header(name, len(data), self.mtime, mode))
        offset = self.out.tell()
        self.out.write(data + _pad(len(data)))
        member = Member(name, len(data), hashlib.sha256(data).hexdigest(), offset)
        self.members.append(member)
        return member

    def stream(self, name: str) -> "MemberSink":
        """A member written as a stream: write() to it, then finish()."""
        return MemberSink(self, name)

    def close(self) -> None:
        self.out.write(b"\0" * (2 * BLOCK))         # the end of the archive
        self.out.flush()


class MemberSink:
    """A file-like sink for one streamed member: its header is patched with the size on finish()."""

    def __init__(self, writer: Writer, name: str) -> None:
        self.writer, self.name = writer, name
        self.start = writer.out.tell()
        writer.out.write(_header(name, 0, writer.mtime))
        self.offset = writer.out.tell()
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.writer.out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.writer.out.flush()

    def finish(self) -> Member:
        out = self.writer.out
        out.write(_pad(self.size))
        end = out.tell()
        out.seek(self.start)
        out.write(_header(self.name, self.size, self.writer.mtime))
        out.seek(end)
        member = Member(self.name, self.size, self.digest.hexdigest(), self.offset)
        self.writer.members.append(member)
        return member


class Damaged(BadInput):
    """The file is not a bundle, or not a whole one."""


def damaged(path: Path, what: str) -> Damaged:
    return Damaged(f"{path} {what}", "nothing was loaded; copy the bundle again (compare its size with the "
                   "original's), or save it again with `gpuenv save`")


class Forged(BadInput):
    """The file is a whole bundle (its checksums agree), but not one `gpuenv save` writes: it names a path,
    an image or a tag it must not. A seal proves the file is undamaged, not who made it."""


def forged(path: Path, what: str) -> Forged:
    return Forged(f"{path} {what}", "nothing was loaded or written: `gpuenv save` never writes this, so the "
                  "bundle was made or changed by something else; get it again from its maker, and ask them to "
                  "sign it (gpuenv save --sign KEY; gpuenv load --allowed-signers FILE checks who made it)")


@dataclass
class Scanned:
    """A member as a scan saw it; `data` holds the bytes of small members (not of the image)."""

    member: Member
    data: Optional[bytes] = None
    mode: int = 0o644


def scan(f: BinaryIO, path: Path, progress: Optional[Progress] = None) -> Iterator[Scanned]:
    """Every member in order, hashed as it streams by; Damaged at the first thing that is wrong
    (not a tar, not a bundle, a bad header, a member or the end of the archive cut short)."""
    first = True
    while True:
        at = f.tell()
        block = f.read(BLOCK)
        if len(block) < BLOCK:
            raise damaged(path, _cut(at, first, "the end of the archive"))
        if block == b"\0" * BLOCK:
            if first:
                raise damaged(path, "is not a gpuenv bundle (it starts with zeros)")
            if len(f.read(BLOCK)) < BLOCK:
                raise damaged(path, f"is truncated: it ends at byte {at + BLOCK}, inside the end of the archive")
            return
        info = _parse(block, path, at, first)
        if first and info.name != MAGIC:
            raise damaged(path, f"is a tar archive but not a gpuenv bundle (its first member is {info.name!r}; "
                          "a `docker save` archive loads with `docker load -i`)")
        first = False
        yield _member(f, path, info, f.tell(), progress)


def _cut(at: int, first: bool, wanted: str) -> str:
    if first and at == 0:
        return "is not a gpuenv bundle (it is empty or shorter than one tar header)"
    return f"is truncated: it ends at byte {at}, where {wanted} or another member should start"


def _parse(block: bytes, path: Path, at: int, first: bool) -> tarfile.TarInfo:
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.HeaderError, UnicodeDecodeError) as exc:
        if first:
            raise damaged(path, f"is not a gpuenv bundle (not a tar archive: {exc})") from None
        raise damaged(path, f"is damaged: the member header at byte {at} is invalid ({exc})") from None
    if not info.isreg():
        raise damaged(path, f"is not a gpuenv bundle: member {info.name!r} at byte {at} is not a plain file")
    return info


def _member(f: BinaryIO, path: Path, info: tarfile.TarInfo, offset: int, progress: Optional[Progress]) -> Scanned:
    digest, left, kept = hashlib.sha256(), info.size, []
    keep = info.size <= SMALL and info.name != IMAGE
    while left:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise damaged(path, f"is truncated: member {info.name!r} has {info.size - left} of its {info.size} bytes")
        digest.update(chunk)
        left -= len(chunk)
        if keep:
            kept.append(chunk)
        if progress:
            progress(len(chunk))
    padding = -info.size % BLOCK
    if len(f.read(padding)) < padding:
        raise damaged(path, f"is truncated: it ends inside the padding after member {info.name!r}")
    member = Member(info.name, info.size, digest.hexdigest(), offset)
    return Scanned(member, b"".join(kept) if keep else None, info.mode)
