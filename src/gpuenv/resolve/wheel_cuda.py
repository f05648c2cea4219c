"""What the resolved distributions say about CUDA, checked against the plan: the CUDA runtime and cuDNN
that NVIDIA's wheels in the resolution carry (`nvidia-cuda-runtime-cu12 12.9.79`, CUDA 13's unsuffixed
`nvidia-cuda-runtime 13.2.86`, `nvidia-cudnn-cu12 9.28.0.42`).

The wheels win over the knowledge base where both speak (a framework that states lower bounds, like JAX's
CUDA plugins, gets the newest cuDNN the index has): the plan says the CUDA and cuDNN the image will hold.
Two CUDA majors in one environment, or another major than the framework's, is a conflict: the libraries
would not be the ones the framework was built for.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional

from gpuenv.errors import ImpossibleRequest
from gpuenv.resolve.plan import Plan
from gpuenv.resolve.resolved import Pin, Resolved
from gpuenv.resolve.versions import major, major_minor

_RUNTIME = re.compile(r"nvidia-cuda-runtime(?:-cu(\d+))?")
_CUDNN = re.compile(r"nvidia-cudnn(?:-cu(\d+))?")


def runtimes(resolved: Resolved) -> list[Pin]:
    return [p for p in resolved.pins if _RUNTIME.fullmatch(p.name)]


def cudnn_of(resolved: Resolved, cuda_major: int) -> Optional[str]:
    found = [p for p in resolved.pins if (m := _CUDNN.fullmatch(p.name)) and (m.group(1) or "") in
             ("", str(cuda_major))]
    return found[0].version.split("+")[0] if found else None


def checked(plan: Plan) -> Plan:
    """The plan with the CUDA and cuDNN of the resolved wheels, or ImpossibleRequest for a CUDA clash."""
    resolved = plan.resolved
    if resolved is None or resolved.status != "resolved":
        return plan
    found = runtimes(resolved)
    majors = {major(p.version) for p in found}
    if len(majors) > 1:
        raise ImpossibleRequest("the environment would hold two CUDA majors: " + "; ".join(_who(p) for p in found),
                                code="conflict", hint="pin the package that brings the other CUDA to a release "
                                "built for the framework's CUDA, or choose a framework build of that CUDA")
    if not found:
        return plan
    runtime = found[0]
    cuda = major_minor(runtime.version)
    if plan.cuda_source != "wheels":
        return replace(plan, reasons=plan.reasons + (f"{_who(runtime)} brings CUDA {cuda} in its wheels, next "
                                                     f"to the plan's {plan.cuda or 'no CUDA'}",))
    if plan.cuda and major(plan.cuda) != major(cuda):
        raise ImpossibleRequest(f"the plan's frameworks use CUDA {plan.cuda}, and the resolution brings "
                                f"{_who(runtime)}", code="conflict",
                                hint="pin the package that brings it to a release built for CUDA "
                                     f"{major(plan.cuda)}")
    cudnn = cudnn_of(resolved, major(cuda)) or plan.cudnn
    if (cuda, cudnn) == (plan.cuda, plan.cudnn):
        return plan
    said = (f"CUDA {runtime.version} and cuDNN {cudnn or 'none'}: the nvidia-* wheels of the resolution "
            f"(the knowledge base says CUDA {plan.cuda}, cuDNN {plan.cudnn or 'none'} for the framework)")
    return replace(plan, cuda=cuda, cudnn=cudnn, reasons=plan.reasons + (said,))


def _who(pin: Pin) -> str:
    via = ", ".join(v for v in pin.via) or "?"
    return f"{pin.name} {pin.version} (via {via})"
