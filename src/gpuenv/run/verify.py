"""What `gpuenv verify` concludes from the verification program's report (run/verify_program.py, run
inside the environment): each framework family imports, is built with CUDA, sees every GPU the host
gave the environment, computes right on each GPU and on the CPU, and carries code for each GPU's
compute capability. Each failure gets its likely causes: the rows of research/failure-modes.md whose
error text the report holds, or the row the failed check itself implies, with the row's fix.
Pure: no I/O but reading the program's text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Optional, Sequence

from rich.markup import escape
from rich.table import Table

from gpuenv.errors import GpuenvError
from gpuenv.resolve.nvidia import arch_parts, covering, covers  # noqa: F401 (one rule for the plan and verify)

MARK = "@@gpuenv-verify@@"
CPU_NOTE = "no GPU: checked the CPU path"
HostGpu = tuple[int, str, str]          # index on the host, name, compute capability ("9.0"; "" unknown)

# (error text, row of research/failure-modes.md, title, fix): the texts a framework, libcuda or
# nvidia-smi shows inside a running container; the fix is the row's own, said for gpuenv.
SIGNATURES: tuple[tuple[str, int, str, str], ...] = (
    (r"libnvidia-ml\.so\.1: cannot open shared object file", 5, "the host's driver libraries are not visible",
     "repair the host's driver until `nvidia-smi` works on the host, then `sudo ldconfig`; replace a snap Docker "
     "with Docker from apt; `gpuenv doctor` checks both"),
    (r"Failed to initialize NVML: Unknown Error", 8, "the container lost its GPUs (systemctl daemon-reload)",
     "`sudo nvidia-ctk system create-dev-char-symlinks --create-all`, then `gpuenv up` to start the environment "
     "again; or Docker's cgroupfs driver"),
    (r"Driver/library version mismatch", 9, "the host's driver was upgraded without a reboot",
     "reboot the host (its kernel module is older than the driver's libraries); hold the driver packages"),
    (r"CUDA driver version is insufficient|driver on your system is too old|cudaErrorInsufficientDriver", 11,
     "the host's driver is older than the framework's CUDA",
     "`gpuenv plan --driver <the host's driver>` picks a build for an older CUDA; or upgrade the host's driver"),
    (r"Error 804|forward compatibility was attempted on non supported HW", 12,
     "CUDA forward-compatibility libraries on a GPU that does not support them",
     "take the image's cuda-compat directory off LD_LIBRARY_PATH (it works on data-center GPUs only), or "
     "upgrade the host's driver"),
    (r"Error 802|system not yet initialized", 13, "an NVSwitch host without Fabric Manager",
     "install and start nvidia-fabricmanager of the driver's exact version on the host"),
    (r"busy or unavailable", 14, "the GPU is in exclusive-process mode and busy",
     "use another GPU, or stop the process holding it (`nvidia-smi` on the host shows it)"),
    (r"Failed to initialize NVML: Insufficient Permissions", 16, "SELinux denies the GPU device nodes",
     "`gpuenv up` adds `--security-opt label=disable` on SELinux hosts; by hand add it, or NVIDIA's SELinux "
     "policy module"),
    (r"libcuda\.so(\.1)?: cannot open shared object file|Found no NVIDIA driver|Could not find cuda drivers|"
     r"no CUDA-capable device is detected|CUDA_ERROR_NO_DEVICE", 20, "the container was started without the GPUs",
     "`gpuenv up` starts it with the host's GPU mode; run `gpuenv doctor` to see that mode, then `gpuenv up`; "
     "by hand: `docker run --gpus all`, or a device reservation in compose"),
    (r"Could not load dynamic library '?lib(cudnn|cudart|cublas|cufft|curand|cusolver|cusparse)|"
     r"lib(cudnn|cudart|cublas|cufft|curand|cusolver|cusparse)\w*\.so[.\d]*: cannot open shared object file", 23,
     "CUDA or cuDNN libraries are missing or of the wrong version",
     "build on the CUDA and cuDNN the framework was made for (`gpuenv plan` names the base), or use the pip CUDA "
     "wheels; then `gpuenv build`"),
    (r"Cannot dlopen some GPU libraries", 24, "TensorFlow skipped the GPU: a CUDA library is missing",
     "use the CUDA and cuDNN TensorFlow was tested with (`gpuenv plan tensorflow==X` picks them); "
     "TF_CPP_MAX_VLOG_LEVEL=3 names the missing library"),
    (r"Torch not compiled with CUDA enabled", 25, "a CPU-only PyTorch wheel in a GPU environment",
     "install torch from the CUDA index (`gpuenv plan` picks the +cuXXX wheel); a later `pip install` of a "
     "package that needs torch may have replaced it"),
    (r"no kernel image is available|is not compatible with the current PyTorch installation", 26,
     "the build has no code for the GPU's architecture",
     "pick a build whose architecture list covers the GPU: `gpuenv matrix <framework> --gpu-name '<GPU>'`"),
    (r"minimum required Cuda capability", 27, "TensorFlow refuses a GPU of low compute capability",
     "use a TensorFlow build whose minimum capability the GPU meets: `gpuenv matrix tensorflow --gpu-name '<GPU>'`"),
    (r"Compile (MXNet )?with USE_CUDA=1", 28, "a CPU MXNet package, or one for another CUDA",
     "install mxnet-cu<XY> for the image's CUDA (`gpuenv plan` picks it)"),
)
FAMILY_ROWS = {("mxnet", 23): 28}        # MXNet missing its CUDA runtime is the wrong -cuXXX package (row 28)
CPU_BUILD_ROW = {"torch": 25, "mxnet": 28}
ARCH_ROW = {"tensorflow": 27}            # other families: 26
JIT_FAMILIES = {"cupy": "CuPy compiles its kernels for the GPU at run time"}


@dataclass(frozen=True)
class Cause:
    row: int                             # the row of research/failure-modes.md
    title: str
    fix: str


@dataclass(frozen=True)
class Row:
    check: str                           # driver, import, cuda-build, sees-gpus, computes, arch, finishes
    subject: str                         # "torch", "torch on GPU 0 (NVIDIA H200)"
    status: str                          # ok, fail, skip
    detail: str
    causes: tuple[int, ...] = ()         # failure-modes rows, for a failed row


@dataclass(frozen=True)
class Verdict:
    rows: tuple[Row, ...]
    causes: tuple[Cause, ...]
    cpu_only: bool

    @property
    def ok(self) -> bool:
        return all(row.status != "fail" for row in self.rows)

    @property
    def note(self) -> str:
        return CPU_NOTE if self.cpu_only else ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "cpu_only": self.cpu_only, "note": self.note,
                "checks": [{"check": r.check, "subject": r.subject, "status": r.status, "detail": r.detail,
                            "causes": list(r.causes)} for r in self.rows],
                "causes": [{"row": c.row, "title": c.title, "fix": c.fix} for c in self.causes]}


def program_text() -> str:
    return resources.files("gpuenv.run").joinpath("verify_program.py").read_text()


def parse_output(stdout: str) -> dict[str, Any]:
    """The report on the program's marked line (the last one, wherever it starts in the line)."""
    marked = [line[line.index(MARK) + len(MARK):] for line in stdout.splitlines() if MARK in line]
    if not marked:
        tail = "\n".join(stdout.strip().splitlines()[-10:]) or "(nothing)"
        raise GpuenvError(f"the verification program gave no result; the end of its output:\n{tail}",
                          "check that the environment's python runs: docker exec -it CONTAINER python3 -c 'print(1)'")
    try:
        result = json.loads(marked[-1])
    except ValueError as exc:
        raise GpuenvError(f"the verification program's result is not JSON ({exc}): {marked[-1][:200]}") from None
    if not isinstance(result, dict) or "frameworks" not in result:
        raise GpuenvError(f"the verification program's result has no frameworks: {marked[-1][:200]}")
    return result


