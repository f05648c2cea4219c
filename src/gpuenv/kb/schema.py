"""The shape of every knowledge table: which arrays a table holds and the fields of their rows.

One place says what a row must carry; `tables.load_table` checks every row against it, so the
resolver can index rows without re-checking them. Every row also carries `source` (an https URL
it was read from) and `retrieved` (the date it was read), checked in `tables.py`; an optional
`note` says anything a reader of the row should know (a conflict between sources, an inference).

Types: "str", "bool", "int", "list[str]", "table[str]" (a table of string values, e.g. the GPU
architectures per CUDA variant); a trailing "?" marks an optional field.
Version values are strings written as the upstream tables write them ("8", "8.0", "5.1", "7").
"""

from __future__ import annotations

ROW = dict[str, str]

SCHEMAS: dict[str, dict[str, ROW]] = {
    "frameworks": {
        "framework": {"family": "str", "name": "str?", "pattern": "str?"},
        "misnomer": {"name": "str", "use": "str", "why": "str"},
    },
    # NVIDIA CUDA Toolkit release notes, Table 3 and Table 2; minor-version compatibility page.
    "cuda": {
        # one row per toolkit release in Table 3 (8.0 GA1 ... newest)
        "toolkit": {
            "version": "str",      # full toolkit version, "8.0.61", "12.4.1"
            "cuda": "str",         # major.minor, "8.0", "12.4"
            "release": "str",      # "GA1", "GA2", "Update 1", "GA" ... as Table 3 labels it
            "min_driver": "str",   # minimum Linux x86_64 driver, "375.26"
        },
        # minor-version compatibility floors: a driver >= min_driver runs every <major>.x (limited features)
        "minor_compat": {"major": "str", "min_driver": "str"},
    },
    # GPU architectures and models (NVIDIA "CUDA GPUs" list; CUDA release notes for support ranges)
    "gpus": {
        "arch": {
            "cc": "str",           # compute capability "3.7"
            "family": "str",       # "Kepler", ..., "Blackwell"
            "first_cuda": "str",   # first CUDA toolkit that can build for it, "6.5"
            "last_cuda": "str?",   # last toolkit that can build for it (absent: still supported)
        },
        "gpu": {
            "name": "str",         # model name as NVIDIA lists it, "Tesla K80", "GeForce RTX 3090", "H200"
            "cc": "str",
            "aliases": "list[str]?",  # other spellings seen in nvidia-smi / NVML ("NVIDIA H200")
        },
    },
    # docker.io/nvidia/cuda tags: one row per (tag version, OS, cuDNN) family of tags
    "cuda_images": {
        "image": {
            "cuda": "str",         # major.minor, "9.0"
            "version": "str",      # as written in the tag, "9.0", "11.8.0", "12.4.1"
            "toolkit": "str",      # toolkit version inside, to look up its minimum driver: "9.0.176"
            "os": "str",           # "ubuntu16.04", "ubuntu22.04", "ubi8", "rockylinux9"
            "cudnn": "str?",       # cuDNN version inside ("7.6.5", "9.1.0"); absent: no cuDNN
            "cudnn_token": "str?",  # tag token, "cudnn7", "cudnn8", "cudnn" (12.4.1 on); with cudnn
            "flavors": "list[str]",  # "base", "runtime", "devel"
            "status": "str",       # "available" | "eol" (scheduled for deletion) | "deleted"
        },
    },
    # tensorflow.org/install/source#gpu "Tested build configurations" (Linux GPU), and the pip packages
    "tensorflow": {
        "build": {
            "version": "str",      # the minor release the row covers, "1.2", "2.15"
            "python": "list[str]",  # tested Pythons, ["2.7", "3.3", "3.4", "3.5", "3.6"]
            "cuda": "str",         # as the table writes it, "8", "9", "11.2", "12.2"
            "cudnn": "str",        # "5.1", "6", "7", "8.1", "9.3"
        },
        # which pip package carries the GPU build, and where CUDA comes from, per version range
        "package": {
            "versions": "str",     # PEP 440 specifier, ">=1.0,<1.15"
            "project": "str",      # "tensorflow-gpu", "tensorflow"
            "extra": "str?",       # "and-cuda"
            "cuda_source": "str",  # "base-image" (system CUDA/cuDNN) | "wheels" (nvidia-* pip wheels)
        },
        # releases published as something that cannot be installed, and why (tensorflow-gpu 2.12.0)
        "withdrawn": {"project": "str", "versions": "str", "why": "str"},
        # official images docker.io/tensorflow/tensorflow:<version>-gpu[-py3]
        "image": {"versions": "str", "tag": "str", "python": "str"},
    },
    # pytorch.org previous versions, pytorch RELEASE.md compatibility matrix, vision/audio tables
    "pytorch": {
        "release": {
            "version": "str",      # "2.5.1"
            "cuda": "list[str]",   # CUDA variants of its official wheels, ["11.8", "12.1", "12.4"]
            "pypi_cuda": "str?",   # the variant PyPI serves (absent: PyPI has CPU-only / none)
            "python": "list[str]",  # ["3.9", ..., "3.13"]
            "torchvision": "str?",
            "torchaudio": "str?",
            "cudnn": "table[str]?",  # cuDNN bundled, per CUDA variant {"12.4" = "9.1"}
        },
        # GPU architectures a build carries (TORCH_CUDA_ARCH_LIST of the official builds)
        "archs": {
            "versions": "str",     # PEP 440 specifier over torch versions
            "cuda": "str",         # the CUDA variant
            "archs": "list[str]",  # ["sm_50", ..., "sm_90"] (PTX-only entries as "compute_90")
        },
    },
    # MXNet pip variants mxnet-cuXY[mkl]
    "mxnet": {
        "variant": {
            "package": "str",      # "mxnet-cu90mkl"
            "cuda": "str",         # "9.0"
            "mkl": "bool",
            "versions": "str",     # PEP 440 specifier of the releases published for it
        },
        "build": {
            "versions": "str",     # specifier over mxnet versions
            "cuda": "str",         # the variant's CUDA, "9.0"
            "toolkit": "str",      # CUDA toolkit it was built with, "9.0.176"
            "cudnn": "str",        # "7.6.0.64"
        },
        "python": {"versions": "str", "python": "list[str]"},
    },
    # JAX CUDA installs: the pip extra per version range
    "jax": {
        "variant": {
            "versions": "str",     # specifier over jax versions
            "extra": "str",        # "cuda12", "cuda12_pip", "cuda11_pip", "cuda13"
            "cuda": "str",         # "12", "11", "13" (the CUDA major the wheels carry or need)
            "cudnn": "str",        # minimum cuDNN, "8.9", "9.1"
            "min_driver": "str",
            "cuda_source": "str",  # "wheels" | "base-image"
            "python": "list[str]",
            "local_jaxlib": "bool?",  # the extra pins jaxlib==V+cudaXX.cudnnYY (JAX's release page, wheel_routes)
        },
    },
}
# Derived from the package index by `gpuenv kb refresh` (kb/refresh.py), shipped as a snapshot:
# every release of the framework projects with a Linux x86_64 (or pure) wheel.
SCHEMAS["pypi"] = {
    "release": {
        "project": "str",          # PEP 503 name, "tensorflow-gpu"
        "version": "str",
        "python": "list[str]",     # Pythons it has wheels for: "3.6"...; "py3" / "py2" for pure wheels
        "requires_python": "str?",
        "cuda": "str?",            # CUDA major.minor of the nvidia-* wheels it pins (torch >= 1.13)
        "cudnn": "str?",           # cuDNN of the nvidia-cudnn-* wheel it pins
        "extras": "list[str]?",    # Provides-Extra of its METADATA, PEP 685 names (jax, tensorflow)
        "sdist_only": "bool?",     # published as an sdist and no wheel (python is then empty)
    },
}


