"""gpuenv for library users: every stage under one name, each loaded on first use (gpuenv.lazy).

    from gpuenv import api
    request, spec = api.request_from_spec(Path("gpuenv.toml"))
    plan = api.plan_whole(request, api.target_for(api.TargetFlags(), spec), spec, Path("."))

The stages themselves: planning.py (a request and a target, then the plan), environment.py (the plan to
files, an image and containers), host.probe (the host as it is), doctor (findings and fixes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.lazy import exports

if TYPE_CHECKING:
    from gpuenv.doctor import diagnose as diagnose
    from gpuenv.environment import build as build
    from gpuenv.environment import down as down
    from gpuenv.environment import generate as generate
    from gpuenv.environment import prepare as prepare
    from gpuenv.environment import up as up
    from gpuenv.environment import verify as verify
    from gpuenv.host.probe import probe as probe_host  # noqa: F401
    from gpuenv.planning import TargetFlags as TargetFlags
    from gpuenv.planning import plan as plan
    from gpuenv.planning import plan_whole as plan_whole
    from gpuenv.planning import request_from_spec as request_from_spec
    from gpuenv.planning import request_from_words as request_from_words
    from gpuenv.planning import target_for as target_for

_NAMES = {
    **{name: f"gpuenv.planning:{name}" for name in
       ("TargetFlags", "plan", "plan_whole", "request_from_spec", "request_from_words", "target_for")},
    **{name: f"gpuenv.environment:{name}" for name in ("generate", "prepare", "build", "up", "down", "verify")},
    "probe_host": "gpuenv.host.probe:probe",
    "diagnose": "gpuenv.doctor:diagnose",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
