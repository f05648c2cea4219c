#!/bin/sh
# Starts sshd as this container's user: host keys are made once per environment (kept in the
# ssh-host-keys volume, never in the image), and the container's environment (PATH, library paths,
# NVIDIA_*) is handed to ssh sessions, which otherwise start with a bare one.
set -eu
keys=/home/gpuenv/.ssh-host
if [ ! -s /etc/gpuenv/authorized_keys ]; then
  echo "gpuenv: no public key at /etc/gpuenv/authorized_keys; compose mounts GPUENV_SSH_AUTHORIZED_KEY from .env" >&2
  exit 1
fi
mkdir -p "$keys" "$HOME/.ssh"
chmod 700 "$keys" "$HOME/.ssh"
[ -s "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$keys/ssh_host_ed25519_key"
env | grep -E '^(PATH|LD_LIBRARY_PATH|LANG|NVIDIA_[A-Z_]+|CUDA_[A-Z_]+|PIP_[A-Z_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' \
  > "$HOME/.ssh/environment" || true
exec /usr/sbin/sshd -D -e -f /etc/gpuenv/sshd_config
