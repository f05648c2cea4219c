"""Who made a bundle: an SSH signature of its manifest, made and checked by OpenSSH's own `ssh-keygen -Y`
(namespace gpuenv-bundle), with a key the user already has and the allowed_signers file that git and
OpenSSH use (`PRINCIPAL KEYTYPE KEY` a line; ssh-keygen(1), ALLOWED SIGNERS).

The manifest lists every member's size and sha256, so its signature covers the whole bundle; it travels
as the member manifest.sig, after the seal. A seal alone proves the file is whole, not who wrote it.

    gpuenv save --sign ~/.ssh/id_ed25519 -o x.gpuenv        (a public key works too: its private key in ssh-agent)
    gpuenv load x.gpuenv --allowed-signers ~/.config/gpuenv/allowed_signers
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional

from gpuenv.errors import BadInput, GpuenvError

NAMESPACE = "gpuenv-bundle"
KEYGEN = "ssh-keygen"
ALLOWED_ENV = "GPUENV_ALLOWED_SIGNERS"


class SignatureRefused(BadInput):
    """Verification was asked for, and the bundle's signature is missing, not by a listed key, or wrong."""


def default_allowed() -> Optional[Path]:
    """$GPUENV_ALLOWED_SIGNERS, else ~/.config/gpuenv/allowed_signers when it exists: then every load checks."""
    if os.environ.get(ALLOWED_ENV):
        return Path(os.environ[ALLOWED_ENV]).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    found = config / "gpuenv" / "allowed_signers"
    return found if found.is_file() else None


def signer(key: Path) -> Callable[[bytes], bytes]:
    """The manifest's bytes -> their signature by `key`; the key is checked now, before a long save."""
    if not key.is_file() or not os.access(key, os.R_OK):
        raise BadInput(f"the signing key {key} does not exist or cannot be read",
                       "give your SSH private key (e.g. --sign ~/.ssh/id_ed25519), or its .pub with the key in "
                       "ssh-agent; ssh-keygen -t ed25519 makes one")
    return lambda data: _sign(key, data)


def _sign(key: Path, data: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gpuenv-sign-") as temp:
        signed = Path(temp) / "manifest.json"
        signed.write_bytes(data)
        # the data is a file, not stdin: ssh-keygen may ask for the key's passphrase on the terminal
        done = _keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(signed), stdin=None)
        if done.returncode != 0:
            raise BadInput(f"ssh-keygen could not sign with {key}: {_said(done)}",
                           "give a private key ssh-keygen can read (and its passphrase), or a .pub key whose "
                           "private key is in ssh-agent")
        return signed.with_name("manifest.json.sig").read_bytes()


def verify(path: Path, manifest: bytes, signature: Optional[bytes], allowed: Path) -> str:
    """The principal of `allowed` whose key signed the manifest; SignatureRefused (exit 2) otherwise."""
    _readable(allowed)
    if signature is None:
        raise SignatureRefused(f"{path} is not signed, and loading asks for a signature by a key in {allowed}",
                               "ask its maker to save it with `gpuenv save --sign KEY`; to load it unsigned, "
                               f"leave out --allowed-signers (and unset {ALLOWED_ENV})")
    with tempfile.TemporaryDirectory(prefix="gpuenv-verify-") as temp:
        sig = Path(temp) / "manifest.sig"
        sig.write_bytes(signature)
        said = ""
        for principal in _principals(path, sig, allowed):
            done = _keygen("-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE, "-s", str(sig),
                           stdin=manifest)
            if done.returncode == 0:
                return principal
            said = _said(done)
    raise SignatureRefused(f"{path}'s signature does not verify with the key {allowed} lists for it: {said}",
                           "the bundle was changed after it was signed (and resealed): get it again from its maker")


def _principals(path: Path, sig: Path, allowed: Path) -> list[str]:
    done = _keygen("-Y", "find-principals", "-s", str(sig), "-f", str(allowed), stdin=b"")
    found = [p for line in done.stdout.decode("utf-8", "replace").splitlines() for p in line.split(",") if p]
    if done.returncode != 0 or not found:
        raise SignatureRefused(f"{path} is signed by a key that {allowed} does not list ({_said(done)})",
                               f"if you trust its maker, add their public key to {allowed} as a line "
                               "`NAME ssh-ed25519 AAAA...`; else do not load it")
    return found


def _readable(allowed: Path) -> None:
    if not allowed.is_file() or not os.access(allowed, os.R_OK):
        raise BadInput(f"the allowed signers file {allowed} does not exist or cannot be read",
                       "give a file of lines `NAME ssh-ed25519 AAAA...` (the public keys you trust), as "
                       "ssh-keygen(1) describes under ALLOWED SIGNERS")


def _keygen(*args: str, stdin: Optional[bytes]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([KEYGEN, *args], input=stdin, capture_output=True, timeout=300)
    except FileNotFoundError:
        raise GpuenvError("ssh-keygen is not installed here; signing and checking bundles use it",
                          "install OpenSSH's client (Debian/Ubuntu: sudo apt-get install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise GpuenvError("ssh-keygen did not finish within 300 s", "is it waiting for a passphrase?") from None


def _said(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or b"").decode("utf-8", "replace").strip()
    return " ".join(text.splitlines()[-2:]) or f"exit status {done.returncode}"
