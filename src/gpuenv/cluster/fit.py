"""Does a node run the image? Its labels (io.gpuenv.min-driver, cuda, gpu-archs) against the node's driver
and GPUs, by the rule `gpuenv load` uses (bundle/fits.py); a misfit is refused with what would work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuenv.bundle.fits import Misfit, misfits
from gpuenv.bundle.manifest import LABELS, requires_from
from gpuenv.errors import ImpossibleRequest

if TYPE_CHECKING:
    from gpuenv.cluster.runtime import ImageConfig
    from gpuenv.host.nvidia import DriverState


def needs_gpu(image: ImageConfig) -> bool:
    """The image holds GPU code: it carries a minimum driver (a CPU build carries none)."""
    return bool(image.label(f"{LABELS}min-driver"))


def node_misfits(image: ImageConfig, driver: DriverState) -> list[Misfit]:
    return misfits(requires_from(dict(image.labels), needs_gpu(image)), driver)


def check(image: ImageConfig, driver: DriverState, node: str) -> None:
    """Raise ImpossibleRequest (exit 3) when `node` (how it was seen: a recording, this host) cannot run it."""
    found = node_misfits(image, driver)
    if not found:
        return
    code = "driver-too-old" if any(m.code in ("driver-too-old", "no-driver") for m in found) else "gpu-arch-unsupported"
    raise ImpossibleRequest(f"{node} cannot run this image: " + "; ".join(m.message.replace("the bundle's", "the image's")
                                                                       .replace("this host's", "its")
                                                                       for m in found),
                            causes=[m.code for m in found], code=code,
                            hint="what would work: " + "; ".join(dict.fromkeys(m.would_work for m in found)),
                            alternatives=[m.would_work for m in found])
