"""The GPU smoke test's program, run by python3 inside a short-lived container (any Python from 3.6 on,
standard library only): it lists the GPUs, and on each one runs y = a*x + y through the CUDA driver
API (libcuda.so.1, the driver's own library: no toolkit and no framework needed), from a small PTX
kernel the driver compiles for that GPU, and checks every result. It prints one JSON line after
MARK. This file is sent as the program's text; it imports nothing from gpuenv.
"""

import ctypes
import json
import subprocess
import sys
import time
from array import array

MARK = "@@gpuenv-smoke@@"
N = 1 << 18
PTX = """.version {isa}
.target sm_{sm}
.address_size 64
.visible .entry saxpy(.param .u32 n, .param .f32 a, .param .u64 x, .param .u64 y)
{{
  .reg .pred p;
  .reg .b32 r<6>;
  .reg .f32 f<4>;
  .reg .b64 rd<8>;
  ld.param.u32 r1, [n];
  ld.param.f32 f1, [a];
  ld.param.u64 rd1, [x];
  ld.param.u64 rd2, [y];
  mov.u32 r2, %ctaid.x;
  mov.u32 r3, %ntid.x;
  mov.u32 r4, %tid.x;
  mad.lo.s32 r5, r2, r3, r4;
  setp.ge.u32 p, r5, r1;
  @p bra DONE;
  cvta.to.global.u64 rd3, rd1;
  cvta.to.global.u64 rd4, rd2;
  mul.wide.u32 rd5, r5, 4;
  add.s64 rd6, rd3, rd5;
  add.s64 rd7, rd4, rd5;
  ld.global.f32 f2, [rd6];
  ld.global.f32 f3, [rd7];
  fma.rn.f32 f3, f1, f2, f3;
  st.global.f32 [rd7], f3;
DONE:
  ret;
}}
"""
# PTX ISA versions, newest first: the first one the driver accepts for the GPU's own target is used
ISAS = ("9.0", "8.8", "8.7", "8.6", "8.5", "8.4", "8.3", "8.2", "8.1", "8.0", "7.8", "7.7", "7.6", "7.5", "7.4",
        "7.3", "7.2", "7.1", "7.0", "6.5", "6.4", "6.3", "6.2", "6.1", "6.0", "5.0", "4.3", "4.2", "4.1", "4.0")


class CudaError(Exception):
    pass


def load_cuda():
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise CudaError("libcuda.so.1 cannot be loaded in the container: " + str(exc)) from None


def call(cuda, name, *args):
    rc = getattr(cuda, name)(*args)
    if rc != 0:
        text = ctypes.c_char_p()
        cuda.cuGetErrorString(rc, ctypes.byref(text))
        raise CudaError("%s failed: error %d %s" % (name, rc, (text.value or b"").decode()))


def load_kernel(cuda, sm):
    module = ctypes.c_void_p()
    last = None
    for isa in ISAS:
        source = PTX.format(isa=isa, sm=sm).encode() + b"\0"
        rc = cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(source))
        if rc == 0:
            function = ctypes.c_void_p()
            call(cuda, "cuModuleGetFunction", ctypes.byref(function), module, b"saxpy")
            return module, function, isa
        last = rc
    raise CudaError("no PTX version was accepted for sm_%s (last error %s)" % (sm, last))


def run_on(cuda, index):
    device = ctypes.c_int()
    call(cuda, "cuDeviceGet", ctypes.byref(device), index)
    name = ctypes.create_string_buffer(128)
    call(cuda, "cuDeviceGetName", name, 128, device)
    major, minor = ctypes.c_int(), ctypes.c_int()
    call(cuda, "cuDeviceGetAttribute", ctypes.byref(major), 75, device)   # COMPUTE_CAPABILITY_MAJOR
    call(cuda, "cuDeviceGetAttribute", ctypes.byref(minor), 76, device)   # COMPUTE_CAPABILITY_MINOR
    result = {"index": index, "name": name.value.decode(), "cc": "%d.%d" % (major.value, minor.value)}
    context = ctypes.c_void_p()
    call(cuda, "cuDevicePrimaryCtxRetain", ctypes.byref(context), device)
    try:
        call(cuda, "cuCtxSetCurrent", context)
        result.update(saxpy(cuda, "%d%d" % (major.value, minor.value)))
    finally:
        cuda.cuDevicePrimaryCtxRelease(device)
    return result


def saxpy(cuda, sm):
    module, function, isa = load_kernel(cuda, sm)
    x = array("f", (float(i % 1000) for i in range(N)))
    y = array("f", [1.0]) * N
    size = N * 4
    dx, dy = ctypes.c_uint64(), ctypes.c_uint64()
    call(cuda, "cuMemAlloc_v2", ctypes.byref(dx), ctypes.c_size_t(size))
    call(cuda, "cuMemAlloc_v2", ctypes.byref(dy), ctypes.c_size_t(size))
    try:
        call(cuda, "cuMemcpyHtoD_v2", dx, ctypes.c_void_p(x.buffer_info()[0]), ctypes.c_size_t(size))
        call(cuda, "cuMemcpyHtoD_v2", dy, ctypes.c_void_p(y.buffer_info()[0]), ctypes.c_size_t(size))
        n, a = ctypes.c_uint32(N), ctypes.c_float(2.0)
        params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.byref(v), ctypes.c_void_p) for v in (n, a, dx, dy)])
        start = time.time()
        call(cuda, "cuLaunchKernel", function, (N + 255) // 256, 1, 1, 256, 1, 1, 0, None, params, None)
        call(cuda, "cuCtxSynchronize")
        elapsed = time.time() - start
        out = array("f", [0.0]) * N
        call(cuda, "cuMemcpyDtoH_v2", ctypes.c_void_p(out.buffer_info()[0]), dy, ctypes.c_size_t(size))
    finally:
        cuda.cuMemFree_v2(dx)
        cuda.cuMemFree_v2(dy)
        cuda.cuModuleUnload(module)
    wrong = sum(1 for i in range(N) if out[i] != 2.0 * x[i] + 1.0)
    return {"ok": wrong == 0, "wrong": wrong, "n": N, "ptx_isa": isa, "kernel_ms": round(elapsed * 1000, 3)}


def nvidia_smi():
    try:
        done = subprocess.run(["nvidia-smi", "-L"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return done.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "nvidia-smi did not run: %s" % exc


def main():
    report = {"python": sys.version.split()[0], "nvidia_smi": nvidia_smi(), "gpus": []}
    try:
        cuda = load_cuda()
        call(cuda, "cuInit", 0)
        version, count = ctypes.c_int(), ctypes.c_int()
        call(cuda, "cuDriverGetVersion", ctypes.byref(version))
        call(cuda, "cuDeviceGetCount", ctypes.byref(count))
        report["cuda_driver"] = "%d.%d" % (version.value // 1000, version.value % 1000 // 10)
        for index in range(count.value):
            try:
                report["gpus"].append(run_on(cuda, index))
            except CudaError as exc:
                report["gpus"].append({"index": index, "ok": False, "error": str(exc)})
    except CudaError as exc:
        report["error"] = str(exc)
    print(MARK + json.dumps(report))


if __name__ == "__main__":
    main()