# Bases the resolver starts from when CUDA comes from wheels, and what Python each OS ships.
SCHEMAS["bases"] = {
    "python_image": {"python": "str", "image": "str", "os": "str"},  # docker.io/library/python slim tags
    "os_python": {"os": "str", "python": "str"},  # the python3 an OS release ships ("ubuntu16.04" -> "3.5")
    # the CPython release gpuenv builds when the base lacks the planned Python, and pip's last fit
    "python_release": {"python": "str", "version": "str", "pip_below": "str?"},
}

# How pip reaches a non-PyPI build of a framework (PyTorch's own wheel index), per version range.
SCHEMAS["wheel_routes"] = {
    "route": {
        "family": "str",        # "torch", "jax"
        "versions": "str",      # PEP 440 specifier over the framework's versions
        "kind": "str",          # "index-url" | "extra-index-url" | "find-links" | "wheel-url"
        "url": "str",           # template: {cu} = "cu118", {version}, {py} = "36" (wheel-url only)
        "local_version": "bool",  # pins carry "+cu118"
    },
}

# The Debian/Ubuntu releases gpuenv can build a base image of itself from an apt mirror (build/bootstrap.py).
SCHEMAS["os_releases"] = {
    "release": {
        "os": "str",               # as gpuenv writes it: "debian12", "ubuntu22.04"
        "family": "str",           # "debian" | "ubuntu"
        "codename": "str",         # the suite: "bookworm", "jammy"
        "version": "str",          # "12", "22.04"
        "mirror": "str",           # the archive that serves it by default, "http://deb.debian.org/debian"
        "security_mirror": "str",  # the archive of its security updates, "http://deb.debian.org/debian-security"
        "security_suite": "str",   # "bookworm-security", "buster/updates"
        "components": "list[str]",  # what the official image's sources enable: ["main"], Ubuntu's four
        "python": "str",           # the python3 it ships, "3.11"
        "deb822": "bool",          # sources in sources.list.d/<family>.sources (Debian 12+, Ubuntu 24.04+)
        "keyrings": "list[str]",   # keyring files that verify its archive on the building host
        "keyring_package": "str",  # the package that installs the first keyring
        "tools": "list[str]",      # bootstrappers that build it, best first: "mmdebstrap", "debootstrap"
        "archived": "bool",        # moved to archive.debian.org / old-releases.ubuntu.com
    },
}

