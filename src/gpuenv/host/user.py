"""Who the environment is for: the host user's UID/GID, their SSH public key, the CA bundle builds
trust. Facts of this host, read when files are written (render/ itself reads nothing).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from gpuenv.errors import BadInput, GpuenvError
from gpuenv.host import network
from gpuenv.spec.values import is_public_key
from gpuenv.spec.workspace import invoking_home

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


@dataclass(frozen=True)
class SshKey:
    public: str                  # the file mounted as authorized_keys (or a path relative to the output)
    private: Optional[str]       # for the printed ssh command; None when gpuenv does not know it
    text: Optional[str] = None   # a key given inline in the spec, to be written to `public`


def ids(spec_user: str) -> tuple[int, int]:
    """The UID/GID the container runs as: the spec's "UID:GID", else the host user's (under sudo, the
    user who ran sudo)."""
    if spec_user != "host":
        uid_text, gid_text = spec_user.split(":")
        return int(uid_text), int(gid_text)
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and os.environ.get("SUDO_UID", "").isdigit():
        return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", os.environ["SUDO_UID"]))
    return uid, gid


def user_name() -> str:
    try:
        return pwd.getpwuid(ids("host")[0]).pw_name
    except KeyError:
        return str(ids("host")[0])


def project_name(env_name: str, folder: Path) -> str:
    """A compose project name unique per user and folder: two users on one server never collide."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:6]
    name = re.sub(r"[^a-z0-9_-]+", "-", f"{env_name}-{user_name()}".lower()).strip("-_")
    return f"{name}-{digest}"


def ca_bundle(setting: Union[str, list[str]], cache: Optional[Path] = None) -> str:
    """The PEM bundle builds trust: a bundle the environment names (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
    PIP_CERT), else the system's, plus ("auto") any CA in the system's extra CA folder that bundle lacks
    (added without update-ca-certificates); with CA files listed in the spec, the system's plus those."""
    named = [os.environ[n] for n in network.CA_ENV if os.path.isfile(os.environ.get(n, ""))]
    system = next((b for b in network.SYSTEM_BUNDLES if os.path.isfile(b)), None)
    base = named[0] if named and setting == "auto" else system
    if base is None:
        raise BadInput("this host has no CA bundle (none of " + ", ".join(network.SYSTEM_BUNDLES) + ")",
                       "install ca-certificates, or set SSL_CERT_FILE to a PEM bundle")
    if setting == "auto":
        missing = _anchors_missing_from(base)
        return str(_combined(base, missing, cache or Path.home() / ".cache" / "gpuenv")) if missing else base
    if not isinstance(setting, list):
        return base
    return str(_combined(base, setting, cache or Path.home() / ".cache" / "gpuenv"))


def _anchors_missing_from(bundle: str) -> list[str]:
    """CA files in the distribution's extra CA folders whose certificates `bundle` does not hold."""
    held = set(pem_blocks(Path(bundle).read_text("ascii", errors="replace")))
    return [path for path in network.extra_cas({}) if path.startswith(network.CA_ANCHOR_DIRS)
            and not set(pem_blocks(Path(path).read_text("ascii", errors="replace"))) <= held]


def pem_blocks(text: str) -> list[str]:
    """The certificates of a PEM text, each normalized (no blank or wrapped-line differences)."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    return [f"{begin}\n{''.join(part.split(end, 1)[0].split())}\n{end}" for part in text.split(begin)[1:]]


def run_ca_bundle(setting: Union[str, list[str]]) -> str:
    """The bundle running containers get (mounted read-only): the one builds get, as a real path; "" for
    ca_certificates = "none", or when "auto" finds no bundle on this host."""
    if setting == "none":
        return ""
    try:
        return os.path.realpath(ca_bundle(setting))
    except BadInput:
        if setting == "auto":
            return ""
        raise


def _combined(base: str, files: list[str], cache: Path) -> Path:
    parts = [Path(base).read_bytes()]
    for name in files:
        path = Path(name).expanduser()
        if not path.is_file():
            raise BadInput(f"network.ca_certificates: no file at {path}", "list PEM files that exist on this host")
        parts.append(path.read_bytes())
    data = b"\n".join(parts)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"ca-bundle-{hashlib.sha256(data).hexdigest()[:12]}.pem"
    target.write_bytes(data)
    return target


def ssh_key(setting: str, spec_dir: Path) -> SshKey:
    """The public key sshd accepts: the spec's file or key, else yours (~/.ssh/id_*.pub), else a key
    made for gpuenv (~/.ssh/gpuenv_ed25519) when you have none."""
    if setting == "auto":
        return _own_key()
    if is_public_key(setting):
        return SshKey(".gpuenv/authorized_keys", None, setting.strip() + "\n")
    path = (spec_dir / Path(setting).expanduser()).resolve()
    if not path.is_file():
        raise BadInput(f"access.ssh.authorized_key: no file at {path}",
                       'give the path of your public key, e.g. "~/.ssh/id_ed25519.pub", or "auto": yours, '
                       'else a key gpuenv makes once (~/.ssh/gpuenv_ed25519)')
    private = path.with_suffix("") if path.suffix == ".pub" else None
    return SshKey(str(path), str(private) if private and private.is_file() else None)


def home() -> Path:
    """The home of the user the environment is for: under sudo, the caller's (sudo sets HOME to root's)."""
    return invoking_home()


def _own_key() -> SshKey:
    folder = home() / ".ssh"
    for name in DEFAULT_KEYS:
        if (folder / f"{name}.pub").is_file():
            private = folder / name
            return SshKey(str(folder / f"{name}.pub"), str(private) if private.is_file() else None)
    return _made_key(folder / "gpuenv_ed25519")


def _made_key(private: Path) -> SshKey:
    """gpuenv's own key pair, ~/.ssh/gpuenv_ed25519 (ed25519, no passphrase: sshd in the container is
    reached on 127.0.0.1 only), made once with ssh-keygen; an existing key is never overwritten."""
    public = private.with_suffix(".pub")
    if public.is_file():
        return SshKey(str(public), str(private) if private.is_file() else None)
    if shutil.which("ssh-keygen") is None:
        raise BadInput("you have no SSH key and ssh-keygen is not installed",
                       "install openssh-client, or set access.ssh.authorized_key to a public key file")
    made = not private.parent.exists()
    private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if private.exists():                        # a private key whose .pub went missing: derive it, keep it
        _keygen(["-y", "-f", str(private)], private, into=public)
    else:
        _keygen(["-q", "-t", "ed25519", "-N", "", "-C", "gpuenv", "-f", str(private)], private)
    uid, gid = ids("host")
    if os.getuid() == 0 and uid != 0:           # made by root for the sudo caller: theirs, or useless to them
        for path in ([private.parent] if made else []) + [private, public]:
            os.chown(path, uid, gid)
    return SshKey(str(public), str(private))


def _keygen(args: list[str], private: Path, into: Optional[Path] = None) -> None:
    """Run ssh-keygen without a terminal (it never asks, so never overwrites); its stdout into `into`."""
    done = subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        raise GpuenvError(f"ssh-keygen could not make gpuenv's key {private}: {said}",
                          "set access.ssh.authorized_key to your public key file, or move that file away")
    if into is not None:
        into.write_text(done.stdout)
        into.chmod(0o644)
