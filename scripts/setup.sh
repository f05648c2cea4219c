# Set-up steps shared by scripts/test and scripts/demo. Source it; each step is idempotent and
# works on a fresh Debian/Ubuntu machine as root or through sudo, and where Docker already runs.
#   ensure_venv          .venv with gpuenv and its test extras
#   ensure_engine        a Docker engine that answers (installs docker.io, starts dockerd)
#   ensure_base_images   local base images the tests build FROM (no registry is reachable)
#   ensure_registry      a local registry on 127.0.0.1:5000 without auth
#   ensure_auth_registry a second local registry on 127.0.0.1:5001 with basic auth (htpasswd)
#   ensure_tools         tools the tests run: docker-compose (compose v1, Debian's 1.29.2), chromium (browser tests),
#                        and for the cluster tests skopeo, umoci, runc, slurm-wlm and munge (ensure_cluster_tools)
#   ensure_bootstrapper  mmdebstrap, for the base gpuenv builds when no registry has it
#   ensure_npm_packages DIR PKG...  npm packages installed into DIR (git-ignored), once per package list
#   ensure_hydrogen_client          Hydrogen's client library (tests/integration/clients/hydrogen.js runs it)
#   ensure_node_clients PKG...    real clients the tests drive (the Dev Containers CLI), into .node/

GPUENV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${GPUENV_STATE_DIR:-/var/lib/gpuenv-test}
DEBIAN_MIRROR=${GPUENV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_CLIENTS="$GPUENV_ROOT/.node"      # npm packages the tests drive; git-ignored
TEST_BASE_IMAGE=${GPUENV_TEST_BASE_IMAGE:-gpuenv-test/debian:bookworm}
TEST_REGISTRY=${GPUENV_TEST_REGISTRY:-127.0.0.1:5000}
AUTH_REGISTRY=${GPUENV_TEST_AUTH_REGISTRY:-127.0.0.1:5001}
AUTH_REGISTRY_USER=gpuenv-test
AUTH_REGISTRY_DIR="$STATE_DIR/auth-registry"

if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo --preserve-env=http_proxy,https_proxy,no_proxy); fi

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf 'hint: %s\n' "$2" >&2; exit 1; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/tmp/gpuenv-apt.log 2>&1 \
      || die "apt-get update failed" "see /tmp/gpuenv-apt.log"
    apt_updated=1
  fi
  say "installing $* (Debian packages)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    >>/tmp/gpuenv-apt.log 2>&1 || die "could not install $*" "see /tmp/gpuenv-apt.log"
}

ensure_venv() {
  local venv="$GPUENV_ROOT/.venv"
  if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "gpuenv needs Python >= 3.9"
    say "creating the virtual environment $venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
  fi
  say "installing gpuenv into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$GPUENV_ROOT[test]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$venv/bin/gpuenv" --version >/dev/null || die "gpuenv did not install into $venv"
}

# The docker client the tests use: one that can build with BuildKit. The 20.10 client from Debian
# does so with DOCKER_BUILDKIT=1; a newer client needs the buildx plugin.
docker_client() {
  if [ -n "${GPUENV_DOCKER:-}" ]; then echo "$GPUENV_DOCKER"; return; fi
  if docker buildx version >/dev/null 2>&1; then command -v docker; return; fi
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; return; fi
  command -v docker || echo docker
}

engine_answers() { "${SUDO[@]}" "$(docker_client)" info >/dev/null 2>&1; }

ensure_engine() {
  command -v ip >/dev/null || apt_install iproute2   # the tests give a second engine its own bridge
  engine_answers || start_engine
  "$(docker_client)" info >/dev/null 2>&1 || die "the Docker engine runs, but $(id -un) may not use it" \
    "sudo usermod -aG docker $(id -un), then log in again (or run as root)"
  say "Docker engine is running"
}

