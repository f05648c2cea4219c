"""Signed bundles, with real ed25519 keys made by ssh-keygen and OpenSSH's own `ssh-keygen -Y verify`:
a signed bundle verifies; changed and resealed, or unsigned, or signed by a key not listed, it is refused
(exit 2) before anything is written or reaches the engine."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from gpuenv.bundle import signature
from gpuenv.bundle.format import SIGNATURE
from gpuenv.bundle.verify import verify
from gpuenv.errors import BadInput

from .helpers import make_bundle, make_signed, rebuild, ssh_key
from .test_cli_refusals import gpuenv
from .test_forged import _refused


def test_a_signed_bundle_verifies_with_ssh_keygen(tmp_path: Path) -> None:
    key, allowed = ssh_key(tmp_path)
    bundle = make_signed(tmp_path, key)
    with tarfile.open(bundle) as tar:
        assert tar.getnames()[-1] == SIGNATURE                       # after the seal; tar tvf lists it
        sig = tar.extractfile(SIGNATURE).read()
        manifest = tar.extractfile("manifest.json").read()
    assert sig.startswith(b"-----BEGIN SSH SIGNATURE-----")
    got = verify(bundle)
    assert got.signature == sig and got.manifest_bytes == manifest
    assert signature.verify(bundle, got.manifest_bytes, got.signature, allowed) == "alice@example"
    # and without gpuenv, as README shows: ssh-keygen -Y verify on the extracted manifest
    (tmp_path / "m.sig").write_bytes(sig)
    plain = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "alice@example", "-n",
                            "gpuenv-bundle", "-s", str(tmp_path / "m.sig")], input=manifest, capture_output=True)
    assert plain.returncode == 0, plain.stderr


def test_a_changed_and_resealed_bundle_fails_verification(tmp_path: Path) -> None:
    key, allowed = ssh_key(tmp_path)
    bundle = make_signed(tmp_path, key)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", members={"gpuenv.toml": b'name = "demo"\n'})
    assert verify(forged).signature is not None                    # the seal is fine: anyone can make one
    with pytest.raises(signature.SignatureRefused, match="does not verify"):
        got = verify(forged)
        signature.verify(forged, got.manifest_bytes, got.signature, allowed)
    _refused(tmp_path, forged, "--allowed-signers", str(allowed), said="signature does not verify")


def test_an_unsigned_bundle_is_refused_when_a_signature_is_asked_for(tmp_path: Path) -> None:
    _, allowed = ssh_key(tmp_path)
    bundle = make_bundle(tmp_path)
    _refused(tmp_path, bundle, "--allowed-signers", str(allowed), said="is not signed")

    (tmp_path / "signed").mkdir()
    signed = make_signed(tmp_path / "signed", _key_of(allowed))
    stripped = rebuild(signed, tmp_path / "stripped.gpuenv", keep_signature=False)     # the signature taken out
    _refused(tmp_path, stripped, "--allowed-signers", str(allowed), said="is not signed")


def _key_of(allowed: Path) -> Path:
    return allowed.parent / "alice_ed25519"


def test_a_bundle_signed_by_a_key_not_listed_is_refused(tmp_path: Path) -> None:
    _, allowed = ssh_key(tmp_path, "alice")
    mallory, _ = ssh_key(tmp_path, "mallory")
    bundle = make_signed(tmp_path, mallory)
    _refused(tmp_path, bundle, "--allowed-signers", str(allowed), said="does not list")


def test_configured_allowed_signers_apply_without_the_flag(tmp_path: Path) -> None:
    """$GPUENV_ALLOWED_SIGNERS, or ~/.config/gpuenv/allowed_signers when it exists: every load checks."""
    _, allowed = ssh_key(tmp_path)
    bundle = make_bundle(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env_run = _with_env(cwd, bundle, {"GPUENV_ALLOWED_SIGNERS": str(allowed)})
    assert env_run.returncode == 2 and "is not signed" in env_run.stderr, env_run.stderr
    (tmp_path / "home" / ".config" / "gpuenv").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "gpuenv" / "allowed_signers").write_text(allowed.read_text())
    home_run = _with_env(cwd, bundle, {"HOME": str(tmp_path / "home")})
    assert home_run.returncode == 2 and "is not signed" in home_run.stderr, home_run.stderr
    assert not (cwd / "demo").exists()


def _with_env(cwd: Path, bundle: Path, extra: dict[str, str]) -> subprocess.CompletedProcess:
    import os
    import sys

    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent/docker.sock", "HOME": str(cwd),
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **extra}
    return subprocess.run([sys.executable, "-m", "gpuenv", "load", str(bundle)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def test_save_refuses_a_signing_key_it_cannot_read(tmp_path: Path) -> None:
    run = gpuenv("save", "-o", "x.gpuenv", "--sign", str(tmp_path / "no_such_key"), cwd=tmp_path)
    assert run.returncode == 2 and "the signing key" in run.stderr and "hint:" in run.stderr
    assert not (tmp_path / "x.gpuenv").exists()


def test_a_missing_allowed_signers_file_is_bad_input(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    got = verify(bundle)
    with pytest.raises(BadInput, match="allowed signers file"):
        signature.verify(bundle, got.manifest_bytes, got.signature, tmp_path / "none")
