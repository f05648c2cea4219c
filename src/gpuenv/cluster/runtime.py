"""The OCI runtime config (a bundle's config.json) gpuenv writes for runc or crun, and Slurm's `--container`.

Pure: from the image's config (its `docker image inspect`), the environment's settings and the GPU files of
the node, one dict in the OCI runtime-spec 1.0 form. What it gives the container, as `gpuenv up` does:

    the user's UID/GID                 process.user, no capabilities, no-new-privileges
    the workspace                      a read-write bind mount, and the working folder
    HOME                               a tmpfs of the user's (mode 700): the rootfs is read-only and shared
    /dev/shm                           a tmpfs of the spec's shm_size
    the network policy                 proxy, pip index and CA variables; the host's CA bundle mounted read-only
    the GPUs                           the /dev/nvidia* nodes of the job's GPUs (created and allowed in the
                                       device cgroup) and the driver's libraries and tools, read-only: Slurm
                                       adds no GPU to a container, and there is no NVIDIA hook here
    the host's network                 no network namespace (as enroot and Apptainer do): a job's ports are
                                       the node's, its DNS the node's /etc/resolv.conf and /etc/hosts
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from gpuenv.errors import BadInput
from gpuenv.host.driver_files import BIN_DIR, LIB_DIR, DeviceNode, DriverFiles
from gpuenv.host.access import CAPABILITIES
from gpuenv.render.compose import CA_IN_CONTAINER
from gpuenv.run.docker import ImageInspect

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_GPU_NODE = re.compile(r"/dev/nvidia(\d+)$")


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about how it runs (its `docker image inspect` Config)."""

    env: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, info: ImageInspect) -> "ImageConfig":
        config = info.get("Config") or {}
        pairs = (item.partition("=") for item in (config.get("Env") or []) if "=" in item)
        labels = config.get("Labels") or {}
        return cls(tuple((k, v) for k, _, v in pairs), _words(config.get("Entrypoint")),
                   _words(config.get("Cmd")), str(config.get("WorkingDir") or ""),
                   tuple(sorted((str(k), str(v)) for k, v in labels.items())))

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


def _words(value: object) -> tuple[str, ...]:
    """An Entrypoint or Cmd (a list of strings, or null); anything else is none."""
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True)
class Settings:
    """The environment's side: who runs it, what is mounted, its network variables."""

    uid: int
    gid: int
    workspace: str                           # the host folder
    mount: str = "/workspace"                # where it appears inside
    shm_bytes: int = 64 * 1024 ** 2
    env: tuple[tuple[str, str], ...] = ()    # the network policy's variables (render/compose.runtime_environment)
    ca_bundle: str = ""                      # the host's CA bundle to mount at CA_IN_CONTAINER; "": none
    home: str = "/home/gpuenv"

    def to_dict(self) -> dict[str, Any]:
        return {"uid": self.uid, "gid": self.gid, "workspace": self.workspace, "mount": self.mount,
                "shm_bytes": self.shm_bytes, "env": [list(p) for p in self.env], "ca_bundle": self.ca_bundle,
                "home": self.home}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        env = tuple((str(k), str(v)) for k, v in data.get("env") or [])
        return cls(int(data["uid"]), int(data["gid"]), str(data["workspace"]), str(data.get("mount") or "/workspace"),
                   int(data.get("shm_bytes") or 64 * 1024 ** 2), env, str(data.get("ca_bundle") or ""),
                   str(data.get("home") or "/home/gpuenv"))


@dataclass(frozen=True)
class GpuFiles:
    """The node's GPU device nodes to create (those of the job's GPUs and the driver's control nodes) and
    the driver's files to mount; empty: no GPU."""

    devices: tuple[DeviceNode, ...] = ()
    mounts: tuple[tuple[str, str], ...] = ()      # (host file, path inside), read-only
    visible: str = ""                             # the host's GPU indexes given ("0,1"), for the record

    @property
    def any(self) -> bool:
        return bool(self.devices)


