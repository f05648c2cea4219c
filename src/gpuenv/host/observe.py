"""What a host shows: named shell observations, run here, inside a container on a remote engine's host,
or replayed from a recording.

Every fact gpuenv knows about a host's driver, devices and system comes from one of OBSERVATIONS: a
name (the file it is recorded as) and a POSIX sh command. The same commands run

  - on this host (`observe_local`, concurrently),
  - on the host of a remote engine, all in one short-lived container that sees that host's root at
    /host and runs them there through chroot (host/remote.py),
  - or not at all: `load_recording(DIR)` reads what a real host printed (tests, fixtures).

The parsers in host/ only ever see `Observations`, so the three sources cannot drift apart.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional

LDCONFIG = "{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; }"
# the PIDs of every process nvidia-smi lists on any GPU (compute and graphics)
GPU_PIDS = "nvidia-smi -q -x 2>/dev/null | sed -n 's:.*<pid>\\([0-9]*\\)</pid>.*:\\1:p' | sort -un"


def processes_command(pids: str = GPU_PIDS) -> str:
    """For each PID that the command `pids` prints, one line "PID UID USER CGROUP CMDLINE": its real UID
    (/proc/PID/status), that UID's user name ("-": none), and its /proc/PID/cgroup and /proc/PID/cmdline
    in hex, so that no byte of either (a newline, a space) can break the line. A PID gone meanwhile is
    left out. Parsed by host/processes.py."""
    return ("for p in $(" + pids + "); do [ -r /proc/$p/status ] || continue; "
            "u=$(sed -n 's/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p' /proc/$p/status); "
            "n=$(getent passwd \"$u\" 2>/dev/null | cut -d: -f1); "
            "printf '%s %s %s %s %s\\n' \"$p\" \"${u:--}\" \"${n:--}\" "
            "\"$(od -An -v -tx1 /proc/$p/cgroup 2>/dev/null | tr -d ' \\n')\" "
            "\"$(od -An -v -tx1 /proc/$p/cmdline 2>/dev/null | tr -d ' \\n')\"; done")


OBSERVATIONS: dict[str, str] = {
    # the driver and GPUs (nvidia-smi: the fallback for NVML, and the only source on a remote host)
    "nvidia-smi-q.xml": "nvidia-smi -q -x",
    # (compute_cap is known from R510 on: an older nvidia-smi is asked again without it)
    "nvidia-smi-query-gpu.csv": "q=index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,"
                                "utilization.gpu,compute_mode,persistence_mode; "
                                "a=$(nvidia-smi --format=csv --query-gpu=$q,compute_cap 2>&1) && printf '%s\\n' \"$a\" "
                                "|| nvidia-smi --format=csv --query-gpu=$q",
    "proc-driver-nvidia-version.txt": "cat /proc/driver/nvidia/version",
    # the driver's user-space files: the linker cache, and where each entry really points
    "ldconfig-p.txt": LDCONFIG,
    "ldconfig-resolved.txt": LDCONFIG + " | sed -n 's/.* => //p' | xargs -r realpath -m --",
    "nvidia-tools.txt": 'd=$(dirname "$(command -v nvidia-smi)") && ls -1 "$d"/nvidia-*',
    # device nodes, and their /dev/char links (systemd's cgroup driver needs them: failure row 8)
    "dev-nvidia.txt": "ls -l /dev/nvidia* /dev/nvidia-caps/* 2>&1; echo; ls -l /dev/char 2>&1 | grep -i nvidia; true",
    "pci-nvidia.txt": "grep -il 0x10de /sys/bus/pci/devices/*/vendor | while read f; do "
                      'printf "%s %s\\n" "${f%/vendor}" "$(cat "${f%/vendor}/class")"; done',
    # the system
    "os-release.txt": "cat /etc/os-release",
    "uname.txt": "uname -srm",
    "cgroup-fs.txt": "stat -fc %T /sys/fs/cgroup",
    "selinux.txt": "cat /sys/fs/selinux/enforce",
    "wsl.txt": "ls -1 /dev/dxg /usr/lib/wsl/lib 2>&1",
    # the GPU path into containers: the NVIDIA Container Toolkit, CDI specs, the engine's own config
    "toolkit.txt": "for t in nvidia-container-runtime-hook nvidia-container-toolkit nvidia-ctk "
                   "nvidia-container-runtime nvidia-container-cli; do command -v $t; done; "
                   "nvidia-container-cli --version 2>/dev/null | head -1",
    "cdi-specs.txt": "for f in /etc/cdi/* /var/run/cdi/*; do [ -f \"$f\" ] && printf '### %s\\n' \"$f\" "
                     "&& cat \"$f\"; done; true",
    "daemon-json.txt": "cat /etc/docker/daemon.json",
    "services.txt": "for s in nvidia-persistenced nvidia-fabricmanager docker; do "
                    "printf '%s %s\\n' $s \"$(systemctl is-active $s 2>/dev/null || echo unknown)\"; done",
    "docker-root-df.txt": "df -Pk {docker_root}",
    # who uses the GPUs (gpuenv gpus, devices = "free"): see `processes_command`
    "gpu-processes.txt": "{gpu_processes}",
    # user names of UIDs (environments' owners): name and UID only, no home, shell or GECOS
    "passwd.txt": "getent passwd | cut -d: -f1,3",
}

# observed only where who-holds-which-GPU is asked (gpuenv gpus, devices = "free"), not by every probe
HOLDERS = ("gpu-processes.txt", "passwd.txt")


@dataclass(frozen=True)
class Output:
    """One observation's result: what it printed, and its exit status (None: it did not run)."""

    stdout: str
    returncode: Optional[int] = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Observations:
    """The outputs of one host, by observation name; `where` says which host and how it was seen."""

    outputs: Mapping[str, Output]
    where: str

    def text(self, name: str) -> Optional[str]:
        """The output of a command that succeeded, else None."""
        out = self.outputs.get(name)
        return out.stdout if out is not None and out.ok else None

    def raw(self, name: str) -> str:
        """Whatever the command printed, success or not ("" when it did not run)."""
        out = self.outputs.get(name)
        return out.stdout if out is not None else ""


