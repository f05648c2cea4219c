#!/bin/sh
# Installs one pinned step with uv (bound in from the `uv` stage), during `docker build`:
#   sh uv-install.sh PYTHON UV-PIP-INSTALL-ARGUMENTS...   (they name the step's file with -r)
# Where the wheels come from, and where they are unpacked:
# - When an earlier build kept this exact step's wheels in BuildKit's cache mount (/root/.cache/uv),
#   uv takes them from there and copies them into the image (the mount is another file system).
# - Otherwise uv downloads them into a cache on the image's own file system and hardlinks them into
#   site-packages, so each file is written once; the cache is removed at the end of the step and holds no
#   layer. When that download was slow (under 100 MB of unpacked files a second), the wheels are also
#   kept in the cache mount, so that a rebuild of this step (after an apt or Python change) need not
#   download them again. On a fast link keeping them would cost more than downloading them again.
#   --build-arg GPUENV_KEEP_WHEELS=always keeps them whatever the speed, =never never does.
set -eu
uv=/opt/uv/bin/uv
kept=/root/.cache/uv
mode="${GPUENV_KEEP_WHEELS:-auto}"
case "$mode" in
  auto|always|never) ;;
  *) echo "gpuenv: GPUENV_KEEP_WHEELS is auto, always or never, not '$mode'" >&2; exit 2 ;;
esac
python="$1"
shift
key=""
previous=""
for word in "$@"; do
  if [ "$previous" = "-r" ]; then key="$key$(sha256sum < "$word" | cut -c1-64)"; fi
  previous="$word"
done
marker="$kept/gpuenv-kept/$(printf '%s' "$key" | sha256sum | cut -c1-64)"
if [ -n "$key" ] && [ -e "$marker" ]; then
  echo "gpuenv: this step's wheels from the cache mount (kept by an earlier build)"
  UV_CACHE_DIR="$kept" UV_LINK_MODE=copy "$uv" pip install --python "$python" "$@"
  exit 0
fi
here="$(mktemp -d /tmp/gpuenv-uv.XXXXXX)"
trap 'rm -rf "$here"' EXIT
start="$(date +%s)"
UV_CACHE_DIR="$here" UV_LINK_MODE=hardlink "$uv" pip install --python "$python" "$@"
took=$(( $(date +%s) - start ))
megabytes="$(du -sm "$here" | cut -f1)"
keep="$mode"
if [ "$mode" = auto ]; then
  keep=never
  if [ "$took" -gt 1 ] && [ $(( megabytes / took )) -lt 100 ]; then keep=always; fi
fi
if [ "$keep" = always ] && [ -n "$key" ]; then
  echo "gpuenv: $megabytes MB in ${took}s: keeping them in the cache mount for the next build of this step"
  mkdir -p "$kept/gpuenv-kept"
  cp -a "$here/." "$kept/"
  : > "$marker"
fi
