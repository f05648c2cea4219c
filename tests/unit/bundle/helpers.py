"""A bundle made from bytes, without an engine, in the exact layout `gpuenv save` writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Optional

from gpuenv.bundle.write import Source, compress, content_tag, write_members

# stands in for a `docker save` stream: compressible, not random, spanning several chunks
BASE_ID = "sha256:" + "cd" * 32
IMAGE_BYTES = b"".join(b"layer %08d: /usr/lib/python3/dist-packages/x.so\n" % i for i in range(60_000))
CONTEXT = [("Dockerfile", b"FROM gpuenv-base/debian:bookworm\nUSER ${USER_UID}:${USER_GID}\n", 0o644),
           (".dockerignore", b"*\n!.gpuenv/\n", 0o644), (".gpuenv/start.sh", b"#!/bin/sh\nexec \"$@\"\n", 0o755)]
REQUIREMENTS = "einops==0.8.0\n"
LABELS = {"io.gpuenv.min-driver": "525.60.13", "io.gpuenv.cuda": "12.4", "io.gpuenv.cuda-source": "wheels",
          "io.gpuenv.gpu-archs": "sm_80,sm_90", "other.label": "kept out"}


def _tag(uid: int = 1000, gid: int = 1000) -> str:
    return content_tag("demo", uid, gid, [(p, d.decode(), m) for p, d, m in CONTEXT])


def make_bundle(folder: Path, lock: bool = True, sign: Optional[Callable[[bytes], bytes]] = None) -> Path:
    spec = folder / "src" / "gpuenv.toml"
    spec.parent.mkdir()
    spec.write_text('name = "demo"\nframeworks = ["torch"]\nrequirements = "deps/requirements.txt"\n')
    (spec.parent / "deps").mkdir()
    (spec.parent / "deps" / "requirements.txt").write_text(REQUIREMENTS)
    if lock:
        (spec.parent / "gpuenv.lock").write_text("version = 1\n")
    info = {"Id": "sha256:" + "ab" * 32, "Size": len(IMAGE_BYTES), "Config": {"User": "1000:1000", "Labels": LABELS}}
    source = Source("demo", _tag(), info, spec, spec.parent, True, (("gpuenv-base/debian:bookworm", BASE_ID),),
                    (("deps/requirements.txt", spec.parent / "deps" / "requirements.txt"),))
    path = folder / "demo.gpuenv"
    with open(path, "wb") as f:
        write_members(f, source, CONTEXT, lambda w: compress(w, io.BytesIO(IMAGE_BYTES)), sign)
    return path


def make_signed(folder: Path, key: Path) -> Path:
    """make_bundle's bundle, signed with `key` (ssh-keygen -Y sign)."""
    from gpuenv.bundle.signature import signer

    return make_bundle(folder, sign=signer(key))


def ssh_key(folder: Path, name: str = "alice") -> tuple[Path, Path]:
    """A real ed25519 key made by ssh-keygen, and an allowed_signers file listing it as NAME@example."""
    import subprocess

    key = folder / f"{name}_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    allowed = folder / f"{name}.allowed_signers"
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    allowed.write_text(f"{name}@example {kind} {blob}\n")
    return key, allowed


def rebuild(src: Path, out: Path, edit: Callable[[dict], None] = lambda data: None,
            members: Optional[dict[str, Optional[bytes]]] = None, keep_signature: bool = True) -> Path:
    """A forged bundle: src's members, `members` replacing (bytes), removing (None) or adding (before the
    image) members, `edit` changing the manifest's data; the manifest's checksums and seal made valid
    again, as anyone can (the seal is against damage, not forgery). A signature is kept as it was."""
    import hashlib
    import json
    import tarfile

    from gpuenv.bundle.format import IMAGE, MANIFEST, SEAL, SIGNATURE
    from gpuenv.bundle.manifest import seal

    changes = dict(members or {})
    with tarfile.open(src) as tar:
        items = {m.name: (tar.extractfile(m).read(), m.mode) for m in tar.getmembers()}
    body = [(n, changes.pop(n, d), mode) for n, (d, mode) in items.items() if n not in (MANIFEST, SEAL, SIGNATURE)]
    at = [n for n, _, _ in body].index(IMAGE)
    body[at:at] = [(n, d, 0o644) for n, d in changes.items()]
    body = [(n, d, mode) for n, d, mode in body if d is not None]
    data = json.loads(items[MANIFEST][0])
    data["members"] = [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d, _ in body]
    edit(data)
    manifest = json.dumps(data).encode()
    tail = [(MANIFEST, manifest, 0o644), (SEAL, seal(manifest), 0o644)]
    if keep_signature and SIGNATURE in items:
        tail.append((SIGNATURE, items[SIGNATURE][0], 0o644))
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, content, mode in body + tail:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    return out


def image_archive(tags: list[str], user: str, marker: str, extra: Optional[dict[str, bytes]] = None) -> tuple[bytes, str]:
    """A `docker save` archive made by hand (no engine): one image of one layer holding a file with
    `marker` (so each call's image ID is its own), carrying `tags` in manifest.json and repositories as
    docker save writes them, members in name order. Returns (archive, image ID)."""
    import hashlib
    import json

    layer = _tar({"gpuenv-marker.txt": marker.encode()})
    diff = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"User": user, "Env": ["HOME=/home/gpuenv"], "Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]},
                         "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "gpuenv test"}]},
                        sort_keys=True).encode()
    image = hashlib.sha256(config).hexdigest()
    repositories: dict[str, dict[str, str]] = {}
    for tag in tags:
        repo, _, version = tag.rpartition(":")
        repositories.setdefault(repo, {})[version] = diff
    members = {f"{diff}/VERSION": b"1.0", f"{diff}/layer.tar": layer, f"{image}.json": config,
               "manifest.json": json.dumps([{"Config": f"{image}.json", "RepoTags": tags,
                                             "Layers": [f"{diff}/layer.tar"]}]).encode(),
               "repositories": json.dumps(repositories).encode(), **(extra or {})}
    return _tar(dict(sorted(members.items())), folders=[diff]), f"sha256:{image}"


def _tar(files: dict[str, bytes], folders: Optional[list[str]] = None) -> bytes:
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in folders or []:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def handmade_bundle(folder: Path, name: str, archive: bytes, image_id: str, bases: tuple[tuple[str, str], ...],
                    uid: int, gid: int, sign: Optional[Callable[[bytes], bytes]] = None) -> Path:
    """A bundle in save's exact layout around a hand-made image archive, for UID/GID uid:gid: what an
    attacker can write (valid checksums, valid seal)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "gpuenv.toml"
    spec.write_text(f'name = "{name}"\n\n[gpu]\ndevices = "none"\n')
    tag = content_tag(name, uid, gid, [(p, d.decode(), m) for p, d, m in CONTEXT])
    info = {"Id": image_id, "Size": len(archive), "Config": {"User": f"{uid}:{gid}", "Labels": {}}}
    source = Source(name, tag, info, spec, folder, False, bases, ())
    path = folder / f"{name}.gpuenv"
    with open(path, "wb") as f:
        write_members(f, source, CONTEXT, lambda w: compress(w, io.BytesIO(archive)), sign)
    return path
