"""Private registries: `gpuenv push` and `gpuenv pull`.

    ref.py        REF (host[:port]/repo[:tag][@sha256:...]) parsed and checked; BadInput with an example
    login.py      credentials: the engine's own `docker login`, or a user and password given for one
                  command through a temporary DOCKER_CONFIG folder (0700) that is removed afterwards
    failures.py   a failed `docker push` / `docker pull` as a GpuenvError that says what to do
    lockfile.py   gpuenv.lock's [image] table (through gpuenv.lock.lockfile): read it, add "REF@digest" to repo_digests
    transfer.py   push and pull: tag, push, the digest; pull, check the digest, tag the content tag

The docker CLI does the transfer (its proxies, contexts and TLS settings hold); a password is never on a
command line, in the environment of a child process, or in a file gpuenv leaves behind.
"""
