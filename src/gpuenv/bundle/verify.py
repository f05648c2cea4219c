"""One streaming pass over a whole bundle: its layout, every member's sha256 against the manifest, the
manifest against its seal, then every name and path it carries (names.py). Nothing is written and
nothing reaches the engine before this has passed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from gpuenv.bundle import manifest as manifests
from gpuenv.bundle import names
from gpuenv.bundle.format import (CONTEXT, FILES, IMAGE, LOCK, MAGIC, MAGIC_TEXT, MANIFEST, SEAL, SIGNATURE, SPEC,
                                  Member, Progress, damaged, forged, scan)
from gpuenv.errors import BadInput


@dataclass(frozen=True)
class Verified:
    path: Path
    manifest: manifests.Manifest
    image: Member                    # where the compressed image stream is in the file
    spec: bytes
    lock: Optional[bytes]
    context: tuple[tuple[str, bytes, int], ...]    # (path, bytes, mode) of the build context
    files: tuple[tuple[str, bytes], ...] = ()       # (path from the spec's folder, bytes) the spec names
    manifest_bytes: bytes = b""                     # manifest.json as it is in the file (what is signed)
    signature: Optional[bytes] = None               # manifest.sig, when the bundle is signed

    def context_text(self) -> list[tuple[str, str, int]]:
        return [(p, data.decode("utf-8"), mode) for p, data, mode in self.context]


def verify(path: Path, progress: Optional[Progress] = None) -> Verified:
    """The bundle at `path`, every checksum checked; Damaged (exit 2) with what is wrong otherwise."""
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not a bundle", "give the bundle's file: gpuenv load env.gpuenv")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", "give the path of a bundle `gpuenv save` wrote") from None
    with f:
        return _verify(f, path, progress)


def _verify(f: BinaryIO, path: Path, progress: Optional[Progress]) -> Verified:
    seen: list[Member] = []
    small: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    tail: dict[str, bytes] = {}                       # manifest.json, its seal, its signature
    for item in scan(f, path, progress):
        name = item.member.name
        _in_order(path, name, tail)
        if name in (MANIFEST, SEAL, SIGNATURE):
            tail[name] = item.data or b""
            continue
        if name in small or any(m.name == name for m in seen):
            raise damaged(path, f"is damaged: member {name!r} appears twice")
        seen.append(item.member)
        if item.data is not None:
            small[name] = item.data
        modes[name] = item.mode
    return _checked(path, seen, small, modes, tail)


def _in_order(path: Path, name: str, tail: dict[str, bytes]) -> None:
    """The manifest, then its seal, then (optionally) its signature, and nothing after them."""
    if SIGNATURE in tail or (SEAL in tail and name != SIGNATURE):
        raise damaged(path, f"is damaged: member {name!r} after the manifest's seal")
    if name == SEAL and MANIFEST not in tail:
        raise damaged(path, "is damaged: the manifest's seal comes before the manifest")
    if name == SIGNATURE and SEAL not in tail:
        raise damaged(path, "is damaged: the manifest's signature comes before its seal")
    if MANIFEST in tail and name not in (SEAL, SIGNATURE):
        raise damaged(path, f"is damaged: member {name!r} after the manifest")


def _checked(path: Path, seen: list[Member], small: dict[str, bytes], modes: dict[str, int],
             tail: dict[str, bytes]) -> Verified:
    if not seen or seen[0].name != MAGIC or small.get(MAGIC, b"").split(b":")[0] != MAGIC_TEXT.split(b":")[0]:
        raise damaged(path, "is not a gpuenv bundle of a format this gpuenv reads (its first member differs)")
    if MANIFEST not in tail or SEAL not in tail:
        raise damaged(path, "is truncated or damaged: it has no manifest" if MANIFEST not in tail else
                      "is truncated or damaged: its manifest has no seal (manifest.sha256)")
    parsed = manifests.check(path, tail[MANIFEST], tail[SEAL], seen)
    names.check_members(path, [m.name for m in seen])
    image = next((m for m in seen if m.name == IMAGE), None)
    if image is None or SPEC not in small:
        raise damaged(path, "is damaged: it lacks " + (IMAGE if image is None else SPEC))
    context = tuple((n[len(CONTEXT):], small[n], modes[n]) for n in small if n.startswith(CONTEXT))
    files = tuple((n[len(FILES):], small[n]) for n in small if n.startswith(FILES))
    verified = Verified(path, parsed, image, small[SPEC], small.get(LOCK), context, files, tail[MANIFEST],
                        tail.get(SIGNATURE))
    names.check_manifest(path, parsed, _context_text(verified))
    return verified


def _context_text(verified: Verified) -> list[tuple[str, str, int]]:
    try:
        return verified.context_text()
    except UnicodeDecodeError as exc:
        raise forged(verified.path, f"holds a build file that is not UTF-8 text ({exc.reason})") from None
