"""gpuenv's version, read from the installed package's metadata (importlib.metadata: ~10 ms to load, so
gpuenv/__init__.py loads this module only when `gpuenv.__version__` is first asked for)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpuenv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
