"""The program of `gpuenv verify`, sent as text to the environment's own Python:

    docker exec -i CONTAINER python3 - torch tensorflow --expect-gpus 2 [--timeout 240] [--budget 540]

For each framework family named (torch, tensorflow, jax, mxnet, cupy, paddle: the families of
kb/data/frameworks.toml) it imports the framework, reads how it was built (CUDA, cuDNN, the GPU
architectures it carries kernels for), lists the GPUs it sees with their compute capability, and
multiplies two known 256x256 matrices on the CPU and on every GPU, checking every cell against the
known answer. It also records what explains failures: the /dev/nvidia* nodes, the NVIDIA_* variables,
whether libcuda.so.1 loads, the output of nvidia-smi -L.

Each family runs in a forked process of its own, with its stdout and stderr captured (the frameworks'
warnings are evidence: "Cannot dlopen some GPU libraries") and a time limit, so that a crash, a hang
or two frameworks' clashing libraries cannot spoil the other checks; all of it ends within --budget
seconds (default 540, under the runner's 600). The captured output is passed on to stderr; stdout
carries one JSON line, after MARK, and nothing else.

It runs on Python 2.7 and 3.5 and later (old environments keep old Pythons): no f-strings, no
annotations, the standard library and the frameworks only. It imports nothing from gpuenv.
"""

import argparse
import ctypes
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

MARK = "@@gpuenv-verify@@"
FORMAT = 1
N = 256
MODULES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "mxnet": "mxnet", "cupy": "cupy",
           "paddle": "paddle"}
VARIABLES = ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_REQUIRE_CUDA", "CUDA_VISIBLE_DEVICES",
             "CUDA_VERSION", "LD_LIBRARY_PATH")
TEXT_KEEP = 4000          # characters of one error message
LOG_HEAD, LOG_TAIL = 4000, 12000
_TABLE = []  # type: list[list[float]]


