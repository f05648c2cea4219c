#!/bin/sh
# Written by `gpuenv generate`. Builds the image compose.yaml and devcontainer.json start, when this
# engine does not have it yet, as `gpuenv build` does but without gpuenv: BuildKit, your UID/GID from
# .env, and as build secrets (never in a layer) the CA bundle .env names (GPUENV_CA_BUNDLE: a
# TLS-inspecting proxy's CA) and ~/.netrc. Compose cannot pass build secrets, so behind such a proxy run
# it before `docker compose up`; the Dev Containers CLI runs it first (initializeCommand). Proxies of
# the calling shell go to the build.
set -eu
cd "$(dirname "$0")/.."
setting() { sed -n "s/^$1=//p" .env | tail -n 1; }
image=$(setting GPUENV_IMAGE)
if [ -z "$image" ]; then
  echo "gpuenv: no GPUENV_IMAGE in $(pwd)/.env; run gpuenv generate" >&2
  exit 1
fi
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
set -- --build-arg "USER_UID=$(setting GPUENV_UID)" --build-arg "USER_GID=$(setting GPUENV_GID)" --tag "$image"
ca=$(setting GPUENV_CA_BUNDLE)
if [ -n "$ca" ] && [ -r "$ca" ]; then
  set -- "$@" --secret "id=ca,src=$ca"
fi
if [ -n "${HOME:-}" ] && [ -r "$HOME/.netrc" ]; then
  set -- "$@" --secret "id=netrc,src=$HOME/.netrc"
fi
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "$(printenv "$name" || true)" ]; then
    set -- "$@" --build-arg "$name"
  fi
done
echo "gpuenv: building $image (once; compose and the Dev Containers CLI then start it)" >&2
if docker buildx version >/dev/null 2>&1; then
  exec docker buildx build --load "$@" .
fi
DOCKER_BUILDKIT=1 exec docker build "$@" .
