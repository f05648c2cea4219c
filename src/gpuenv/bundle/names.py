"""Every name and path a bundle carries, checked once its checksums agree and before anything is written or
loaded. A seal proves the file is whole, not that its maker meant well, so nothing in it becomes a path, a
folder or an image tag unchecked:

    manifest.name      an environment name (spec/values.env_name's rule): the default folder ./NAME
    members            context/PATH and files/PATH: plain relative paths (no absolute path, no `.` or `..`,
                       no empty part, no control character or backslash); no other member names
    image.id, bases    image IDs: sha256:<64 hex>
    image.tag          exactly the tag gpuenv gives the bundle's build files for its UID/GID (gpuenv-NAME:...),
                       so a bundle cannot name its image python:3.11-slim or another environment's tag
    bases[].tag        image references that a FROM line of the bundle's own Dockerfile names
    requires           plain words (driver and CUDA versions, architectures): they reach messages
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from gpuenv.bundle.format import CONTEXT, FILES, IMAGE, LOCK, MAGIC, SPEC, forged
from gpuenv.bundle.manifest import Manifest
from gpuenv.render import File, tag_for
from gpuenv.spec.values import env_name

IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
REFERENCE = re.compile(rf"{_HOST}{_PART}(?:/{_PART})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}|@sha256:[0-9a-f]{{64}})")
FROM = re.compile(r"(?im)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?")
FIXED = (MAGIC, SPEC, LOCK, IMAGE)
MAX_UID = 2 ** 32 - 2
WORD = re.compile(r"[A-Za-z0-9_.+-]{0,32}")


def content_tag(name: str, uid: int, gid: int, files: list[tuple[str, str, int]]) -> str:
    """The tag gpuenv gives an image of these build files for this UID/GID (render.image_tag's rule)."""
    return tag_for(name, uid, gid, [File(p, t, m) for p, t, m in files])


def from_refs(dockerfile: str) -> list[tuple[str, str]]:
    """(image reference, stage name or "") of every FROM line of a Dockerfile."""
    return [(ref, stage) for ref, stage in FROM.findall(dockerfile)]


def relative_path(path: Path, name: str, where: str) -> str:
    """`name` when it is a plain relative path that stays inside the folder it is placed in."""
    parts = name.split("/")
    if (not name or len(name) > 255 or any(p in ("", ".", "..") for p in parts)
            or any(ord(c) < 0x20 or c in "\x7f\\" for c in name)):
        raise forged(path, f"has a {where} {name!r} that is not a plain relative path inside its folder "
                     "(absolute, with `.`, `..` or an empty part, or with a control character)")
    return name


def check_members(path: Path, names: Iterable[str]) -> None:
    """Only the members gpuenv writes, their paths inside the folder they belong in."""
    for name in names:
        if name in FIXED:
            continue
        prefix = next((p for p in (CONTEXT, FILES) if name.startswith(p)), None)
        if prefix is None:
            raise forged(path, f"holds a member {name!r} that no gpuenv bundle has")
        relative_path(path, name[len(prefix):], "member path")


def check_manifest(path: Path, manifest: Manifest, context: Sequence[tuple[str, str, int]]) -> None:
    """The manifest's name, image ID, tag and bases: see the module's docstring."""
    _env_name(path, manifest.data.get("name"))
    _image_id(path, "image", manifest.image_id)
    user = manifest.user
    if user is None or not all(0 <= n <= MAX_UID for n in user):
        raise forged(path, f"names no valid UID/GID for its image ({manifest.data.get('user')!r})")
    _own_tag(path, manifest, user, context)
    _requires(path, manifest)
    froms = {ref for ref, _ in from_refs(_dockerfile(context))}
    for ref, image_id in manifest.bases:
        _image_id(path, f"base {ref!r}", image_id)
        if not isinstance(ref, str) or not REFERENCE.fullmatch(ref) or ref not in froms:
            raise forged(path, f"lists a base image {ref!r} that no FROM line of its Dockerfile names")


def _requires(path: Path, manifest: Manifest) -> None:
    r = manifest.requires
    words = [r.min_driver, r.cuda, r.cuda_source, *r.gpu_archs]
    if not all(isinstance(w, str) and WORD.fullmatch(w) for w in words):
        raise forged(path, f"states host requirements that are not plain versions or names ({r.to_dict()!r})")


def _env_name(path: Path, name: Any) -> None:
    try:
        env_name(name if isinstance(name, str) else "")
    except ValueError as exc:
        raise forged(path, f"names its environment {name!r}, which is not an environment name: it {exc}") from None


def _image_id(path: Path, what: str, image_id: Any) -> None:
    if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
        raise forged(path, f"gives the {what} the ID {image_id!r}, which is not an image ID (sha256:<64 hex>)")


def _own_tag(path: Path, manifest: Manifest, user: tuple[int, int], context: Sequence[tuple[str, str, int]]) -> None:
    want = content_tag(manifest.name, user[0], user[1], list(context))
    if manifest.tag != want:
        raise forged(path, f"names its image {manifest.tag!r}, not the tag its own build files give it ({want})")


def _dockerfile(context: Sequence[tuple[str, str, int]]) -> str:
    return next((text for name, text, _ in context if name == "Dockerfile"), "")