# Region presets of mirrors (`[network] preset = "cn"`): kb/mirrors.py reads them.
SCHEMAS["mirrors"] = {
    "preset": {"name": "str", "description": "str"},
    "mirror": {
        "preset": "str",           # a [[preset]] name
        "setting": "str",          # the [network] key it fills: pip_index, apt_mirror, pytorch_wheels, registry_mirror
        "url": "str",              # "" = this preset deliberately sets none (`note` says why)
    },
}

# PaddlePaddle GPU builds (kb/data/paddle.toml): PyPI's paddlepaddle-gpu and the variants of Paddle's own index.
SCHEMAS["paddle"] = {
    "pypi": {
        "versions": "str",         # specifier over paddlepaddle-gpu versions on PyPI
        "post": "str?",            # the post-release tag that names the CUDA (1.x: "97", "107"); absent: none
        "cuda": "str",             # the CUDA the wheels were built with, "10.2", "11.8"
        "cudnn": "str",
    },
    "index": {
        "versions": "str",         # specifier over the release numbers (2.6.2, 3.2.0)
        "cuda": "str",
        "cudnn": "str",
        "suffix": "str",           # the post tag the version carries there ("post112"), "" for the plain release
        "cuda_source": "str",      # "base-image" | "wheels"
        "min_driver": "str?",      # the driver floor Paddle's docs state, when above the one CUDA implies
    },
    "route": {"versions": "str", "kind": "str", "url": "str"},   # kind: "find-links" | "extra-index-url"; {cu}
    "gpu": {"versions": "str", "min_cc": "str"},                  # lowest compute capability the docs name
}

# CuPy wheel packages (kb/data/cupy.toml).
SCHEMAS["cupy"] = {
    "package": {
        "project": "str",          # "cupy-cuda12x"
        "versions": "str",         # specifier over CuPy releases ("" for all)
        "cuda": "list[str]",       # the system CUDA releases it runs on, ["12.0", ..., "12.9"]
    },
    "ctk": {"project": "str", "versions": "str", "cuda": "str"},  # releases with the `ctk` extra; cuda: the major
    "extras": {"versions": "str", "extras": "list[str]"},         # every extra the wheels declare
}

