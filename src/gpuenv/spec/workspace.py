"""Which host folders may be a workspace: the folder is bind-mounted read-write into the container,
whose user may be root (`workspace.user = "0:0"`), so a folder of the system gives the container the host.

Refused, after symlinks and `..` are resolved, unless `workspace.allow_system_folder = true`:
the filesystem root; a system folder (/etc, /usr, /var, /boot, /proc, /sys, /dev, /root, /run, /bin,
/sbin, /lib*, /snap) or anything inside one; a folder holding every user's files (/home, /tmp); your
home folder itself or a folder above it; a folder holding the Docker engine's socket. Any other folder
inside your home is fine, even when the home itself lies in a system folder (/var/lib/jenkins).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Optional

ALLOW_KEY = "workspace.allow_system_folder"
SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
                  "/sbin", "/snap", "/sys", "/usr", "/var")
SHARED_FOLDERS = ("/home", "/tmp")
SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
HOME_SOCKETS = (".docker/run/docker.sock", ".docker/desktop/docker.sock")


def refusal(folder: Path, home: Optional[Path] = None) -> Optional[str]:
    """Why `folder` must not be a workspace (None: it may be), in words that name the folder."""
    real = Path(os.path.realpath(folder))
    home = Path(os.path.realpath(home or invoking_home()))
    if real == Path("/"):
        return "/ is the filesystem root"
    socket = next((s for s in engine_sockets(home) if _inside(Path(s), real)), None)
    if socket:
        return f"{real} holds the Docker engine's socket {socket}"
    if real != home and _inside(real, home):
        return None
    return _system(real) or _shared(real, home)


def _system(real: Path) -> Optional[str]:
    system = next((s for s in SYSTEM_FOLDERS if _inside(real, Path(s))), None)
    if system is None:
        return None
    return f"{real} is a system folder" if str(real) == system else f"{real} is inside the system folder {system}"


def _shared(real: Path, home: Path) -> Optional[str]:
    if str(real) in SHARED_FOLDERS:
        return f"{real} holds every user's files"
    if _inside(home, real):
        return f"{real} is your home folder" if real == home else f"{real} holds your home folder {home}"
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def invoking_home() -> Path:
    """The home of the person who runs gpuenv: under sudo, the caller's (sudo sets HOME to root's). The
    one rule for it; host.user.home() (ssh keys) asks here."""
    sudo_uid = os.environ.get("SUDO_UID", "")
    if os.getuid() == 0 and sudo_uid.isdigit() and sudo_uid != "0":
        try:
            return Path(pwd.getpwuid(int(sudo_uid)).pw_dir)
        except KeyError:
            pass
    return Path.home()


def engine_sockets(home: Path) -> list[str]:
    """The Docker engine's socket files, resolved: DOCKER_HOST's, and the system's and Docker Desktop's
    in `home` that exist."""
    host = os.environ.get("DOCKER_HOST", "")
    named = [host[len("unix://"):]] if host.startswith("unix://") else []
    found = [str(home / s) for s in HOME_SOCKETS] + list(SOCKETS)
    return [os.path.realpath(s) for s in named + [s for s in found if os.path.exists(s)]]
