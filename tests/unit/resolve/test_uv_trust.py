"""What uv trusts when gpuenv runs it to resolve: always the host's CA bundle (and the spec's CAs), never
only uv's built-in roots. Found by running scripts/demo from a fresh shell (no SSL_CERT_FILE) behind this
machine's TLS-inspecting proxy: uv answered "invalid peer certificate: UnknownIssuer" and every plan fell
back to the knowledge base alone, while pip in the build, given the host's bundle, worked."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gpuenv.resolve import packages
from gpuenv.resolve.packages import Source

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE")


def _system_bundle() -> Path:
    paths = ssl.get_default_verify_paths()
    found = [p for p in (paths.cafile, paths.openssl_cafile) + packages._SYSTEM_BUNDLES if p and Path(p).is_file()]
    assert found, "this machine has no system CA bundle"
    return Path(found[0])


def test_a_fresh_shell_still_gives_uv_the_systems_cas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = packages._uv_env(Source(index="https://pypi.org/simple"), tmp_path)
    bundle = Path(env["SSL_CERT_FILE"])
    assert bundle.parent == tmp_path
    assert _system_bundle().read_text(errors="replace") in bundle.read_text(errors="replace")


def test_the_specs_cas_are_added_to_the_systems(tmp_path: Path) -> None:
    extra = tmp_path / "corp-ca.pem"
    extra.write_text("-----BEGIN CERTIFICATE-----\nMIIBcorp\n-----END CERTIFICATE-----\n")
    work = tmp_path / "work"
    work.mkdir()
    env = packages._uv_env(Source(index="https://pypi.org/simple", ca_files=(str(extra),)), work)
    text = Path(env["SSL_CERT_FILE"]).read_text(errors="replace")
    assert "MIIBcorp" in text and _system_bundle().read_text(errors="replace")[:200] in text


def test_no_bundle_anywhere_leaves_uv_its_own_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = ssl.DefaultVerifyPaths(None, None, "SSL_CERT_FILE", str(tmp_path / "none.pem"), "SSL_CERT_DIR", "")
    monkeypatch.setattr(packages.ssl, "get_default_verify_paths", lambda: empty)
    monkeypatch.setattr(packages, "_SYSTEM_BUNDLES", ())
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert "SSL_CERT_FILE" not in packages._uv_env(Source(index="https://pypi.org/simple"), tmp_path)
