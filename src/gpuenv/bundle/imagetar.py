"""The `docker save` archive on its way from a bundle to `docker load`, rewritten as it streams (never stored).

`docker load` applies the tags a save archive carries (manifest.json's RepoTags, the legacy file
`repositories`, index.json's image names) and takes them from whatever image they named before. So every
tag is removed on the way, and tags.py tags what the sealed manifest names, by image ID, only where that
moves nothing. Each member is re-written from what Python's tar reader understood of it (a fresh header,
no extended records carried over), so docker reads the same names gpuenv checked; member data is copied
as it comes, CHUNK bytes at a time. Checked on the way:

    - members are plain files, folders or symlinks at relative paths without `..`, none under a symlink,
      no name twice; manifest.json, index.json and repositories are plain files
    - a member named by a digest (<hex>.json, blobs/sha256/<hex>) of at most SMALL bytes has that sha256
    - manifest.json exists, lists only configs that are such checked members (docker save writes them
      first: its archive is in name order), whose IDs the bundle's manifest names, and only its tags

A stream that fails is never ended: `cut` leaves it inside a tar block, so docker load fails and loads
nothing.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Iterator, Optional

from gpuenv.bundle.format import BLOCK, CHUNK, SMALL, forged

DIGEST = re.compile(r"(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?")
TAGS = "manifest.json"
SPECIAL = ("manifest.json", "index.json", "repositories")
IMAGE_NAMES = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


@dataclass(frozen=True)
class Allowed:
    """What the sealed manifest lets the archive load: image IDs, and tags (docker's short form)."""

    ids: frozenset[str]
    tags: frozenset[str]


@dataclass
class _Seen:
    names: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    digests: set[str] = field(default_factory=set)      # checked: the member's sha256 is its name
    loads: Optional[frozenset[str]] = None              # the image IDs manifest.json makes


def familiar(ref: str) -> str:
    """A reference as docker writes it in RepoTags: no docker.io/ or library/, `:latest` when untagged."""
    name, at, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    domain, path = (first, rest) if rest and ("." in first or ":" in first or first == "localhost") else ("", name)
    if domain in ("docker.io", "index.docker.io"):
        domain = ""
    if not domain and path.startswith("library/") and path.count("/") == 1:
        path = path[len("library/"):]
    if ":" not in path.rsplit("/", 1)[-1] and not at:
        path += ":latest"
    return (domain + "/" if domain else "") + path + at + digest


def copy(src: BinaryIO, dst: IO[bytes], allowed: Allowed, bundle: Path,
         before_end: Callable[[], None]) -> frozenset[str]:
    """The save archive from `src` to `dst` untagged and checked; the image IDs it loads. `before_end` runs
    before the archive's end is written (a check that fails there leaves the stream unfinished)."""
    seen = _Seen()
    try:
        for entry in _entries(src):
            _member(src, entry, dst, allowed, bundle, seen)
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise forged(bundle, f"holds an image archive docker save did not write ({exc})") from None
    if seen.loads is None:
        raise forged(bundle, "holds an image archive without manifest.json (docker save writes one)")
    before_end()
    dst.write(b"\0" * (2 * BLOCK))
    return seen.loads


@dataclass(frozen=True)
class _Entry:
    """A member as its headers say (a GNU long name or PAX record applied): its data follows in `src`."""

    name: str
    type: bytes
    size: int
    mode: int
    mtime: int
    linkname: str

    def isreg(self) -> bool:
        return self.type in (tarfile.REGTYPE, tarfile.AREGTYPE)


def _entries(src: BinaryIO) -> Iterator[_Entry]:
    """Each member's header, read here; the caller reads its data (size bytes and the padding) before the
    next. Only plain files, folders and symlinks, as docker save writes; a GNU long name or a PAX record
    (path, linkpath, size) applies to the member after it."""
    pending: dict[str, str] = {}
    while True:
        block = _exact(src, BLOCK)
        if block == b"\0" * BLOCK:
            return
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE):
            pending.update(_extended(src, info))
            continue
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE):
            raise tarfile.ReadError(f"member {info.name!r} is of a type docker save does not write")
        name = pending.get("path", info.name).rstrip("/") if info.isdir() else pending.get("path", info.name)
        size = int(pending.get("size", info.size))
        if size < 0:
            raise tarfile.ReadError(f"member {name!r} has a negative size")
        yield _Entry(name, info.type, size, info.mode, int(info.mtime), pending.get("linkpath", info.linkname))
        pending = {}