start_engine() {
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || apt_install docker.io
  if [ -d /run/systemd/system ] && "${SUDO[@]}" systemctl start docker 2>/dev/null; then
    say "started docker.service"
  else
    say "starting dockerd (log: /var/log/gpuenv-dockerd.log)"
    local group=(); [ "$(id -u)" = 0 ] || group=(--group "$(id -gn)")
    "${SUDO[@]}" sh -c "setsid dockerd ${group[*]} >/var/log/gpuenv-dockerd.log 2>&1 </dev/null &"
  fi
  for _ in $(seq 60); do engine_answers && return; sleep 1; done
  die "the Docker engine did not answer within 60 s" "see /var/log/gpuenv-dockerd.log"
}

# docker-compose (compose v1) checks the generated compose files with `config`; hadolint comes with the test extras.
ensure_tools() {
  command -v docker-compose >/dev/null || apt_install docker-compose
  docker-compose version >/dev/null 2>&1 || die "docker-compose is installed but does not run" "see /tmp/gpuenv-apt.log"
  [ -x /usr/bin/chromium ] || apt_install chromium   # Playwright drives it: its own browser download fails here
  { [ -x /usr/sbin/sshd ] && command -v nc >/dev/null; } || install_without_starting openssh-server netcat-openbsd
  ensure_cluster_tools
}

# Cluster tests (tests/integration/test_cluster.py): skopeo and umoci for `gpuenv export`, runc, and a
# Slurm of one node with munge, which the tests start by hand on 127.0.0.1 (no service is started here).
ensure_cluster_tools() {
  local missing=()
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v umoci >/dev/null || missing+=(umoci)
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || missing+=(slurm-wlm)
  command -v munged >/dev/null || [ -x /usr/sbin/munged ] || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] || install_without_starting "${missing[@]}"
}

# install_without_starting PKG...: Debian packages whose services must not start here (openssh-server
# would start an sshd on the host's port 22; the remote-engine test runs its own in a namespace).
install_without_starting() {
  local policy=/usr/sbin/policy-rc.d saved=""
  if [ -e "$policy" ]; then saved=$(mktemp); "${SUDO[@]}" cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null && "${SUDO[@]}" chmod 755 "$policy"
  apt_install "$@"
  if [ -n "$saved" ]; then "${SUDO[@]}" cp -p "$saved" "$policy"; rm -f "$saved"; else "${SUDO[@]}" rm -f "$policy"; fi
}

ensure_base_images() {
  local docker; docker=$(docker_client)
  if "${SUDO[@]}" "$docker" image inspect "$TEST_BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $TEST_BASE_IMAGE is there"; return
  fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  local root; root=$(mktemp -d /tmp/gpuenv-rootfs.XXXXXX)
  say "building $TEST_BASE_IMAGE with debootstrap from $DEBIAN_MIRROR"
  "${SUDO[@]}" debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >/tmp/gpuenv-debootstrap.log 2>&1 \
    || { "${SUDO[@]}" rm -rf "$root"; die "debootstrap failed" "see /tmp/gpuenv-debootstrap.log"; }
  "${SUDO[@]}" tar -C "$root" -c . | "${SUDO[@]}" "$docker" import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$TEST_BASE_IMAGE" >/dev/null
  "${SUDO[@]}" rm -rf "$root"
}

# registry_answers [HOST:PORT [STATUS]]: the registry's /v2/ answers with STATUS (200; 401 when it needs a login)
registry_answers() {
  python3 - "${1:-$TEST_REGISTRY}" "${2:-200}" <<'PY'
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    status = opener.open(f"http://{sys.argv[1]}/v2/", timeout=2).status
except urllib.error.HTTPError as error:
    status = error.code
except Exception:
    sys.exit(1)
sys.exit(status != int(sys.argv[2]))
PY
}

ensure_registry() {
  registry_answers && { say "registry on $TEST_REGISTRY answers"; return; }
  command -v docker-registry >/dev/null || apt_install docker-registry
  "${SUDO[@]}" mkdir -p "$STATE_DIR/registry"
  "${SUDO[@]}" tee "$STATE_DIR/registry.yml" >/dev/null <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $TEST_REGISTRY
YML
  say "starting a registry on $TEST_REGISTRY (log: $STATE_DIR/registry.log)"
  "${SUDO[@]}" sh -c "setsid docker-registry serve '$STATE_DIR/registry.yml' >'$STATE_DIR/registry.log' 2>&1 </dev/null &"
  for _ in $(seq 30); do registry_answers && return; sleep 0.5; done
  die "the registry did not answer on $TEST_REGISTRY" "is the port taken? see $STATE_DIR/registry.log"
}

