"""The user's request: the gpuenv.toml model, loading it, and building it from flags or a short request.

Decides no versions: what is absent or "auto" is resolved by later stages. The names below are
imported on first use (PEP 562), so that `gpuenv plan torch` never pays for building the model.
"""

from importlib import import_module
from typing import Any

_NAMES = {
    "SPEC_FILE": "gpuenv.spec.load", "load_spec": "gpuenv.spec.load", "parse_spec": "gpuenv.spec.load",
    "spec_path": "gpuenv.spec.load", "validate_spec": "gpuenv.spec.load", "EnvSpec": "gpuenv.spec.model",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'gpuenv.spec' has no attribute {name!r}")
