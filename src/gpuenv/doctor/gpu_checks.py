"""Checks of the NVIDIA driver, the GPUs and the GPU path into containers (failure-modes.md rows 1, 2, 5,
7, 8, 9, 12, 13, 14, 16, 17, 19)."""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from gpuenv.host.engine import loose_version
from gpuenv.doctor.finding import Context, Finding, check

TOOLKIT_LIST = "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list"
TOOLKIT_KEY = "https://nvidia.github.io/libnvidia-container/gpgkey"
TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container/stable/rpm/nvidia-container-toolkit.repo"
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"


def install_toolkit(ctx: Context) -> tuple[str, ...]:
    """NVIDIA's install steps for the Container Toolkit, then the runtime registered with Docker."""
    return ctx.by_family(
        [f"curl -fsSL {TOOLKIT_KEY} | {ctx.sudo('gpg --dearmor -o ' + KEYRING)}",
         f"curl -fsSL {TOOLKIT_LIST} | sed 's#deb https://#deb [signed-by={KEYRING}] https://#g' | "
         f"{ctx.sudo('tee /etc/apt/sources.list.d/nvidia-container-toolkit.list')}",
         ctx.sudo("apt-get update"), ctx.sudo("apt-get install -y nvidia-container-toolkit")],
        [f"curl -fsSL {TOOLKIT_REPO} | {ctx.sudo('tee /etc/yum.repos.d/nvidia-container-toolkit.repo')}",
         ctx.sudo("dnf install -y nvidia-container-toolkit")],
    ) + (ctx.sudo("nvidia-ctk runtime configure --runtime=docker"), ctx.sudo("systemctl restart docker"))


