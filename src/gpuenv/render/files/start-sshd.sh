#!/bin/sh
# Starts sshd as this container's user: host keys are made once per environment (kept in the
# ssh-host-keys volume, never in the image), and the container's environment (PATH, library paths,
# NVIDIA_*) is handed to ssh sessions, which otherwise start with a bare one.
# When that user is root (a host user who is root), sshd needs its privilege-separation folder, and
# the login name `gpuenv` is made a name of root, so that `ssh gpuenv@...` is the same everywhere.
set -eu
keys=/home/gpuenv/.ssh-host
if [ ! -s /etc/gpuenv/authorized_keys ]; then
  echo "gpuenv: no public key at /etc/gpuenv/authorized_keys; compose mounts GPUENV_SSH_AUTHORIZED_KEY from .env" >&2
  exit 1
fi
as_root=""
if [ "$(id -u)" = 0 ]; then
  mkdir -p /run/sshd && chmod 755 /run/sshd
  getent passwd gpuenv >/dev/null || echo "gpuenv:x:0:0:gpuenv (root):/home/gpuenv:/bin/bash" >> /etc/passwd
  as_root="-o PermitRootLogin=prohibit-password"
fi
for path in "$keys" "$keys/ssh_host_ed25519_key"; do
  if [ -z "$as_root" ] && [ -e "$path" ] && [ "$(stat -c %u "$path")" != "$(id -u)" ]; then
    echo "gpuenv: $path belongs to UID $(stat -c %u "$path"), not to this container's user $(id -u) (the environment's user changed); gpuenv up gives the volume back to its user, or remove it: docker volume rm it" >&2
    exit 1
  fi
done
mkdir -p "$keys" "$HOME/.ssh"
chmod 700 "$keys" "$HOME/.ssh"
[ -s "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$keys/ssh_host_ed25519_key"
env | grep -E '^(PATH|LD_LIBRARY_PATH|LANG|NVIDIA_[A-Z_]+|CUDA_[A-Z_]+|PIP_[A-Z_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' \
  > "$HOME/.ssh/environment" || true
# shellcheck disable=SC2086   # as_root is empty or one option and its value
exec /usr/sbin/sshd -D -e -f /etc/gpuenv/sshd_config $as_root