# A registry that needs a login (the push/pull tests prove right, wrong and missing passwords): user
# gpuenv-test, a random password made once into $AUTH_REGISTRY_DIR/password (mode 600, owned by the user
# who runs the tests; never in the repository), bcrypt in its htpasswd file.
ensure_auth_registry() {
  registry_answers "$AUTH_REGISTRY" 401 && { say "registry with basic auth on $AUTH_REGISTRY answers"; return; }
  command -v docker-registry >/dev/null || apt_install docker-registry
  command -v htpasswd >/dev/null || apt_install apache2-utils
  local dir=$AUTH_REGISTRY_DIR
  "${SUDO[@]}" mkdir -p "$dir/data" && "${SUDO[@]}" chmod 700 "$dir"
  if ! "${SUDO[@]}" test -s "$dir/password"; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(24))' | "${SUDO[@]}" sh -c "umask 077; cat > '$dir/password'"
    "${SUDO[@]}" sh -c "htpasswd -iBc '$dir/htpasswd' $AUTH_REGISTRY_USER < '$dir/password'" 2>/dev/null \
      || die "htpasswd could not write $dir/htpasswd"
  fi
  "${SUDO[@]}" chown "$(id -u):$(id -g)" "$dir/password"
  "${SUDO[@]}" tee "$dir/registry.yml" >/dev/null <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $AUTH_REGISTRY
auth:
  htpasswd:
    realm: gpuenv-test
    path: $dir/htpasswd
YML
  say "starting a registry with basic auth on $AUTH_REGISTRY (log: $dir/registry.log)"
  "${SUDO[@]}" sh -c "setsid docker-registry serve '$dir/registry.yml' >'$dir/registry.log' 2>&1 </dev/null &"
  for _ in $(seq 30); do registry_answers "$AUTH_REGISTRY" 401 && return; sleep 0.5; done
  die "the registry did not answer on $AUTH_REGISTRY" "is the port taken? see $dir/registry.log"
}

# gpuenv builds a base image itself from the apt mirror when no registry has the planned one (Docker
# Hub is unreachable here): mmdebstrap, or debootstrap (the only one that makes Ubuntu 16.04); the tests
# build with both.
ensure_bootstrapper() {
  local missing=()
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# npm packages a test drives (real clients), in a folder of their own: `ensure_npm_packages DIR PKG...`
# installs exactly PKG... there; the list it installed is kept in DIR/.packages, so a second call with
# the same list does nothing and another list installs afresh.
ensure_npm_packages() {
  local dir=$1; shift
  local want; want=$(printf '%s\n' "$@")
  if [ -d "$dir/node_modules" ] && [ "$(cat "$dir/.packages" 2>/dev/null)" = "$want" ]; then
    say "npm packages in $dir are there"; return
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing $* (npm) into $dir"
  rm -rf "$dir" && mkdir -p "$dir" && printf '{"private": true}\n' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --no-save "$@" >/tmp/gpuenv-npm.log 2>&1) \
    || die "npm could not install $*" "see /tmp/gpuenv-npm.log"
  printf '%s\n' "$want" > "$dir/.packages"
}

# Atom Hydrogen's remote-kernel client: the @jupyterlab/services it pins (^0.52.0 in nteract/hydrogen
# 2.16's package.json, 0.52.0 in its lock file), over ws and xmlhttprequest as Hydrogen has them.
HYDROGEN_CLIENT_DIR="$GPUENV_ROOT/.cache/npm/hydrogen"
ensure_hydrogen_client() {
  ensure_npm_packages "$HYDROGEN_CLIENT_DIR" @jupyterlab/services@0.52.0 ws@7 xmlhttprequest@1.8.0
}

# ensure_node_clients PACKAGE...: the real clients users run, from npm, in $NODE_CLIENTS (git-ignored).
ensure_node_clients() {
  ensure_npm_packages "$NODE_CLIENTS" "$@"
}