# The host compilers nvcc accepts per CUDA minor, and the gcc each base OS release offers (issue 18:
# environments that compile CUDA code).
SCHEMAS["compilers"] = {
    "host_gcc": {
        "cuda": "str",             # CUDA major.minor, "12.4"
        "max_gcc": "str",          # the newest GCC major its nvcc accepts, "13"
        "nvcc": "list[str]",       # the nvcc (crt) wheel versions read, all of which agree
    },
    "os_gcc": {
        "os": "str",               # as os_releases.toml writes it, "ubuntu22.04"
        "default": "str",          # the GCC major its `gcc` package installs, "11"
        "available": "list[str]",  # every GCC major with gcc-N and g++-N in its archive, "9".."12"
    },
    "compiler_wheels": {
        "major": "str",            # CUDA major, "13"
        "packages": "list[str]",   # NVIDIA's pip packages of a compiler with headers and runtime
    },
}

# Packages that compile native code when installed from source or when first used (issue 18): what they
# need, when, and what their builds read. The evidence, per package: tests/fixtures/kb/compiled/FINDINGS.md.
SCHEMAS["compiled"] = {
    "package": {
        "name": "str",                 # PEP 503, as installed
        "versions": "str?",            # PEP 440 specifier where the behaviour changed across versions
        "compiles": "str",             # "install" | "first-use" | "never" (wheels for every current Python)
        "needs": "str",                # "nvcc" (CUDA compiler, headers, a host gcc nvcc accepts) | "cc"
        "build_isolation": "bool",     # false: its build imports torch: --no-build-isolation(-package)
        "downloads_prebuilt": "bool",  # its setup.py first fetches a prebuilt wheel from GitHub
        "download_off": "str?",        # the variable ("TRUE") that stops that and builds here
        "env": "list[str]",            # what its build reads
        "wheels_python": "list[str]?",  # compiles = "never": the CPythons its newest release has wheels for
        "pypi": "bool?",               # false: not on PyPI under this name (git, its own wheel index)
    },
}

# The PyTorch ecosystem's prebuilt wheels per torch minor and CUDA variant, and how pip reaches them
# (issue 18): tried before anything is compiled. Evidence: tests/fixtures/kb/companions/FINDINGS.md.
SCHEMAS["companions"] = {
    "route": {
        "family": "str",           # "pyg", "mmcv", "dgl", "flash-attn"
        "kind": "str",             # "find-links" (a page per torch minor + variant) | "release-page"
        "packages": "list[str]",   # the projects it serves, PEP 503 names
        "url": "str",              # template: {torch} "2.4", {cu} "cu121" | "cpu"; release-page: {version}
        "asset": "str?",           # release-page: one wheel's URL, as the project's setup.py names it
        "url_cpu": "str?",         # the CPU page, where its shape differs
        "local_version": "str",    # the label the versions carry: "+pt{torch_nodot}{cu}"; "" none
    },
    "wheel": {
        "family": "str",
        "packages": "table[str]",  # project -> version(s) that folder holds
        "torch": "str",            # torch minor, "2.4"
        "cuda": "str",             # "12.1" (variant), "12" (flash-attn's CUDA major), "cpu"
        "python": "list[str]",     # CPythons with a wheel; [] unknown
        "platform": "str",         # the wheels' platform tag
        "local_version": "str",
        "index": "str",            # the page (or release) that lists them
        "abi": "list[str]?",       # flash-attn: the cxx11abi values published
    },
    "torch_abi": {                 # torch._C._GLIBCXX_USE_CXX11_ABI of the pip builds; first match wins
        "torch": "str",            # a specifier on the torch minor: "<2.6", "==2.6", ">=2.7"
        "cuda": "list[str]?",      # the build's CUDA ("12.6"); absent: any
        "abi": "str",              # "TRUE" | "FALSE", as flash-attn's asset names write it
    },
}