def text(value):
    """Any value as text json can write, on Python 2 and 3."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return u"%s" % (value,)
    except Exception:
        return repr(value)


def error(exc):
    said = text(exc)
    if len(said) > TEXT_KEEP:
        said = said[:TEXT_KEEP] + " [...]"
    return "%s: %s" % (type(exc).__name__, said)


# --- the known answer ---------------------------------------------------------------------------------

def matrices():
    """A[i][k] = (i + 2k) mod 7 and B[k][j] = (3k + j) mod 5. Each device computes A.B + A: the product
    runs in the math library (cuBLAS), the sum in the framework's own kernels, so a build without code
    for the GPU fails even where cuBLAS has it. Small integers: every cell is an integer below 2^24,
    exact in float32, and in TF32 or bfloat16 products alike."""
    a = [[float((i + 2 * k) % 7) for k in range(N)] for i in range(N)]
    b = [[float((3 * k + j) % 5) for j in range(N)] for k in range(N)]
    return a, b


def expected():
    """(A.B)[i][j] depends only on i mod 7 and j mod 5: the whole product is a 7x5 table."""
    if not _TABLE:
        _TABLE.extend([[float(sum(((i + 2 * k) % 7) * ((3 * k + j) % 5) for k in range(N))) for j in range(5)]
                       for i in range(7)])
    return _TABLE


def wrong_cells(rows):
    table = expected()
    if len(rows) != N or any(len(row) != N for row in rows):
        return N * N
    return sum(1 for i, row in enumerate(rows) for j, value in enumerate(row)
               if value != table[i % 7][j % 5] + (i + 2 * j) % 7)


# --- the frameworks -------------------------------------------------------------------------------------
# Each family has build(module, result), gpus(module, result) and matmul(module, index) -> the rows of
# A.B + A, where index None is the CPU; matmul returns None where the framework has no such device.

def cuda_text(number):
    """A CUDA version as the runtime and driver give it (12080) as text (12.8)."""
    return "%d.%d" % (number // 1000, number % 1000 // 10) if number else None


def cudnn_text(number):
    """A cuDNN version as an integer (7605 for 7.6.5, 8907 for 8.9.7, 90100 for 9.1.0) as text."""
    if not number:
        return None
    split = 10000 if number >= 90000 else 1000
    return "%d.%d.%d" % (number // split, number % split // 100, number % 100)


def torch_build(torch, result):
    result["version"] = torch.__version__
    result["cuda"] = getattr(torch.version, "cuda", None)
    result["cuda_build"] = result["cuda"] is not None
    if not result["cuda_build"]:
        return
    flags = getattr(torch._C, "_cuda_getArchFlags", None)     # the build's list, GPU or not
    archs = flags().split() if flags else torch.cuda.get_arch_list()
    result["arch_list"] = list(archs) or None
    result["cudnn"] = cudnn_text(torch.backends.cudnn.version())


def torch_gpus(torch, result):
    if not torch.cuda.is_available():
        try:
            torch.cuda.init()                    # raises the reason ("Found no NVIDIA driver on your system")
        except Exception as exc:
            result["gpu_error"] = error(exc)
        return
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        result["gpus"].append({"index": index, "name": torch.cuda.get_device_name(index),
                               "cc": "%d.%d" % (major, minor)})


def torch_matmul(torch, index):
    a, b = matrices()
    device = "cpu" if index is None else "cuda:%d" % index
    x = torch.tensor(a, device=device)
    product = torch.mm(x, torch.tensor(b, device=device)) + x
    if index is not None:
        torch.cuda.synchronize(index)
    return product.cpu().tolist()


def tf_build(tf, result):
    result["version"] = getattr(tf, "__version__", None) or getattr(tf, "VERSION", None)
    result["cuda_build"] = bool(tf.test.is_built_with_cuda())
    info = getattr(getattr(tf, "sysconfig", None), "get_build_info", None)      # TensorFlow >= 2.3
    if info is None:
        return
    build = info()
    result["cuda"] = build.get("cuda_version")
    result["cudnn"] = build.get("cudnn_version")
    archs = build.get("cuda_compute_capabilities")
    result["arch_list"] = [text(a) for a in archs] if archs else None


def tf_gpus(tf, result):
    experimental = getattr(getattr(tf, "config", None), "experimental", None)
    details = getattr(experimental, "get_device_details", None)                 # TensorFlow >= 2.3
    if details is None or not tf.executing_eagerly():
        result["gpus"].extend(tf_described_gpus())
        return
    for index, device in enumerate(tf.config.list_physical_devices("GPU")):
        info = details(device)
        capability = info.get("compute_capability")
        result["gpus"].append({"index": index, "name": info.get("device_name"),
                               "cc": "%d.%d" % tuple(capability) if capability else None})


def tf_described_gpus():
    """TensorFlow 1.x and 2.0-2.2: the GPUs device_lib lists, from its description text
    ("device: 0, name: Tesla K80, pci bus id: 0000:00:1e.0, compute capability: 3.7")."""
    from tensorflow.python.client import device_lib
    found = []  # type: list[dict[str, object]]
    for device in device_lib.list_local_devices():
        if device.device_type != "GPU":
            continue
        fields = dict(part.split(": ", 1) for part in device.physical_device_desc.split(", ") if ": " in part)
        found.append({"index": len(found), "name": fields.get("name"), "cc": fields.get("compute capability")})
    return found


def tf_matmul(tf, index):
    a, b = matrices()
    name = "/cpu:0" if index is None else "/gpu:%d" % index
    if getattr(tf, "executing_eagerly", None) and tf.executing_eagerly():
        with tf.device(name):
            x = tf.constant(a)
            product = tf.matmul(x, tf.constant(b)) + x
        wanted = "CPU:0" if index is None else "GPU:%d" % index
        if not product.device.upper().endswith(wanted):           # eager mode falls back to the CPU quietly
            raise RuntimeError("TensorFlow placed the product on %s, not %s" % (product.device, wanted))
        return product.numpy().tolist()
    graph = tf.Graph()                                             # TensorFlow 1.x: a graph and a session
    with graph.as_default(), tf.device(name):
        x = tf.constant(a)
        product = tf.matmul(x, tf.constant(b)) + x
    config = tf.ConfigProto(allow_soft_placement=False)
    config.gpu_options.allow_growth = True
    with tf.Session(graph=graph, config=config) as session:
        return session.run(product).tolist()


def jax_build(jax, result):
    result["version"] = jax.__version__
    try:
        import jaxlib
        result["jaxlib"] = getattr(jaxlib, "__version__", None) or jaxlib.version.__version__
    except Exception as exc:
        result["errors"].append({"stage": "build", "error": error(exc)})
    plugins = [name for name in ("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_cuda11_plugin") if found(name)]
    local = (result.get("jaxlib") or "").partition("+")[2]         # old wheels: 0.4.7+cuda11.cudnn86
    result["cuda_build"] = bool(plugins) or "cuda" in local or found("jaxlib.cuda")
    if plugins:
        result["cuda"] = plugins[0][len("jax_cuda"):-len("_plugin")]
    elif local.startswith("cuda"):
        result["cuda"] = local.split(".")[0][len("cuda"):]


def found(module):
    try:
        import importlib.util
        return importlib.util.find_spec(module) is not None
    except Exception:
        return False


def jax_gpus(jax, result):
    try:
        devices = jax.devices("gpu")            # raises when there is no GPU backend
    except Exception as exc:
        result["gpu_error"] = error(exc)
        return
    for index, device in enumerate(devices):
        result["gpus"].append({"index": index, "name": getattr(device, "device_kind", None),
                               "cc": getattr(device, "compute_capability", None)})


def jax_matmul(jax, index):
    import numpy
    a, b = matrices()
    device = jax.devices("cpu")[0] if index is None else jax.devices("gpu")[index]
    x = jax.device_put(numpy.array(a, dtype=numpy.float32), device)
    y = jax.device_put(numpy.array(b, dtype=numpy.float32), device)
    product = jax.numpy.dot(x, y, precision=jax.lax.Precision.HIGHEST) + x
    product.block_until_ready()
    return numpy.asarray(product).tolist()


def mxnet_build(mx, result):
    result["version"] = mx.__version__
    runtime = getattr(mx, "runtime", None)                          # MXNet >= 1.5
    if runtime is not None:
        features = runtime.Features()
        result["cuda_build"] = features.is_enabled("CUDA")
        result["cudnn_build"] = features.is_enabled("CUDNN")


def mxnet_gpus(mx, result):
    count = mx.context.num_gpus() if hasattr(mx.context, "num_gpus") else None
    if count is None or count == 0:
        count = 0                               # one array on gpu(0) proves a GPU or says why not
        try:
            while count < 64:
                mx.nd.zeros((1,), ctx=mx.gpu(count)).asnumpy()
                count += 1
        except Exception as exc:
            if count == 0:
                result["gpu_error"] = error(exc)
    for index in range(count):
        result["gpus"].append({"index": index, "name": None, "cc": None})   # MXNet does not say


def mxnet_matmul(mx, index):
    a, b = matrices()
    context = mx.cpu() if index is None else mx.gpu(index)
    x = mx.nd.array(a, ctx=context)
    product = mx.nd.dot(x, mx.nd.array(b, ctx=context)) + x
    return product.asnumpy().tolist()


def cupy_build(cupy, result):
    result["version"] = cupy.__version__
    runtime = cupy.cuda.runtime
    result["cuda_build"] = not getattr(runtime, "is_hip", False)
    result["cuda"] = cuda_text(runtime.runtimeGetVersion())


def cupy_gpus(cupy, result):
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        result["gpu_error"] = error(exc)
        return
    for index in range(count):
        properties = runtime.getDeviceProperties(index)
        result["gpus"].append({"index": index, "name": text(properties.get("name")),
                               "cc": "%d.%d" % (properties["major"], properties["minor"])})


def cupy_matmul(cupy, index):
    if index is None:
        return None                             # CuPy has no CPU device
    a, b = matrices()
    with cupy.cuda.Device(index):
        x = cupy.array(a, dtype=cupy.float32)
        product = cupy.dot(x, cupy.array(b, dtype=cupy.float32)) + x
        return product.get().tolist()


def paddle_build(paddle, result):
    result["version"] = paddle.__version__
    result["cuda_build"] = bool(paddle.is_compiled_with_cuda())
    if not result["cuda_build"]:
        return
    result["cuda"] = text(paddle.version.cuda())
    result["cudnn"] = text(paddle.version.cudnn())
    archs = getattr(paddle.version, "cuda_archs", None)              # [80, 86, 90] in Paddle 3
    result["arch_list"] = ["sm_%s" % arch for arch in archs()] if archs and archs() else None


def paddle_gpus(paddle, result):
    count = paddle.device.cuda.device_count()
    if count == 0 and result.get("cuda_build"):
        try:
            paddle.set_device("gpu:0")          # says why there is no GPU
        except Exception as exc:
            result["gpu_error"] = error(exc)
    for index in range(count):
        major, minor = paddle.device.cuda.get_device_capability(index)
        result["gpus"].append({"index": index, "name": paddle.device.cuda.get_device_name(index),
                               "cc": "%d.%d" % (major, minor)})


def paddle_matmul(paddle, index):
    a, b = matrices()
    place = paddle.CPUPlace() if index is None else paddle.CUDAPlace(index)
    x = paddle.to_tensor(a, dtype="float32", place=place)
    y = paddle.to_tensor(b, dtype="float32", place=place)
    return (paddle.matmul(x, y) + x).numpy().tolist()


CHECKS = {
    "torch": (torch_build, torch_gpus, torch_matmul),
    "tensorflow": (tf_build, tf_gpus, tf_matmul),
    "jax": (jax_build, jax_gpus, jax_matmul),
    "mxnet": (mxnet_build, mxnet_gpus, mxnet_matmul),
    "cupy": (cupy_build, cupy_gpus, cupy_matmul),
    "paddle": (paddle_build, paddle_gpus, paddle_matmul),
}


# --- one family, in its own process ---------------------------------------------------------------------

class Report(dict):
    """A job's result; save() writes it where the parent reads it, even if the job hangs later."""

    def __init__(self, path):
        dict.__init__(self)
        self.path = path

    def save(self):
        with open(self.path + ".new", "w") as out:
            json.dump(self, out, default=text)
        os.rename(self.path + ".new", self.path)


