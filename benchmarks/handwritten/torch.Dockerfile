# examples/torch written by hand, the way blog articles and StackOverflow answers write it: one RUN per
# step, `apt-get update` in a layer of its own with its lists left in it, pip's download cache left in the
# layers (no --no-cache-dir), no cache mounts, pip resolving and downloading as it goes.
# benchmarks/torch_build.py builds it with --no-cache next to gpuenv's cold build, in the same run, and
# compares their times.
#
# Same as gpuenv's plan for the example here: the base gpuenv builds on this machine
# (gpuenv-base/debian:bookworm, since python:3.x-slim cannot be pulled), Python 3.11 from apt with the same
# packages (--no-install-recommends, as gpuenv does), pip brought up to date, then the same top-level
# requirements as gpuenv's two pip steps: the framework pinned to the version the plan chose (torch_build.py
# checks the pin against the plan and stops if they differ), then JupyterLab, unpinned, as articles write it.
#
# One thing the articles do not do: behind this host's TLS-inspecting proxy, pip needs the proxy's CA.
# It is given as a BuildKit secret (`--secret id=ca,...`), as gpuenv gives it, so that it never lands in a
# layer and the comparison is about everything else.
FROM gpuenv-base/debian:bookworm

ENV DEBIAN_FRONTEND=noninteractive

RUN apt-get update
RUN apt-get install -y --no-install-recommends ca-certificates python3 python3-pip
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED

RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install --upgrade pip
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install torch==2.15.0
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install jupyterlab

WORKDIR /workspace
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--allow-root", "--no-browser"]