def commands(names: Optional[Iterable[str]] = None, docker_root: str = "/var/lib/docker") -> dict[str, str]:
    picked = OBSERVATIONS if names is None else {n: OBSERVATIONS[n] for n in names}
    return {name: cmd.replace("{docker_root}", _sh_quote(docker_root)).replace("{gpu_processes}", processes_command())
            for name, cmd in picked.items()}


def observe_local(names: Optional[Iterable[str]] = None, docker_root: str = "/var/lib/docker",
                  timeout: float = 10.0) -> Observations:
    """Run the observations on this host, concurrently."""
    todo = commands(names, docker_root)
    with ThreadPoolExecutor(max_workers=min(16, len(todo) or 1)) as pool:
        done = dict(zip(todo, pool.map(lambda cmd: run_sh(cmd, timeout), todo.values())))
    return Observations(done, "this host")


def run_sh(command: str, timeout: float = 10.0) -> Output:
    env = {**os.environ, "LC_ALL": "C", "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    try:
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout,
                              env=env, errors="replace", stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Output(f"timed out after {timeout:g} s", None)
    except OSError as exc:
        return Output(str(exc), None)
    return Output(done.stdout if done.returncode == 0 else done.stdout + done.stderr, done.returncode)


def load_recording(folder: Path) -> Observations:
    """Read a recorded host: FILE holds a command's output; FILE.err, when present, its stderr and
    `exit N` (the recording script writes it for a command that failed)."""
    outputs = {}
    for name in OBSERVATIONS:
        path = folder / name
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        err = folder / f"{name}.err"
        lines = err.read_text(errors="replace").rstrip("\n").split("\n") if err.exists() else []
        if lines and lines[-1].startswith("exit "):
            outputs[name] = Output(text + "".join(line + "\n" for line in lines[:-1]), int(lines[-1].split()[1]))
        else:
            outputs[name] = Output(text)
    return Observations(outputs, f"the recording {folder.name}")


def save_recording(obs: Observations, folder: Path) -> None:
    """Write observations the way `load_recording` reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, out in obs.outputs.items():
        (folder / name).write_text(out.stdout if out.ok else "")
        if not out.ok:
            (folder / f"{name}.err").write_text(f"{out.stdout.rstrip()}\nexit {out.returncode}\n")


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
