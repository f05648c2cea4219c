# examples/jax-cpu written by hand, the way blog articles and StackOverflow answers write it: one RUN per
# step, `apt-get update` in a layer of its own with its lists left in it, pip's download cache left in the
# layers (no --no-cache-dir), no cache mounts. benchmarks/run_env.py image-size builds it next to gpuenv's
# image, in the same run, to compare their sizes.
#
# Same as gpuenv's plan for the example: the base gpuenv builds here (gpuenv-base/debian:bookworm),
# python3 from apt with the same packages (--no-install-recommends, as gpuenv does: with recommends,
# python3-pip would bring a compiler and make this image far bigger), pip brought up to date, the same
# pins in the same order (run_env.py checks them against gpuenv's generated Dockerfile).
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
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install jax==0.10.2
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install jupyterlab
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip3 install matplotlib

WORKDIR /workspace
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--allow-root", "--no-browser"]
