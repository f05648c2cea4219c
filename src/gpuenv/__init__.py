"""gpuenv: one short request to a working, verified GPU container for deep learning."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__` is read from the installed metadata on first use (importlib.metadata is slow to load)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("gpuenv")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'gpuenv' has no attribute {name!r}")