def _extended(src: BinaryIO, info: tarfile.TarInfo) -> dict[str, str]:
    if info.size > SMALL:
        raise tarfile.ReadError(f"an extended header of {info.size} bytes")
    data = _exact(src, info.size + (-info.size % BLOCK))[:info.size]
    if info.type != tarfile.XHDTYPE:
        key = "path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"
        return {key: data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")}
    return {k: v for k, v in _pax_records(data).items() if k in ("path", "linkpath", "size")}


def _pax_records(data: bytes) -> dict[str, str]:
    """`LENGTH KEY=VALUE\\n` records of a PAX extended header."""
    records, at = {}, 0
    while at < len(data) and data[at:at + 1] != b"\0":
        length = int(data[at:data.index(b" ", at)])
        key, _, value = data[data.index(b" ", at) + 1:at + length - 1].partition(b"=")
        if length <= 0 or data[at + length - 1:at + length] != b"\n":
            raise tarfile.ReadError("a PAX header record is malformed")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


def _exact(src: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise EOFError("the image archive ends inside a member")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def cut(dst: IO[bytes]) -> None:
    """End a refused stream inside a tar block: docker load reads a truncated archive and loads nothing."""
    try:
        dst.write(b"\xff" * 100)
    except (BrokenPipeError, ValueError, OSError):
        pass


def _member(src: BinaryIO, entry: _Entry, dst: IO[bytes], allowed: Allowed, bundle: Path, seen: _Seen) -> None:
    name = _name(entry, bundle, seen)
    if not entry.isreg():
        if entry.size:
            raise tarfile.ReadError(f"member {name!r} is not a plain file but has data")
        dst.write(_header(entry, name, 0))
        return
    if name in SPECIAL and entry.size > SMALL:
        raise forged(bundle, f"holds an image archive whose {name} has {entry.size} bytes (docker save's has a few)")
    if name in SPECIAL or DIGEST.fullmatch(name) and entry.size <= SMALL:
        small = _exact(src, entry.size + (-entry.size % BLOCK))[:entry.size]
        body = _special(name, small, allowed, bundle, seen) if name in SPECIAL else _digested(name, small, bundle, seen)
        if body is not None:
            dst.write(_header(entry, name, len(body)) + body + b"\0" * (-len(body) % BLOCK))
        return
    dst.write(_header(entry, name, entry.size))
    _pass(src, dst, entry.size)


def _pass(src: BinaryIO, dst: IO[bytes], size: int) -> None:
    """A member's data (and its padding) from src to dst as it comes, CHUNK bytes at a time."""
    left = size + (-size % BLOCK)
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise EOFError("the image archive ends inside a member")
        dst.write(chunk)
        left -= len(chunk)


def _name(member: _Entry, bundle: Path, seen: _Seen) -> str:
    name = posixpath.normpath(member.name) if member.name else ""
    parts = name.split("/")
    bad = member.name.startswith("/") or ".." in parts or name in ("", ".") or name in seen.names or "\0" in name
    under_link = any("/".join(parts[:i]) in seen.links for i in range(1, len(parts)))
    if bad or under_link or (name in SPECIAL and not member.isreg()):
        raise forged(bundle, f"holds an image archive with a member docker save does not write: {member.name!r} "
                     f"({'under a symlink' if under_link else 'its path or type'})")
    seen.names.add(name)
    if member.type == tarfile.SYMTYPE:
        seen.links.add(name)
    return name


def _digested(name: str, data: bytes, bundle: Path, seen: _Seen) -> bytes:
    digest = DIGEST.fullmatch(name)[1]    # type: ignore[index]
    if hashlib.sha256(data).hexdigest() != digest:
        raise forged(bundle, f"holds an image archive whose member {name} does not have the sha256 its name says")
    seen.digests.add(name)
    return data


def _special(name: str, data: bytes, allowed: Allowed, bundle: Path, seen: _Seen) -> Optional[bytes]:
    """manifest.json untagged and checked, index.json without image names, repositories dropped."""
    if name == "repositories":
        return None
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise forged(bundle, f"holds an image archive whose {name} is not JSON ({exc})") from None
    if name == "index.json":
        return _unnamed_index(parsed, bundle)
    seen.loads = _loads(parsed, allowed, bundle, seen)
    return json.dumps([{**entry, "RepoTags": []} for entry in parsed]).encode()


def _loads(entries: Any, allowed: Allowed, bundle: Path, seen: _Seen) -> frozenset[str]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise forged(bundle, "holds an image archive whose manifest.json is not a list of images")
    ids = set()
    for entry in entries:
        config = entry.get("Config")
        if not isinstance(config, str) or posixpath.normpath(config) not in seen.digests:
            raise forged(bundle, f"holds an image archive whose manifest.json names a config {config!r} that is "
                         "not a checked member before it")
        image_id = "sha256:" + DIGEST.fullmatch(posixpath.normpath(config))[1]    # type: ignore[index]
        tags = entry.get("RepoTags") or []
        strange = [t for t in tags if not isinstance(t, str) or familiar(t) not in allowed.tags]
        if image_id not in allowed.ids or strange:
            what = f"tags {strange}" if strange else f"image {image_id}"
            raise forged(bundle, f"holds an image archive that would load {what}, which its manifest does not name")
        ids.add(image_id)
    return frozenset(ids)


def _unnamed_index(index: Any, bundle: Path) -> bytes:
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise forged(bundle, "holds an image archive whose index.json is not an OCI index")
    for entry in index.get("manifests", []):
        notes = entry.get("annotations") if isinstance(entry, dict) else None
        if isinstance(notes, dict):
            entry["annotations"] = {k: v for k, v in notes.items() if k not in IMAGE_NAMES}
    return json.dumps(index).encode()


def _header(member: _Entry, name: str, size: int) -> bytes:
    """A fresh header (PAX where a name needs it) from what was read: nothing else of the original's."""
    fresh = tarfile.TarInfo(name + ("/" if member.type == tarfile.DIRTYPE else ""))
    fresh.type = tarfile.REGTYPE if member.isreg() else member.type
    fresh.size, fresh.mode, fresh.mtime, fresh.linkname = size, member.mode & 0o7777, member.mtime, member.linkname
    return fresh.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
