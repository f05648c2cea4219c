#!/bin/sh
# Builds CPython VERSION into /opt/python, for a base whose OS does not ship the planned Python, and
# lists in /opt/python/runtime-packages the OS packages its modules link against (they are installed
# in the final image; the compilers and headers stay in this build stage).
#   build-python.sh VERSION MIRROR      MIRROR: https://www.python.org/ftp/python or a copy of it
set -eu
version=$1 mirror=${2%/}
cd /tmp
curl -fsSL --retry 3 "$mirror/$version/Python-$version.tgz" -o python.tgz
tar -xzf python.tgz
cd "Python-$version"
./configure --prefix=/opt/python --with-ensurepip=install >/tmp/python-configure.log
make -j"$(nproc)" >/tmp/python-make.log
make install >/tmp/python-install.log
rm -rf /opt/python/lib/python*/test /opt/python/lib/python*/*/test
find /opt/python -name '__pycache__' -prune -exec rm -rf {} +
# The OS packages that hold the shared libraries the interpreter and its modules need.
find /opt/python -type f \( -name '*.so' -o -path '/opt/python/bin/python*' \) -exec ldd {} + 2>/dev/null \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true
    done | cut -d: -f1 | sort -u > /opt/python/runtime-packages
echo "gpuenv: Python $version built; it needs: $(tr '\n' ' ' < /opt/python/runtime-packages)"