@check("host-driver", "an NVIDIA driver runs the GPUs")
def host_driver(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if report.driver.ok or report.probe_error or (not report.system.nvidia_pci and report.kernel_module is None):
        return None
    if "mismatch" in (report.driver.error or "").lower():
        return None     # driver-mismatch says it better
    seen = (f"{len(report.system.nvidia_pci)} NVIDIA display/3D controller(s) on the PCI bus"
            if report.system.nvidia_pci else f"kernel module {report.kernel_module} is loaded")
    return Finding("host-driver", "error", f"the NVIDIA driver does not answer: {report.driver.error}",
                   f"{seen}, but NVML and nvidia-smi gave no answer",
                   ctx.by_family([ctx.sudo("ubuntu-drivers install   # Ubuntu; Debian: apt-get install nvidia-driver"),
                                  ctx.sudo("reboot")],
                                 [ctx.sudo("dnf module install -y nvidia-driver:latest-dkms   # CUDA repository"),
                                  ctx.sudo("reboot")]),
                   "on a shared server the driver is its administrator's: ask before installing one. Until then "
                   "gpuenv plans CPU-only environments.", 5)


@check("driver-mismatch", "the loaded driver matches its libraries")
def driver_mismatch(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    module, library = report.kernel_module, report.files.ml_version or report.driver.version
    said = "mismatch" in (report.driver.error or "").lower()
    if not said and not (module and library and module != library):
        return None
    detail = (f"kernel module {module} (/proc/driver/nvidia/version), user-space library {library} "
              f"(libnvidia-ml.so.1)" if module and library else report.driver.error or "")
    return Finding("driver-mismatch", "error",
                   "Driver/library version mismatch: the driver was upgraded, but the old kernel module is "
                   "still loaded",
                   detail,
                   (ctx.sudo("reboot"),) + ctx.by_family(
                       [ctx.sudo("apt-mark hold $(dpkg-query -W -f='${Package}\\n' '*nvidia*' | tr '\\n' ' ')")],
                       [ctx.sudo("dnf install -y 'dnf-command(versionlock)'"),
                        ctx.sudo("dnf versionlock add 'nvidia-*'")]),
                   "holding the packages stops unattended upgrades from doing it again.", 9)


@check("driver-libraries", "the driver's libraries are in the linker cache")
def driver_libraries(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if report.kernel_module is None or report.probe_error:
        return None
    missing = [n for n in ("libcuda.so.1", "libnvidia-ml.so.1") if report.files.library(n) is None]
    branch = report.kernel_module.split(".")[0]
    if not missing or report.files.ml_version not in (None, report.kernel_module):
        return None
    return Finding("driver-libraries", "error",
                   f"the kernel module {report.kernel_module} is loaded, but {' and '.join(missing)} of that "
                   f"version are not in the linker cache",
                   "`ldconfig -p` and the real files its entries point to",
                   (ctx.sudo("ldconfig"),) + ctx.by_family(
                       [ctx.sudo(f"apt-get install --reinstall -y libnvidia-compute-{branch}")],
                       [ctx.sudo("dnf reinstall -y nvidia-driver-cuda-libs")]),
                   "a half-installed driver, or a Docker whose confinement hides them (snap).", 5)


@check("compat-libs", "libcuda is the driver's own, not cuda-compat's")
def compat_libs(ctx: Context) -> Optional[Finding]:
    libcuda = ctx.report.files.libcuda
    if not libcuda or "/compat/" not in libcuda:
        return None
    return Finding("compat-libs", "warning",
                   f"the linker finds libcuda.so.1 in a CUDA forward-compatibility folder ({libcuda}): on GPUs "
                   "other than data-center ones CUDA fails with Error 804",
                   "`ldconfig -p` resolves libcuda.so.1 under compat/",
                   ("grep -rl compat /etc/ld.so.conf.d/", ctx.sudo("rm /etc/ld.so.conf.d/<the file it names>"),
                    ctx.sudo("ldconfig")), "", 12)


@check("gpu-toolkit", "the NVIDIA Container Toolkit is installed")
def gpu_toolkit(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if not report.driver.ok or not report.engine.ok or report.mode.name in ("toolkit", "cdi"):
        return None
    using = f"gpuenv uses the '{report.mode.name}' mode instead" if report.mode.name != "none" else \
        "no other way into containers works either"
    return Finding("gpu-toolkit", "warning" if report.mode.name == "devices" else "error",
                   f"the NVIDIA Container Toolkit is not installed: `docker run --gpus`, compose GPU reservations "
                   f"and IDE interpreters fail with 'could not select device driver'; {using}",
                   "no nvidia runtime in `docker info`, no nvidia-container-runtime-hook on the engine's host",
                   install_toolkit(ctx), "", 1)


@check("toolkit-runtime", "the nvidia runtime is registered with Docker")
def toolkit_runtime(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if not report.engine.ok or not report.system.toolkit.installed or "nvidia" in report.engine.runtimes:
        return None
    return Finding("toolkit-runtime", "warning",
                   "the toolkit is installed but Docker has no 'nvidia' runtime: `--runtime=nvidia` and compose's "
                   "`runtime: nvidia` fail with 'unknown or invalid runtime name: nvidia' (--gpus still works)",
                   f"`docker info` runtimes: {', '.join(report.engine.runtimes) or 'none'}",
                   (ctx.sudo("nvidia-ctk runtime configure --runtime=docker"), ctx.sudo("systemctl restart docker")),
                   "", 2)


@check("toolkit-cgroup-v2", "the toolkit supports cgroup v2")
def toolkit_cgroup_v2(ctx: Context) -> Optional[Finding]:
    system = ctx.report.system
    version = system.toolkit.cli_version
    if system.cgroup != "v2" or not version or loose_version(version) >= Version("1.8"):
        return None
    return Finding("toolkit-cgroup-v2", "error",
                   f"libnvidia-container {version} predates cgroup v2 support (1.8): GPU containers fail with "
                   "'cgroup subsystem devices not found'",
                   "/sys/fs/cgroup is cgroup2fs; `nvidia-container-cli --version` says " + version,
                   ctx.by_family([ctx.sudo("apt-get update"),
                                  ctx.sudo("apt-get install -y --only-upgrade nvidia-container-toolkit "
                                           "libnvidia-container1 libnvidia-container-tools")],
                                 [ctx.sudo("dnf upgrade -y nvidia-container-toolkit libnvidia-container1 "
                                           "libnvidia-container-tools")]) + (ctx.sudo("systemctl restart docker"),),
                   "", 7)


@check("nvml-unknown-error", "GPUs survive `systemctl daemon-reload`")
def nvml_unknown_error(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if report.engine.cgroup_driver != "systemd" or report.mode.name not in ("toolkit", "cdi"):
        return None
    nodes = [d for d in report.files.devices if d.path.startswith("/dev/nvidia")]
    missing = [d.path for d in nodes if f"{d.major}:{d.minor}" not in report.files.char_links]
    if not missing:
        return None
    rule = ('ACTION=="add", DEVPATH=="/bus/pci/drivers/nvidia", '
            'RUN+="/usr/bin/nvidia-ctk system create-dev-char-symlinks --create-all"')
    return Finding("nvml-unknown-error", "warning",
                   "long-running GPU containers will lose their GPUs ('Failed to initialize NVML: Unknown Error') "
                   "the next time systemd reloads: the systemd cgroup driver re-applies device rules by /dev/char "
                   "links, and the NVIDIA devices have none",
                   f"cgroup driver systemd; no /dev/char link for {', '.join(missing[:4])}",
                   (ctx.sudo("nvidia-ctk system create-dev-char-symlinks --create-all"),
                    f"echo '{rule}' | {ctx.sudo('tee /lib/udev/rules.d/71-nvidia-dev-char.rules')}"),
                   "the udev rule makes the links again after each boot.", 8)


@check("selinux-enforcing", "SELinux lets containers use the GPU")
def selinux_enforcing(ctx: Context) -> Optional[Finding]:
    if ctx.report.system.selinux != "enforcing" or not ctx.report.driver.ok:
        return None
    return Finding("selinux-enforcing", "warning",
                   "SELinux is enforcing: GPU containers fail with 'Failed to initialize NVML: Insufficient "
                   "Permissions' unless the device labels allow it",
                   "/sys/fs/selinux/enforce is 1",
                   ("docker run --security-opt label=disable ...   # per container",
                    "# compose.yaml: security_opt: [label=disable]"),
                   "", 16)


@check("cdi-spec-stale", "the CDI spec matches the driver")
def cdi_spec_stale(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    stale = [s for s in report.system.cdi_specs if s.kind == "nvidia.com/gpu" and s.driver and report.driver.version
             and s.driver != report.driver.version]
    if not stale:
        return None
    return Finding("cdi-spec-stale", "warning",
                   f"the CDI spec {stale[0].path} names driver {stale[0].driver}, but the driver is "
                   f"{report.driver.version}: CDI devices fail with 'unresolvable CDI devices'",
                   "library paths in the spec carry the driver version",
                   (ctx.sudo(f"nvidia-ctk cdi generate --output={stale[0].path}"),), "", 17)


@check("gpu-exclusive-busy", "GPUs in exclusive mode are free")
def gpu_exclusive_busy(ctx: Context) -> Optional[Finding]:
    busy = [g for g in ctx.report.driver.gpus if g.compute_mode.startswith("Exclusive") and g.processes]
    if not busy:
        return None
    free = [str(g.index) for g in ctx.report.driver.gpus if g not in busy]
    return Finding("gpu-exclusive-busy", "warning",
                   f"GPU {', '.join(str(g.index) for g in busy)} is in {busy[0].compute_mode} mode and already used "
                   "by another process: a second one gets 'all CUDA-capable devices are busy or unavailable'",
                   f"compute mode {busy[0].compute_mode}; processes: "
                   + ", ".join(f"{p.pid} {p.name}" for g in busy for p in g.processes),
                   (f"gpu.devices = [{', '.join(free)}]   # in gpuenv.toml: the free GPUs" if free else
                    "wait for the other process, or ask its owner",),
                   "", 14)


@check("fabric-manager", "NVSwitch fabric is up")
def fabric_manager(ctx: Context) -> Optional[Finding]:
    pending = [g for g in ctx.report.driver.gpus if g.fabric_state not in ("", "N/A", "Completed")]
    if not pending:
        return None
    branch = (ctx.report.driver.version or "").split(".")[0] or "<driver branch>"
    return Finding("fabric-manager", "error",
                   f"the NVSwitch fabric is '{pending[0].fabric_state}': CUDA fails with 'Error 802: system not yet "
                   "initialized' until NVIDIA Fabric Manager runs",
                   f"nvidia-smi fabric state of GPU {pending[0].index}",
                   ctx.by_family([ctx.sudo(f"apt-get install -y nvidia-fabricmanager-{branch}")],
                                 [ctx.sudo(f"dnf module install -y nvidia-driver:{branch}/fm")])
                   + (ctx.sudo("systemctl enable --now nvidia-fabricmanager"),), "", 13)


@check("wsl-gpu", "WSL 2 passes the GPU through")
def wsl_gpu(ctx: Context) -> Optional[Finding]:
    system = ctx.report.system
    if not system.wsl or system.wsl_libcuda:
        return None
    return Finding("wsl-gpu", "error",
                   "this is WSL 2 but /usr/lib/wsl/lib has no libcuda.so: 'WSL environment detected but no adapters "
                   "were found'", "/dev/dxg exists; /usr/lib/wsl/lib lacks libcuda.so",
                   ("# in Windows: install the current NVIDIA driver for Windows, then in PowerShell:", "wsl --update",
                    "wsl --shutdown"), "", 19)


@check("remote-probe", "the remote engine's host can be observed")
def remote_probe(ctx: Context) -> Optional[Finding]:
    error = ctx.report.probe_error
    if not error:
        return None
    return Finding("remote-probe", "warning", error,
                   f"the engine is remote ({ctx.report.engine.endpoint}); its host is probed through a container",
                   ("docker pull busybox   # or: export GPUENV_PROBE_IMAGE=<an image there with sh>",),
                   "until then gpuenv does not know that host's driver and GPUs.")