def step(result, stage, action):
    result["stage"] = stage
    result.save()
    try:
        action()
    except (Exception, SystemExit) as exc:
        result["errors"].append({"stage": stage, "error": error(exc)})
        return False
    return True


def compute(result, device, run):
    entry = {"device": device, "ok": False}
    result["compute"].append(entry)
    result["stage"] = "compute " + device
    result.save()
    start = time.time()
    try:
        rows = run()
    except (Exception, SystemExit) as exc:
        entry["error"] = error(exc)
        return
    entry["ms"] = round((time.time() - start) * 1000, 3)
    if rows is None:
        entry["skipped"] = "the framework has no such device"
        return
    entry["wrong"] = wrong_cells(rows)
    entry["ok"] = entry["wrong"] == 0


def check_family(family, result):
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")      # the environment may be in use:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # take GPU memory as needed only
    result.update({"family": family, "module": MODULES.get(family, family), "imported": False,
                   "import_s": None, "version": None, "cuda_build": None, "cuda": None, "cudnn": None,
                   "arch_list": None, "gpus": [], "gpu_error": None, "compute": [], "errors": [], "stage": "import"})
    if family not in CHECKS:
        result["errors"].append({"stage": "import", "error": "unknown family %r" % family})
        return
    start = time.time()
    if not step(result, "import", lambda: __import__(result["module"])):
        return
    result["imported"], result["import_s"] = True, round(time.time() - start, 3)
    module = sys.modules[result["module"]]
    build, gpus, matmul = CHECKS[family]
    step(result, "build", lambda: build(module, result))
    step(result, "devices", lambda: gpus(module, result))
    compute(result, "cpu", lambda: matmul(module, None))
    for gpu in result["gpus"]:
        compute(result, "gpu:%d" % gpu["index"], lambda index=gpu["index"]: matmul(module, index))
    result["stage"] = "done"


