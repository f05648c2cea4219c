#!/bin/sh
# Written by gpuenv: arranges NVIDIA's CUDA pip packages (nvidia-cuda-nvcc, -runtime, -cccl, the libraries
# the framework brought) as one CUDA toolkit folder, the layout torch.utils.cpp_extension, CMake's CUDA
# language and FindCUDAToolkit, and plain nvcc expect of CUDA_HOME:
#   bin/      nvcc, ptxas, fatbinary, nvlink, cudafe++ ... (nvcc itself hardlinked or copied, not a symlink:
#             it finds its nvcc.profile, include/ and nvvm/ next to its own path)
#   include/  every package's headers, merged
#   lib64/    every package's libraries, merged, with the unversioned names a linker asks for
#             (libcudart.so -> libcudart.so.13); lib -> lib64
#   nvvm/     cicc and libdevice
# Everything else is a symbolic link into site-packages, so CUDA is shipped once.
#   usage: cuda-home.sh PYTHON [FOLDER]       FOLDER defaults to /usr/local/cuda
# Works for both layouts NVIDIA has published: one folder per component (nvidia/cuda_nvcc,
# nvidia/cuda_runtime, ... up to CUDA 12) and one merged folder per major (nvidia/cu13, CUDA 13 on).
set -eu
python="$1"
home="${2:-/usr/local/cuda}"

roots="$("$python" -c 'import nvidia, sys; sys.stdout.write("\n".join(sorted(set(nvidia.__path__))))')" || {
    echo "cuda-home.sh: $python has no NVIDIA CUDA pip packages (import nvidia failed)" >&2; exit 1; }

mkdir -p "$home/bin" "$home/include" "$home/lib64" "$home/nvvm"
[ -e "$home/lib" ] || ln -s lib64 "$home/lib"

# link SRC/* into DEST/, recursing into folders that both have; the first one found wins
merge() {
    src="$1"; dest="$2"
    [ -d "$src" ] || return 0
    for entry in "$src"/* "$src"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name="$(basename "$entry")"
        case "$name" in __pycache__|__init__.py) continue ;; esac
        if [ -d "$entry" ] && [ ! -L "$entry" ]; then
            if [ -L "$dest/$name" ] || [ ! -e "$dest/$name" ]; then
                [ -L "$dest/$name" ] && continue
                mkdir -p "$dest/$name"
            fi
            if [ -d "$dest/$name" ]; then (merge "$entry" "$dest/$name"); fi    # a subshell: sh has no locals
        elif [ ! -e "$dest/$name" ] && [ ! -L "$dest/$name" ]; then
            ln -s "$entry" "$dest/$name"
        fi
    done
}

echo "$roots" | while IFS= read -r root; do
    [ -n "$root" ] || continue
    for package in "$root"/*/; do
        package="${package%/}"
        merge "$package/bin" "$home/bin"
        merge "$package/include" "$home/include"
        merge "$package/lib" "$home/lib64"
        merge "$package/lib64" "$home/lib64"
        merge "$package/nvvm" "$home/nvvm"
    done
done

# nvcc reads nvcc.profile from the folder of its own path (after symlinks are resolved): a real file here,
# with the profile copied next to it, makes $home its TOP, so that include/ and nvvm/ are these merged ones.
if [ -L "$home/bin/nvcc" ]; then
    real="$(readlink -f "$home/bin/nvcc")"
    rm "$home/bin/nvcc"
    ln "$real" "$home/bin/nvcc" 2>/dev/null || cp "$real" "$home/bin/nvcc"
    if [ -L "$home/bin/nvcc.profile" ]; then
        profile="$(readlink -f "$home/bin/nvcc.profile")"
        rm "$home/bin/nvcc.profile"
        cp "$profile" "$home/bin/nvcc.profile"
    fi
fi
[ -x "$home/bin/nvcc" ] || { echo "cuda-home.sh: no nvcc among $python's NVIDIA packages" >&2; exit 1; }

# the unversioned names the linker looks for (-lcudart): libX.so -> libX.so.N where only the latter exists
for lib in "$home"/lib64/lib*.so.*; do
    [ -e "$lib" ] || continue
    name="$(basename "$lib")"
    plain="${name%%.so.*}.so"
    [ -e "$home/lib64/$plain" ] || [ -L "$home/lib64/$plain" ] || ln -s "$name" "$home/lib64/$plain"
done
# a program linked against the CUDA runtime finds it at run time too
if [ -d /etc/ld.so.conf.d ]; then
    echo "$home/lib64" > /etc/ld.so.conf.d/000-gpuenv-cuda-home.conf
    ldconfig 2>/dev/null || true
fi
"$home/bin/nvcc" --version | tail -n 2
