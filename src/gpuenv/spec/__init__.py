"""The user's request: the gpuenv.toml model, loading it, and building it from flags or a short request.

Decides no versions: what is absent or "auto" is resolved by later stages.
"""

from gpuenv.spec.load import SPEC_FILE, load_spec, parse_spec, spec_path, validate_spec
from gpuenv.spec.model import EnvSpec

__all__ = ["SPEC_FILE", "EnvSpec", "load_spec", "parse_spec", "spec_path", "validate_spec"]