# --- facts about the container ------------------------------------------------------------------------

def check_environment(result):
    result["python"] = sys.version.split()[0]
    result["executable"] = sys.executable
    result["dev_nodes"] = sorted(glob.glob("/dev/nvidia*"))
    result["variables"] = dict((key, os.environ.get(key)) for key in VARIABLES)
    result["proc_driver"] = first_line("/proc/driver/nvidia/version")
    result["libcuda"] = libcuda()
    result["nvidia_smi"] = command_output(["nvidia-smi", "-L"], 20)


def first_line(path):
    try:
        with open(path) as source:
            return source.readline().strip()
    except (IOError, OSError):
        return None


def libcuda():
    """Whether the driver's libcuda.so.1 loads here, from where, and the CUDA version it supports."""
    try:
        library = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return {"ok": False, "error": text(exc)}
    found = {"ok": True, "error": None, "path": None, "cuda": None}  # type: dict[str, object]
    version = ctypes.c_int()
    if library.cuDriverGetVersion(ctypes.byref(version)) == 0:
        found["cuda"] = cuda_text(version.value)
    try:
        with open("/proc/self/maps") as maps:
            paths = [line.split()[-1] for line in maps if "libcuda.so" in line]
        found["path"] = paths[0] if paths else None
    except (IOError, OSError):
        pass
    return found