# --- causes ---------------------------------------------------------------------------------------------

def texts_of(report: dict[str, Any]) -> list[str]:
    """Every error and log text of one family's report."""
    found = [e.get("error") or "" for e in report.get("errors") or []]
    found += [c.get("error") or "" for c in report.get("compute") or []]
    found += [report.get(key) or "" for key in ("gpu_error", "log", "ended", "not_run")]
    return [text for text in found if text]


def environment_texts(env: dict[str, Any]) -> list[str]:
    smi = env.get("nvidia_smi") or {}
    return [t for t in ((env.get("libcuda") or {}).get("error"), smi.get("output") if smi.get("ran") else None) if t]


def matched_rows(texts: Sequence[str], family: str = "") -> list[int]:
    rows = []
    for pattern, row, _, _ in SIGNATURES:
        if any(re.search(pattern, text) for text in texts):
            row = FAMILY_ROWS.get((family, row), row)
            if row not in rows:
                rows.append(row)
    return rows


def driver_row(env: dict[str, Any]) -> Optional[int]:
    """Row 20 (no GPU given: no /dev/nvidia* either) or 5 (nodes but no driver library) when libcuda.so.1
    does not load in the container; then no driver-version cause (11, 12) can hold, whatever cudart said."""
    if (env.get("libcuda") or {}).get("ok", True):
        return None
    return 5 if env.get("dev_nodes") else 20


