"""The user's request: the gpuenv.toml model, loading it, and building it from flags or a short request.

Decides no versions: what is absent or "auto" is resolved by later stages. The names below are
imported on first use (gpuenv/lazy.py), so that `gpuenv plan torch` never pays for building the model;
the type checker sees them as imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.spec.load import SPEC_FILE as SPEC_FILE
    from gpuenv.spec.load import load_spec as load_spec
    from gpuenv.spec.load import parse_spec as parse_spec
    from gpuenv.spec.load import spec_path as spec_path
    from gpuenv.spec.load import validate_spec as validate_spec
    from gpuenv.spec.model import EnvSpec as EnvSpec
    from gpuenv.spec.requirements import read_requirements as read_requirements
    from gpuenv.spec.write import spec_hash as spec_hash

_NAMES = {
    "SPEC_FILE": "gpuenv.spec.load:SPEC_FILE", "load_spec": "gpuenv.spec.load:load_spec",
    "parse_spec": "gpuenv.spec.load:parse_spec", "spec_path": "gpuenv.spec.load:spec_path",
    "validate_spec": "gpuenv.spec.load:validate_spec", "EnvSpec": "gpuenv.spec.model:EnvSpec",
    "read_requirements": "gpuenv.spec.requirements:read_requirements",
    "spec_hash": "gpuenv.spec.write:spec_hash",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