def command_output(argv, timeout):
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        return {"ran": False, "exit": None, "output": error(exc)}
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        output = process.communicate()[0]
    finally:
        timer.cancel()
    return {"ran": True, "exit": process.returncode, "output": text(output).strip()[-TEXT_KEEP:]}


# --- the forked runner ----------------------------------------------------------------------------------

def isolated(job, timeout):
    """job(report) in a child process whose stdout and stderr go to a file; the report it saved last,
    its output, and how it ended (timed out, killed by a signal)."""
    handle, path = tempfile.mkstemp(prefix="gpuenv-verify-", suffix=".json")
    os.close(handle)
    log_handle, log_path = tempfile.mkstemp(prefix="gpuenv-verify-", suffix=".log")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(job, path, log_handle)
    os.close(log_handle)
    status, timed_out = wait(pid, timeout)
    report = load(path)
    report["log"] = read_log(log_path)
    if timed_out:
        report["timed_out_s"] = timeout
    elif status:
        report["ended"] = ("killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
                           else "exit %d" % os.WEXITSTATUS(status))
    for name in (path, path + ".new", log_path):
        if os.path.exists(name):
            os.remove(name)
    return report


def child(job, path, log_handle):
    code = 0
    try:
        os.dup2(log_handle, 1)
        os.dup2(log_handle, 2)
        report = Report(path)
        job(report)
        report.save()
    except BaseException:       # whatever happens, the child must never return into the parent's loop
        code = 3
        try:
            traceback.print_exc()
        except BaseException:
            pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def wait(pid, timeout):
    deadline = time.time() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, True
        time.sleep(0.02)


def load(path):
    try:
        with open(path) as source:
            return json.load(source)
    except (IOError, OSError, ValueError):
        return {}


def read_log(path):
    with open(path, "rb") as source:
        said = source.read().decode("utf-8", "replace")
    if said:
        sys.stderr.write(said if isinstance(said, str) else said.encode("utf-8"))
        sys.stderr.flush()
    if len(said) > LOG_HEAD + LOG_TAIL:
        said = said[:LOG_HEAD] + "\n[...]\n" + said[-LOG_TAIL:]
    return said


# --- main -----------------------------------------------------------------------------------------------

def arguments(argv):
    parser = argparse.ArgumentParser(prog="gpuenv-verify")
    parser.add_argument("families", nargs="*", help="torch tensorflow jax mxnet cupy paddle")
    parser.add_argument("--expect-gpus", type=int, default=0, help="GPUs the host gave the container")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds for one family at most")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all of it at most")
    return parser.parse_args(argv)


def main(argv):
    options = arguments(argv)
    start = time.time()
    report = {"format": FORMAT, "program": "gpuenv-verify", "families": options.families,
              "expect_gpus": options.expect_gpus, "timeout_s": options.timeout, "budget_s": options.budget}
    report["environment"] = isolated(check_environment, min(60.0, options.budget))
    report["frameworks"] = []
    for family in options.families:
        left = options.budget - (time.time() - start)
        if left < 1:
            report["frameworks"].append({"family": family, "imported": False, "stage": "start",
                                         "not_run": "no time left of the %g s budget" % options.budget})
            continue
        job = lambda result, family=family: check_family(family, result)   # noqa: E731
        try:
            found = isolated(job, min(options.timeout, left))
        except Exception as exc:                 # no fork, no temporary file: said, and on to the next
            found = {"ended": "could not start: %s" % error(exc)}
        found.setdefault("family", family)       # a child that died before its first save reported nothing
        found.setdefault("stage", "start")
        report["frameworks"].append(found)
    report["elapsed_s"] = round(time.time() - start, 3)
    try:
        line = json.dumps(report, sort_keys=True, default=text)
    except Exception as exc:
        line = json.dumps({"format": FORMAT, "program": "gpuenv-verify", "error": error(exc)})
    sys.stdout.write("\n" + MARK + line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
