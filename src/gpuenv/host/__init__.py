"""Probing the host. For now: the NVIDIA driver and GPUs through `nvidia-smi` (the planning needs them);
the full probe (NVML, the engine, the GPU path into containers) is issue 4's."""
