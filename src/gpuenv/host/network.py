"""The network as builds will meet it: proxies, CAs this host trusts that public roots do not, whether
TLS is intercepted, and whether registries answer. Checks have short timeouts and run concurrently."""

from __future__ import annotations

import glob
import os
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

# where distributions keep the CAs an administrator added (Debian/Ubuntu; RHEL family; SUSE)
CA_ANCHOR_DIRS = ("/usr/local/share/ca-certificates", "/etc/pki/ca-trust/source/anchors",
                  "/etc/pki/trust/anchors")
CA_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE")
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
                  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/ca-bundle.pem")
DOCKER_HUB = "https://registry-1.docker.io/v2/"


@dataclass(frozen=True)
class RegistryCheck:
    url: str
    answers: bool
    detail: str                         # "HTTP 401" or the error


@dataclass(frozen=True)
class Network:
    proxies: dict[str, str]
    extra_cas: tuple[str, ...]          # CA files this host trusts beyond the public roots
    intercepted_by: Optional[str]       # the extra CA that verified a public site: TLS is inspected
    intercept_probe: str                # the site that was tried, and what happened
    registries: tuple[RegistryCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def proxy_env(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env = os.environ if env is None else env
    found = {}
    for key in ("http_proxy", "https_proxy", "no_proxy"):
        value = env.get(key) or env.get(key.upper())
        if value:
            found[key] = value
    return found


def extra_cas(env: Optional[Mapping[str, str]] = None) -> tuple[str, ...]:
    """CA files added to this host's trust store, and CA bundles the environment names that are not
    the system's own bundle."""
    env = os.environ if env is None else env
    found = []
    for folder in CA_ANCHOR_DIRS:
        found += sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                        if os.path.isfile(p) and p.endswith((".crt", ".pem", ".cer")))
    for name in CA_ENV:
        path = env.get(name)
        if path and os.path.isfile(path) and os.path.realpath(path) not in map(os.path.realpath, SYSTEM_BUNDLES):
            found.append(path)
    return tuple(dict.fromkeys(found))


def intercepting_ca(host: str, cas: tuple[str, ...], timeout: float = 3.0) -> tuple[Optional[str], str]:
    """Which of `cas` alone verifies a TLS connection to `host`:443. A public site verified by a
    private CA means a proxy inspects TLS. Returns (that CA or None, what happened)."""
    if not cas:
        return None, "no extra CA on this host"
    for ca in cas:
        try:
            context = ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError):
            continue
        try:
            with socket.create_connection((host, 443), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host):
                    return ca, f"{host}:443 presented a certificate issued under {ca}"
        except ssl.SSLCertVerificationError:
            continue
        except (OSError, ssl.SSLError) as exc:
            return None, f"{host}:443 could not be reached ({exc})"
    return None, f"{host}:443 is verified by public roots, not by an extra CA"


def registry_check(url: str, proxy: Optional[str] = None, timeout: float = 3.0) -> RegistryCheck:
    """Does a registry's /v2/ answer at all (200 or 401 both mean yes)?"""
    proxies = {"https": proxy, "http": proxy} if proxy else None         # None: the environment's, as urllib reads it
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
    try:
        with opener.open(url, timeout=timeout) as reply:
            return RegistryCheck(url, True, f"HTTP {reply.status}")
    except urllib.error.HTTPError as exc:
        return RegistryCheck(url, exc.code < 500, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return RegistryCheck(url, False, str(reason))


def registry_url(mirror: str) -> str:
    base = mirror if "://" in mirror else f"https://{mirror}"
    return base.rstrip("/") + "/v2/"
