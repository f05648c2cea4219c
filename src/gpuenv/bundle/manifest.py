"""The manifest: what the bundle holds (every member's size and sha256), the image (ID, tag, size), the
gpuenv that wrote it, the UID/GID the image's user has, and what a host needs to run it, read from the
image's io.gpuenv.* labels (render/recipe.py writes them)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from gpuenv import __version__
from gpuenv.bundle.format import FORMAT, Member, damaged

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect

LABELS = "io.gpuenv."


@dataclass(frozen=True)
class Requires:
    gpu: bool                       # the environment asks for GPUs (gpu.devices is not "none")
    min_driver: str
    cuda: str
    cuda_source: str
    gpu_archs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"gpu": self.gpu, "min_driver": self.min_driver, "cuda": self.cuda,
                "cuda_source": self.cuda_source, "gpu_archs": list(self.gpu_archs)}


def requires_from(labels: dict[str, str], gpu: bool) -> Requires:
    archs = tuple(a for a in labels.get(f"{LABELS}gpu-archs", "").split(",") if a)
    return Requires(gpu, labels.get(f"{LABELS}min-driver", ""), labels.get(f"{LABELS}cuda", ""),
                    labels.get(f"{LABELS}cuda-source", ""), archs)


def image_user(info: ImageInspect) -> Optional[tuple[int, int]]:
    """The numeric UID:GID of the image's USER (gpuenv builds it so); None when it is a name."""
    user = ((info.get("Config") or {}).get("User") or "0:0")
    found = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    if not found:
        return None
    return int(found[1]), int(found[2] if found[2] is not None else found[1])


def make(name: str, tag: str, info: ImageInspect, gpu: bool, members: Sequence[Member],
         bases: Sequence[tuple[str, str]] = ()) -> bytes:
    """The manifest's bytes (JSON), for an image `docker image inspect` described."""
    labels = {k: v for k, v in ((info.get("Config") or {}).get("Labels") or {}).items() if k.startswith(LABELS)}
    user = image_user(info)
    data = {
        "format": FORMAT,
        "gpuenv": __version__,
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": name,
        "image": {"tag": tag, "id": info["Id"], "size": info.get("Size", 0)},
        "bases": [{"tag": t, "id": i} for t, i in bases],
        "user": {"uid": user[0], "gid": user[1]} if user else None,
        "requires": requires_from(labels, gpu).to_dict(),
        "labels": labels,
        "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in members],
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def seal(manifest: bytes) -> bytes:
    return (hashlib.sha256(manifest).hexdigest() + "  manifest.json\n").encode()


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def tag(self) -> str:
        return self.data["image"]["tag"]

    @property
    def image_id(self) -> str:
        return self.data["image"]["id"]

    @property
    def bases(self) -> list[tuple[str, str]]:
        return [(b["tag"], b["id"]) for b in self.data.get("bases") or ()]

    @property
    def user(self) -> Optional[tuple[int, int]]:
        user = self.data.get("user")
        return (int(user["uid"]), int(user["gid"])) if user else None

    @property
    def requires(self) -> Requires:
        r = self.data["requires"]
        return Requires(bool(r["gpu"]), r.get("min_driver") or "", r.get("cuda") or "",
                        r.get("cuda_source") or "", tuple(r.get("gpu_archs") or ()))


def check(path: Path, manifest: bytes, sealed: bytes, seen: Sequence[Member]) -> Manifest:
    """The manifest, once its seal and every member's size and sha256 agree with what was read."""
    if sealed.split(b" ", 1)[0].decode("ascii", "replace") != hashlib.sha256(manifest).hexdigest():
        raise damaged(path, "is damaged: manifest.json does not match its checksum (manifest.sha256)")
    try:
        data = json.loads(manifest)
        listed = [(m["name"], int(m["size"]), m["sha256"]) for m in data["members"]]
        parsed = Manifest(data)
        _ = (parsed.tag, parsed.image_id, parsed.requires, parsed.user, parsed.bases)  # each field a loader reads
    except (ValueError, KeyError, TypeError) as exc:
        raise damaged(path, f"has a manifest gpuenv cannot read ({type(exc).__name__}: {exc})") from None
    if data.get("format") != FORMAT:
        raise damaged(path, f"is a bundle of format {data.get('format')}; this gpuenv reads format {FORMAT}")
    got = [(m.name, m.size, m.sha256) for m in seen]
    for want, have in zip(listed, got):
        if want[0] != have[0]:
            raise damaged(path, f"is damaged: member {have[0]!r} where the manifest lists {want[0]!r}")
        if want[1:] != have[1:]:
            raise damaged(path, f"is damaged: member {want[0]!r} does not match its checksum in the manifest "
                          f"(sha256 {have[2][:16]}..., {have[1]} bytes; expected {want[2][:16]}..., {want[1]} bytes)")
    if len(listed) != len(got):
        missing = [w[0] for w in listed[len(got):]] or [h[0] for h in got[len(listed):]]
        raise damaged(path, f"is damaged: the manifest and the file disagree on the members ({', '.join(missing)})")
    return parsed
