"""A bundle made from bytes, without an engine, in the exact layout `gpuenv save` writes."""

from __future__ import annotations

import io
from pathlib import Path

from gpuenv.bundle.write import Source, compress, content_tag, write_members

# stands in for a `docker save` stream: compressible, not random, spanning several chunks
IMAGE_BYTES = b"".join(b"layer %08d: /usr/lib/python3/dist-packages/x.so\n" % i for i in range(60_000))
CONTEXT = [("Dockerfile", b"FROM gpuenv-base/debian:bookworm\nUSER ${USER_UID}:${USER_GID}\n", 0o644),
           (".dockerignore", b"*\n!.gpuenv/\n", 0o644), (".gpuenv/start.sh", b"#!/bin/sh\nexec \"$@\"\n", 0o755)]
REQUIREMENTS = "einops==0.8.0\n"
LABELS = {"io.gpuenv.min-driver": "525.60.13", "io.gpuenv.cuda": "12.4", "io.gpuenv.cuda-source": "wheels",
          "io.gpuenv.gpu-archs": "sm_80,sm_90", "other.label": "kept out"}


def _tag(uid: int = 1000, gid: int = 1000) -> str:
    return content_tag("demo", uid, gid, [(p, d.decode(), m) for p, d, m in CONTEXT])


def make_bundle(folder: Path, lock: bool = True) -> Path:
    spec = folder / "src" / "gpuenv.toml"
    spec.parent.mkdir()
    spec.write_text('name = "demo"\nframeworks = ["torch"]\nrequirements = "deps/requirements.txt"\n')
    (spec.parent / "deps").mkdir()
    (spec.parent / "deps" / "requirements.txt").write_text(REQUIREMENTS)
    if lock:
        (spec.parent / "gpuenv.lock").write_text("version = 1\n")
    info = {"Id": "sha256:" + "ab" * 32, "Size": len(IMAGE_BYTES), "Config": {"User": "1000:1000", "Labels": LABELS}}
    source = Source("demo", _tag(), info, spec, spec.parent, True, (("gpuenv-base/debian:bookworm", "sha256:cd"),),
                    (("deps/requirements.txt", spec.parent / "deps" / "requirements.txt"),))
    path = folder / "demo.gpuenv"
    with open(path, "wb") as f:
        write_members(f, source, CONTEXT, lambda w: compress(w, io.BytesIO(IMAGE_BYTES)))
    return path
