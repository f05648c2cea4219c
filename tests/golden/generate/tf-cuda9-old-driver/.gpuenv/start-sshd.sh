#!/bin/sh
# Starts sshd as this container's user: host keys are made once per environment (kept in the
# ssh-host-keys volume, never in the image), and the container's environment (PATH, library paths,
# NVIDIA_*) is handed to ssh sessions, which otherwise start with a bare one.
# When that user is root (a host user who is root), sshd needs its privilege-separation folder, and
# the login name `gpuenv` is made a name of root, so that `ssh gpuenv@...` is the same everywhere.
# When the mounted public key belongs to another user (workspace.user is not the host user's UID),
# sshd's StrictModes would refuse it: a copy of this user's is used.
set -eu
keys=/var/lib/gpuenv/ssh-host
given=/etc/gpuenv/authorized_keys
if [ ! -s "$given" ]; then
  echo "gpuenv: no public key at $given; compose mounts GPUENV_SSH_AUTHORIZED_KEY from .env" >&2
  exit 1
fi
me="$(id -u)"
set -- -D -e -f /etc/gpuenv/sshd_config
if [ "$me" = 0 ]; then
  mkdir -p /run/sshd && chmod 755 /run/sshd
  getent passwd gpuenv >/dev/null || echo "gpuenv:x:0:0:gpuenv (root):/home/gpuenv:/bin/bash" >> /etc/passwd
  set -- "$@" -o PermitRootLogin=prohibit-password
else
  for path in "$keys" "$keys/ssh_host_ed25519_key"; do
    if [ -e "$path" ] && [ "$(stat -c %u "$path")" != "$me" ]; then
      echo "gpuenv: $path belongs to UID $(stat -c %u "$path"), not to this container's user $me (the environment's user changed); gpuenv up gives the volume back to its user, or remove the volume" >&2
      exit 1
    fi
  done
fi
mkdir -p "$keys" "$HOME/.ssh"
chmod 700 "$keys" "$HOME/.ssh"
if [ "$(stat -c %u "$given")" != "$me" ] && [ "$(stat -c %u "$given")" != 0 ]; then
  cp "$given" "$keys/authorized_keys" && chmod 600 "$keys/authorized_keys"
  set -- "$@" -o "AuthorizedKeysFile=$keys/authorized_keys .ssh/authorized_keys"
fi
[ -s "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$keys/ssh_host_ed25519_key"
env | grep -E '^(PATH|LD_LIBRARY_PATH|LANG|NVIDIA_[A-Z_]+|CUDA_[A-Z_]+|PIP_[A-Z_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' \
  > "$HOME/.ssh/environment" || true
exec /usr/sbin/sshd "$@"