def gpu_files(files: DriverFiles, minors: Optional[set[int]]) -> GpuFiles:
    """The device nodes (all GPUs when `minors` is None, else those) and driver files of `files`."""
    nodes = tuple(d for d in files.devices if not (_gpu(d) is not None and minors is not None and _gpu(d) not in minors))
    if not any(_gpu(d) is not None for d in nodes):
        return GpuFiles()
    mounts = [(lib.host_path, f"{LIB_DIR}/{name}") for lib in files.libraries for name in lib.names]
    mounts += [(tool, f"{BIN_DIR}/{tool.rsplit('/', 1)[-1]}") for tool in files.tools]
    given = sorted(m for m in (_gpu(d) for d in nodes) if m is not None)
    return GpuFiles(nodes, tuple(mounts), ",".join(str(m) for m in given))


def _gpu(node: DeviceNode) -> Optional[int]:
    found = _GPU_NODE.search(node.path)
    return int(found.group(1)) if found else None


def process_args(image: ImageConfig, command: Sequence[str]) -> list[str]:
    """The command to run: `command` when given (after the image's entrypoint), else entrypoint + cmd."""
    args = list(image.entrypoint) + (list(command) if command else list(image.cmd))
    if not args:
        raise BadInput("the image names no command to run (no ENTRYPOINT or CMD)", "give one after --: -- python train.py")
    return args


def environment(image: ImageConfig, settings: Settings, gpu: GpuFiles) -> list[tuple[str, str]]:
    """The container's variables: the image's, the network policy's, the GPU's (PATH and LD_LIBRARY_PATH
    get the driver's folders before the image's own)."""
    env = {"PATH": DEFAULT_PATH, **dict(image.env)}       # docker's PATH for an image without one
    env.update(settings.env)
    env["HOME"] = settings.home
    if gpu.any:
        env["NVIDIA_DRIVER_CAPABILITIES"] = CAPABILITIES
        for key, folder in (("PATH", BIN_DIR), ("LD_LIBRARY_PATH", LIB_DIR)):
            env[key] = f"{folder}:{env[key]}" if env.get(key) else folder
    return list(env.items())


def config(image: ImageConfig, settings: Settings, gpu: GpuFiles, command: Sequence[str] = (),
           rootfs: str = "rootfs") -> dict[str, Any]:
    """The config.json of a bundle whose root file system is `rootfs` (relative to the bundle, or absolute)."""
    env = environment(image, settings, gpu)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": settings.uid, "gid": settings.gid},
            "args": process_args(image, command),
            "env": [f"{k}={v}" for k, v in env],
            "cwd": settings.mount,
            "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "",
        "mounts": _mounts(settings, gpu),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "mount")],
            "devices": [_device(d) for d in gpu.devices],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]
                          + [{"allow": True, "type": "c", "major": d.major, "minor": d.minor, "access": "rwm"}
                             for d in gpu.devices]},
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
        "annotations": {"io.gpuenv.gpus": gpu.visible or "none"},
    }


def _mounts(settings: Settings, gpu: GpuFiles) -> list[dict[str, Any]]:
    user = f"uid={settings.uid},gid={settings.gid}"
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "nodev", "mode=1777", f"size={settings.shm_bytes}"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        {"destination": settings.home, "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=700", user]},
        _bind("/etc/resolv.conf", "/etc/resolv.conf", True),
        _bind("/etc/hosts", "/etc/hosts", True),
        _bind(settings.workspace, settings.mount, False),
    ]
    if settings.ca_bundle:
        mounts.append(_bind(settings.ca_bundle, CA_IN_CONTAINER, True))
    mounts += [_bind(host, inside, True) for host, inside in gpu.mounts]
    return mounts


def _bind(source: str, destination: str, readonly: bool) -> dict[str, Any]:
    options = ["rbind", "nosuid", "nodev", "ro" if readonly else "rw"]
    return {"destination": destination, "type": "bind", "source": source, "options": options}


def _device(node: DeviceNode) -> dict[str, Any]:
    return {"path": node.path, "type": "c", "major": node.major, "minor": node.minor, "fileMode": 0o666,
            "uid": 0, "gid": 0}

