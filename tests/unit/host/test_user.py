"""Who the files are for: UID/GID (sudo included), the SSH key gpuenv picks or makes, the CA bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gpuenv.errors import BadInput
from gpuenv.host import user


def test_ids_are_the_specs_or_the_sudo_callers(monkeypatch):
    assert user.ids("1234:99") == (1234, 99)
    if os.getuid() == 0:
        monkeypatch.setenv("SUDO_UID", "1500")
        monkeypatch.setenv("SUDO_GID", "1600")
        assert user.ids("host") == (1500, 1600)
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert user.ids("host") == (os.getuid(), os.getgid())


def test_project_names_differ_per_folder(tmp_path):
    a, b = user.project_name("Torch Env", tmp_path / "a"), user.project_name("Torch Env", tmp_path / "b")
    assert a != b and a.startswith("torch-env-") and a == a.lower()


def test_a_user_without_keys_gets_one_made_for_gpuenv(tmp_path, monkeypatch):
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is needed (openssh-client)")
    monkeypatch.setenv("HOME", str(tmp_path))
    made = user.ssh_key("auto", tmp_path)
    assert made.public == str(tmp_path / ".ssh" / "gpuenv_ed25519.pub")
    assert (tmp_path / ".ssh" / "gpuenv_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    assert user.ssh_key("auto", tmp_path) == made           # made once, then found


def test_a_users_own_key_is_preferred_and_a_missing_file_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa.pub").write_text("ssh-rsa AAAA me\n")
    assert user.ssh_key("auto", tmp_path).public == str(tmp_path / ".ssh" / "id_rsa.pub")
    with pytest.raises(BadInput, match="no file at"):
        user.ssh_key("keys/missing.pub", tmp_path)


def test_listed_cas_are_appended_to_the_system_bundle(tmp_path):
    corp = tmp_path / "corp.crt"
    corp.write_text("-----BEGIN CERTIFICATE-----\ncorp\n-----END CERTIFICATE-----\n")
    bundle = user.ca_bundle([str(corp)], cache=tmp_path / "cache")
    text = open(bundle).read()
    assert text.endswith(corp.read_text()) and len(text) > len(corp.read_text())
    with pytest.raises(BadInput, match="no file at"):
        user.ca_bundle([str(tmp_path / "nope.crt")], cache=tmp_path / "cache")


def test_a_key_made_under_sudo_belongs_to_the_caller(tmp_path, monkeypatch):
    """Found by the access tests: under sudo the key was made root's, so the caller's ssh could not read it."""
    from pathlib import Path

    if os.getuid() != 0:
        pytest.skip("needs root, as sudo would be")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SUDO_UID", "4321")
    monkeypatch.setenv("SUDO_GID", "4322")
    key = user.ssh_key("auto", tmp_path)
    for path in (tmp_path / ".ssh", Path(key.private), Path(key.public)):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322), path


def _pem(body: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def test_auto_adds_an_extra_ca_the_bundle_lacks(tmp_path, monkeypatch):
    """A CA put in the system's extra CA folder without update-ca-certificates still reaches builds."""
    from gpuenv.host import network
    from gpuenv.host.user import ca_bundle

    anchors, bundle = tmp_path / "anchors", tmp_path / "bundle.pem"
    anchors.mkdir()
    bundle.write_text(_pem("UFVCTElDUk9PVA=="))
    (anchors / "proxy.crt").write_text(_pem("UFJPWFlDQQ=="))
    monkeypatch.setattr(network, "CA_ANCHOR_DIRS", (str(anchors),))
    for name in network.CA_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    combined = Path(ca_bundle("auto", cache=tmp_path / "cache"))
    assert combined != bundle and "UFJPWFlDQQ==" in combined.read_text() and "UFVCTElDUk9PVA==" in combined.read_text()
    bundle.write_text(_pem("UFVCTElDUk9PVA==") + "\n" + _pem("UFJP\nWFlDQQ=="))      # merged, wrapped otherwise
    assert ca_bundle("auto", cache=tmp_path / "cache") == str(bundle)
