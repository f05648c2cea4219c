"""Offline bundles: one file that carries an environment to a server with no registry and no network.

    format.py     the file's layout: a plain tar (`tar tvf` lists it), members in a fixed order, the
                  manifest last; writing and reading its members as streams, never whole in memory
    manifest.py   the manifest: every member's size and sha256, the image, the UID/GID it was built for,
                  and the host requirements read from the image's io.gpuenv.* labels
    write.py      `gpuenv save`: docker save -> zstd (multi-threaded) -> the bundle, under a temporary name
                  in the target folder, renamed only when complete
    verify.py     a streaming pass over the whole file: every checksum, before anything reaches the engine
    fits.py       this host's driver and GPUs against the bundle's requirements (pure)
    read.py       `gpuenv load`: decompress -> docker load, the image ID checked, tagged, the spec written
"""
