"""Does this host run a bundle's image? Its driver against the minimum driver of the image's CUDA, each
GPU's compute capability against the architectures the build has code for (resolve/nvidia.covering:
the rule the plan and `gpuenv verify` use). Pure: the host's driver state is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpuenv.bundle.manifest import Requires
from gpuenv.resolve.nvidia import covering, driver_runs, max_cuda

if TYPE_CHECKING:
    from gpuenv.host.nvidia import DriverState, Gpu


@dataclass(frozen=True)
class Misfit:
    code: str                # no-driver | driver-too-old | gpu-arch-unsupported
    message: str             # the exact reason
    would_work: str          # what would

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "would_work": self.would_work}


def misfits(requires: Requires, driver: DriverState) -> list[Misfit]:
    """Every reason this host (its host.nvidia.DriverState) cannot run the bundle's GPU code; [] when it can."""
    if not requires.gpu or requires.cuda_source in ("", "none"):
        return []
    what = f"CUDA {requires.cuda}" + (" (from its wheels)" if requires.cuda_source == "wheels" else "")
    if driver.version is None or not driver.ok:
        return [Misfit("no-driver", f"this host has no working NVIDIA driver ({driver.error or 'none found'}); "
                       f"the bundle's {what} needs driver >= {requires.min_driver or 'any'}",
                       f"a host with an NVIDIA driver >= {requires.min_driver or 'any'} (`gpuenv doctor` checks "
                       "one), or --force to load it anyway: it then runs on the CPU only")]
    found = _driver(requires, driver.version, what)
    return found + [m for gpu in driver.gpus for m in _arch(requires, gpu)]


def _driver(requires: Requires, version: str, what: str) -> list[Misfit]:
    """The driver `version` against the bundle's minimum."""
    if not requires.min_driver or driver_runs(version, requires.min_driver):
        return []
    newest = max_cuda(version) or "none"
    return [Misfit("driver-too-old", f"this host's NVIDIA driver {version} is older than the "
                   f"{requires.min_driver} that the bundle's {what} needs",
                   f"a driver >= {requires.min_driver} here; or, where the bundle was made, an environment "
                   f"planned for this driver (it runs CUDA <= {newest}): gpuenv plan --driver {version}")]


def _arch(requires: Requires, gpu: Gpu) -> list[Misfit]:
    if not requires.gpu_archs or not gpu.cc or covering(requires.gpu_archs, gpu.cc):
        return []
    return [Misfit("gpu-arch-unsupported", f"GPU {gpu.index} ({gpu.name}, compute capability {gpu.cc}) is not "
                   f"covered by the architectures the bundle's build has code for ({', '.join(requires.gpu_archs)})",
                   f"a build with code for sm_{gpu.cc.replace('.', '')}: where the bundle was made, "
                   f"gpuenv plan --gpu {gpu.cc} shows one")]
