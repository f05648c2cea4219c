"""Offline bundles: one file that carries an environment to a server with no registry and no network.

    format.py     the file's layout: a plain tar (`tar tvf` lists it), members in a fixed order, the
                  manifest last; writing and reading its members as streams, never whole in memory
    manifest.py   the manifest: every member's size and sha256, the image, the UID/GID it was built for,
                  and the host requirements read from the image's io.gpuenv.* labels
    write.py      `gpuenv save`: docker save -> zstd (multi-threaded) -> the bundle, under a temporary name
                  in the target folder, renamed only when complete
    verify.py     a streaming pass over the whole file: every checksum, before anything reaches the engine
    names.py      every name and path a bundle carries, checked: a seal proves the file whole, not honest
    signature.py  who made it: an SSH signature of the manifest (ssh-keygen -Y), checked against the
                  allowed signers the user trusts
    fits.py       this host's driver and GPUs against the bundle's requirements (pure)
    read.py       `gpuenv load`: decompress -> docker load, the image ID checked, tagged, the spec written
    imagetar.py   the image archive on its way to docker load: its own tags removed, its images checked
    tags.py       the tags a load places (only where that moves nothing), and what a failed load undoes
"""
