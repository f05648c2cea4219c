"""gpuenv: one short request to a working, verified GPU container for deep learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpuenv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