def causes_for(texts: Sequence[str], family: str, env: dict[str, Any], fallback: Optional[int]) -> tuple[int, ...]:
    rows = matched_rows(texts, family)
    driver = driver_row(env)
    if driver is not None:
        rows = [driver] + [r for r in rows if r not in (5, 11, 12, 20)]
    if not rows and fallback is not None:
        rows = [fallback]
    return tuple(rows)


def cause(row: int) -> Cause:
    for _, number, title, fix in SIGNATURES:
        if number == row:
            return Cause(row, title, fix)
    raise KeyError(row)


# --- the checks -----------------------------------------------------------------------------------------

LOG_PREFIX = re.compile(r"^.{0,80}?\.(cc|h):\d+\]\s*")     # C++ log lines: "I0000 00:00:17.7  3073 cudart_stub.cc:31] "


def brief(text: str, width: int = 200) -> str:
    """The line of an error text that says most: one a signature knows, else the last one."""
    lines = [LOG_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]
    known = [line for line in lines if any(re.search(p, line) for p, *_ in SIGNATURES)]
    line = (known or lines or [""])[-1 if not known else 0]
    return line if len(line) <= width else line[: width - 3] + "..."


def gpu_subject(family: str, gpu: HostGpu) -> str:
    return f"{family} on GPU {gpu[0]} ({gpu[1]}, {gpu[2] or 'cc unknown'})"


