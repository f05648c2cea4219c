"""Registers the CUDA libraries that pip wheels brought (site-packages/nvidia/*/lib) with the dynamic
linker, so that every process finds them: notebooks, ssh sessions, and frameworks (TensorFlow) that
look for libcudart or libcudnn by name rather than next to themselves. Runs once at build time.
"""
import glob
import os
import site
import subprocess

roots = getattr(site, "getsitepackages", lambda: [])()
found = sorted({d for root in roots for d in glob.glob(os.path.join(root, "nvidia", "*", "lib"))})
if found:
    with open("/etc/ld.so.conf.d/gpuenv-cuda-wheels.conf", "w") as conf:
        conf.write("".join(d + "\n" for d in found))
    subprocess.check_call(["ldconfig"])
print("gpuenv: %d CUDA library folders from wheels registered with the linker" % len(found))