class Judge:
    """The rows of one family's report."""

    def __init__(self, family: str, report: dict[str, Any], env: dict[str, Any], host_gpus: Sequence[HostGpu],
                 planned: Sequence[str]) -> None:
        self.family, self.report = family, report
        self.host_gpus, self.planned = list(host_gpus), list(planned)
        self.env = env if host_gpus else {}          # in CPU mode the missing driver is no cause
        self.texts = texts_of(report) + environment_texts(self.env)
        self.rows: list[Row] = []

    def add(self, check: str, subject: str, status: str, detail: str, fallback: Optional[int] = None,
            by_text: bool = True) -> None:
        causes: tuple[int, ...] = ()
        if status == "fail":
            causes = causes_for(self.texts if by_text else [], self.family, self.env if by_text else {}, fallback)
        self.rows.append(Row(check, subject, status, detail, causes))

    def judge(self) -> list[Row]:
        if not self.imports():
            return self.rows
        self.cuda_build()
        if self.host_gpus:
            self.sees_gpus()
        self.computes_cpu()
        if self.host_gpus:
            self.computes_gpus()
            self.archs()
        self.finishes()
        return self.rows

    def imports(self) -> bool:
        report, family = self.report, self.family
        if report.get("imported"):
            self.add("import", family, "ok", f"{report.get('version')}, in {report.get('import_s')} s")
            return True
        errors = [e.get("error", "") for e in report.get("errors") or [] if e.get("stage") == "import"]
        stopped = "did not finish importing" if report.get("timed_out_s") or report.get("ended") else "no report"
        said = errors[0] if errors else report.get("not_run") or stopped
        missing = re.search(r"No module named '?%s'?$" % re.escape(report.get("module") or family), said)
        self.add("import", family, "fail", "not installed" if missing else brief(said))
        self.finishes()
        return False

    def cuda_build(self) -> None:
        report, built = self.report, self.report.get("cuda_build")
        what = ", ".join(f"{name} {report[k]}" for k, name in (("cuda", "CUDA"), ("cudnn", "cuDNN"))
                         if report.get(k)) or "CUDA"
        if built is None:
            self.add("cuda-build", self.family, "skip", "the build does not say")
        elif not self.host_gpus:
            self.add("cuda-build", self.family, "skip", f"built with {what}" if built else "a CPU-only build")
        elif built:
            self.add("cuda-build", self.family, "ok", f"built with {what}")
        else:
            self.add("cuda-build", self.family, "fail", "a CPU-only build", CPU_BUILD_ROW.get(self.family), False)

    def computes_cpu(self) -> None:
        entry = next((c for c in self.report.get("compute") or [] if c.get("device") == "cpu"), None)
        self.computation(f"{self.family} on the CPU", entry)

    def computation(self, subject: str, entry: Optional[dict[str, Any]]) -> None:
        if entry is None:
            return
        if entry.get("skipped"):
            self.add("computes", subject, "skip", entry["skipped"])
        elif entry.get("ok"):
            self.add("computes", subject, "ok", f"256x256 A.B + A exact, {entry.get('ms')} ms")
        elif entry.get("error"):
            self.add("computes", subject, "fail", brief(entry["error"]))
        elif "wrong" in entry:
            self.add("computes", subject, "fail", f"{entry['wrong']} of 65536 cells wrong")
        else:
            self.add("computes", subject, "fail", "did not finish")

    def sees_gpus(self) -> None:
        seen, wanted = self.report.get("gpus") or [], len(self.host_gpus)
        names = ", ".join(f"{g.get('name') or 'GPU'} ({g.get('cc') or '?'})" for g in seen)
        if len(seen) == wanted:
            self.add("sees-gpus", self.family, "ok", f"{len(seen)} of {wanted}: {names}")
            return
        why = self.report.get("gpu_error") or self.known_line() or self.visibility()
        detail = f"{len(seen)} of {wanted}" + (f": {names}" if names else "") + (f"; {brief(why)}" if why else "")
        built = self.report.get("cuda_build")
        fallback = CPU_BUILD_ROW.get(self.family) if built is False else 20
        self.add("sees-gpus", self.family, "fail", detail, fallback)

    def known_line(self) -> str:
        """The first line of the family's texts that a signature knows (TensorFlow logs, it does not raise)."""
        lines = [line for text in self.texts for line in text.splitlines()]
        return next((line for line in lines if matched_rows([line])), "")

    def visibility(self) -> str:
        variables = (self.env.get("variables") or {})
        shown = [f"{k}={variables[k]}" for k in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES") if variables.get(k)]
        return ", ".join(shown)

    def computes_gpus(self) -> None:
        names = {g.get("index"): g for g in self.report.get("gpus") or []}
        for entry in self.report.get("compute") or []:
            device = entry.get("device", "")
            if device.startswith("gpu:"):
                gpu = names.get(int(device[4:]), {})
                self.computation(f"{self.family} on GPU {device[4:]} ({gpu.get('name') or 'GPU'})", entry)

    def archs(self) -> None:
        own = self.report.get("arch_list")
        for gpu in self.host_gpus:
            subject = gpu_subject(self.family, gpu)
            if not gpu[2]:
                self.add("arch", subject, "skip", "the GPU's compute capability is unknown")
            elif own:
                self.arch_row(subject, gpu, own, planned=False)
            elif self.family in JIT_FAMILIES:
                self.add("arch", subject, "skip", JIT_FAMILIES[self.family])
            elif self.planned:
                self.arch_row(subject, gpu, self.planned, planned=True)
            else:
                self.add("arch", subject, "skip", "neither the build nor the image lists its architectures")

    def arch_row(self, subject: str, gpu: HostGpu, archs: Sequence[str], planned: bool) -> None:
        whose = "the image's planned" if planned else "the build's"
        found = covering(archs, gpu[2])
        if found:
            self.add("arch", subject, "ok", f"{found} of {whose} {', '.join(archs)}")
            return
        detail = f"{gpu[1]} is {gpu[2]}; {whose} architectures: {', '.join(archs)}"
        if planned and self.computed_on(gpu[0]):
            # the plan is not the framework's own list, and the framework computes there: that decides.
            # (Not so for the build's own list: cuBLAS may carry the GPU's code where the framework does not.)
            self.add("arch", subject, "ok", detail + "; it computes there all the same")
            return
        self.add("arch", subject, "fail", detail, ARCH_ROW.get(self.family, 26), False)

    def computed_on(self, position: int) -> bool:
        index = [g[0] for g in self.host_gpus].index(position)
        entry: dict[str, Any] = next((c for c in self.report.get("compute") or []
                                      if c.get("device") == f"gpu:{index}"), {})
        return bool(entry.get("ok"))

    def finishes(self) -> None:
        report, stage = self.report, self.report.get("stage") or "start"
        if report.get("timed_out_s"):
            jit = (" (a build without code for the GPU compiles PTX on first use, which can take long)"
                   if stage.startswith("compute gpu") else "")
            limit = report["timed_out_s"]
            self.add("finishes", self.family, "fail", f"no answer within {limit:g} s, during {stage}{jit}")
        elif report.get("ended"):
            self.add("finishes", self.family, "fail", f"{report['ended']} during {stage}")


def driver_rows(env: dict[str, Any]) -> list[Row]:
    libcuda = env.get("libcuda") or {}
    nodes = ", ".join(env.get("dev_nodes") or []) or "no /dev/nvidia* nodes"
    if not libcuda:
        return [Row("driver", "libcuda.so.1", "skip", "the program did not report on it")]
    if libcuda.get("ok"):
        return [Row("driver", "libcuda.so.1", "ok", f"CUDA {libcuda.get('cuda')} from {libcuda.get('path')}; {nodes}")]
    capabilities = (env.get("variables") or {}).get("NVIDIA_DRIVER_CAPABILITIES") or ""
    lacking = (f"; NVIDIA_DRIVER_CAPABILITIES={capabilities} lacks compute"
               if capabilities and not {"compute", "all"} & set(capabilities.split(",")) else "")
    return [Row("driver", "libcuda.so.1", "fail",
                f"does not load: {brief(libcuda.get('error') or '')}; {nodes}{lacking}", causes_for([], "", env, None))]


def evaluate(result: dict[str, Any], families: Sequence[str], host_gpus: Sequence[HostGpu],
             planned_archs: Sequence[str]) -> Verdict:
    """The checks of the program's report (parse_output) against the GPUs the host gave the environment
    (none: CPU mode) and the architectures its image was planned for (its io.gpuenv.gpu-archs label)."""
    env = result.get("environment") or {}
    reports = {r.get("family"): r for r in result.get("frameworks") or []}
    rows = driver_rows(env) if host_gpus else []
    if not families:                     # an environment of no framework: that its Python runs is the check
        rows.append(_python_row(env))
    for family in families:
        report = reports.get(family) or {"family": family, "not_run": "the program did not report on it"}
        rows += Judge(family, report, env, host_gpus, planned_archs).judge()
    rows_seen: list[int] = []
    for row in rows:
        rows_seen += [n for n in row.causes if n not in rows_seen]
    return Verdict(tuple(rows), tuple(cause(n) for n in rows_seen), not host_gpus)


def _python_row(env: dict[str, Any]) -> Row:
    version = env.get("python")
    if not version:
        return Row("python", "python3", "fail", "the program did not say which Python ran it")
    return Row("python", str(env.get("executable") or "python3"), "ok",
               f"Python {version} runs; the environment asks no framework, so there is nothing more to check")


def table(verdict: Verdict) -> Table:
    colours = {"ok": "green", "fail": "bold red", "skip": "dim"}
    out = Table("check", "subject", "status", "detail")
    for row in verdict.rows:
        status = colours.get(row.status, "")
        out.add_row(row.check, escape(row.subject), f"[{status}]{row.status}[/{status}]", escape(row.detail))
    return out
