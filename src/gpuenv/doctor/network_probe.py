"""Trying each source a spec's network policy uses (`gpuenv doctor --network`), all at once, each with a
short timeout: the pip index and extra indexes, the PyTorch wheel mirror, the apt mirror, the registry
mirror, Docker Hub, the proxy. Each answer is classified (network_checks.py turns them into findings):

    ok       answered within SLOW_S seconds (time to the answer's headers)
    slow     answered, but after SLOW_S seconds
    blocked  the name does not resolve, the connection is refused or reset, or no answer in TIMEOUT_S
    tls      the certificate is not trusted with the CAs a build would get (`ca_fixes` says whether this
             host's own trust store, with its extra CAs, verifies it: a TLS-inspecting proxy)
    http     it answers with an HTTP error (404: the URL is wrong; 407: the proxy wants a login)

TLS is verified with what a build gets: the host's CA bundle (network.ca_certificates = "auto" or files),
or, with ca_certificates = "none", the public roots alone (this host's bundle without the CAs added to it).
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlsplit

from packaging.requirements import Requirement

from gpuenv.host import network as host_network
from gpuenv.host.user import ca_bundle, pem_blocks

if TYPE_CHECKING:
    from gpuenv.spec.model import EnvSpec, Network

SLOW_S = 2.0        # a package index or mirror that takes longer than this to answer makes builds crawl
TIMEOUT_S = 6.0     # no answer by then: blocked (a firewall that drops packets never answers at all)
DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_APT = "http://deb.debian.org"
PYTORCH = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class Source:
    id: str              # pip-index, pip-extra-index, pytorch-wheels, apt-mirror, registry-mirror, docker-hub, proxy
    setting: str         # the spec key it comes from ("network.pip_index"), or "(default)" / "(environment)"
    url: str             # what is tried
    registry: bool = False   # a registry's /v2/: HTTP 401 is an answer


@dataclass(frozen=True)
class Answer:
    source: Source
    status: str                       # ok | slow | blocked | tls | http
    seconds: Optional[float]          # time to the answer (None: no answer)
    detail: str
    ca_fixes: Optional[bool] = None   # tls only: this host's own trust store verifies it
    proxy: str = ""                   # the proxy the request went through

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sources(spec: Optional[EnvSpec], env: Optional[dict[str, str]] = None) -> list[Source]:
    """Every source the spec (with its preset) uses; the defaults builds use when it sets none."""
    net = spec.network if spec is not None else None
    found = [_http("pip-index", net, "pip_index", DEFAULT_INDEX, "/pip/")]
    found += [Source("pip-extra-index", f"network.pip_extra_indexes[{i}]", url.rstrip("/") + "/")
              for i, url in enumerate(net.pip_extra_indexes if net is not None else [])]
    if (net is not None and net.pytorch_wheels) or _wants_torch(spec):
        found.append(_http("pytorch-wheels", net, "pytorch_wheels", PYTORCH, "/torch/"))
    found.append(_http("apt-mirror", net, "apt_mirror", DEFAULT_APT, "/debian/"))
    if net is not None and net.registry_mirror:
        found.append(Source("registry-mirror", "network.registry_mirror",
                            host_network.registry_url(net.registry_mirror), True))
    found.append(Source("docker-hub", "(default)", host_network.DOCKER_HUB, True))
    proxy, origin = proxy_of(spec, env)
    if proxy:
        found.append(Source("proxy", origin, proxy))
    return found


def _http(kind: str, net: Optional[Network], key: str, default: str, path: str) -> Source:
    """The source of the URL setting `key` (the spec's, a preset's, else `default`), with `path` added."""
    value: Optional[str] = getattr(net, key, None)
    setting = f"network.{key}" if value else "(default)"
    if net is not None and key in net.filled:
        setting += f", from preset \"{net.preset}\""
    return Source(kind, setting, (value or default).rstrip("/") + path)


def _wants_torch(spec: Optional[EnvSpec]) -> bool:
    return spec is not None and any(Requirement(f).name == "torch" for f in spec.frameworks)


def proxy_of(spec: Optional[EnvSpec], env: Optional[dict[str, str]] = None) -> tuple[str, str]:
    """The proxy HTTPS goes through: the spec's, else this shell's (HTTPS_PROXY / HTTP_PROXY)."""
    net = spec.network if spec is not None else None
    for key in ("https_proxy", "http_proxy"):
        chosen: Optional[str] = getattr(net, key, None)
        if chosen:
            return chosen, f"network.{key}"
    found = host_network.proxy_env(env)
    value = found.get("https_proxy") or found.get("http_proxy") or ""
    return value, "(environment)" if value else ""


def probe_all(spec: Optional[EnvSpec], env: Optional[dict[str, str]] = None,
              timeout: float = TIMEOUT_S) -> list[Answer]:
    """Try every source at once; answers in the order of `sources`."""
    found = sources(spec, env)
    proxy, _ = proxy_of(spec, env)
    net = spec.network if spec is not None else None
    trust = TrustStores.for_setting(net.ca_certificates if net is not None else "auto")
    skip = list(net.no_proxy) if net is not None else []
    with ThreadPoolExecutor(max_workers=len(found)) as pool:
        return list(pool.map(lambda s: probe(s, trust, _proxy_for(s, proxy, skip), timeout), found))


def _proxy_for(source: Source, proxy: str, no_proxy: list[str]) -> str:
    if source.id == "proxy" or not proxy:
        return ""
    host = urlsplit(source.url).hostname or ""
    if any(host == n.lstrip(".") or host.endswith("." + n.lstrip(".")) for n in no_proxy):
        return ""
    return proxy


@dataclass(frozen=True)
class TrustStores:
    build: ssl.SSLContext      # what a build trusts
    host: ssl.SSLContext       # this host's own trust store, its extra CAs included
    build_has_host_cas: bool

    @classmethod
    def for_setting(cls, setting: Union[str, list[str]]) -> TrustStores:
        """The stores of a network.ca_certificates setting ("auto", "none" or CA files)."""
        host = ssl.create_default_context(cafile=ca_bundle("auto"))
        if setting == "none":
            return cls(public_roots(), host, False)
        return cls(ssl.create_default_context(cafile=ca_bundle(setting)), host, True)


def public_roots() -> ssl.SSLContext:
    """This host's CA bundle without the CAs an administrator added to it: what an image trusts."""
    added: set[str] = set()
    for path in host_network.extra_cas({}):
        if path.startswith(host_network.CA_ANCHOR_DIRS):
            added |= set(pem_blocks(_text(path)))
    blocks = [b for b in pem_blocks(_text(ca_bundle("none"))) if b not in added]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)       # verifies names and chains; trusts only these
    if blocks:
        context.load_verify_locations(cadata="\n".join(blocks))
    return context


def _text(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def probe(source: Source, trust: TrustStores, proxy: str = "", timeout: float = TIMEOUT_S) -> Answer:
    if source.id == "proxy":
        return _probe_proxy(source, timeout)
    started = time.monotonic()
    try:
        code = _get(source.url, trust.build, proxy, timeout)
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return _failed(source, trust, proxy, timeout, getattr(exc, "reason", exc))
    seconds = time.monotonic() - started
    answered = code < 400 or (source.registry and code == 401)
    if not answered:
        return Answer(source, "http", seconds, f"HTTP {code}", proxy=proxy)
    status = "slow" if seconds > SLOW_S else "ok"
    return Answer(source, status, seconds, f"HTTP {code}", proxy=proxy)


def _get(url: str, context: ssl.SSLContext, proxy: str, timeout: float) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}),
                                         urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"User-Agent": "gpuenv-doctor"})
    with opener.open(request, timeout=timeout) as reply:
        return reply.status                    # headers only: the body is never read


def _failed(source: Source, trust: TrustStores, proxy: str, timeout: float,
            reason: Union[str, BaseException]) -> Answer:
    if isinstance(reason, ssl.SSLCertVerificationError):
        fixes = None if trust.build_has_host_cas else _verifies(source.url, trust.host, proxy, timeout)
        return Answer(source, "tls", None, f"certificate not trusted: {reason.verify_message or reason}",
                      fixes, proxy)
    if isinstance(reason, ssl.SSLError):
        return Answer(source, "tls", None, f"TLS failed: {reason}", None, proxy)
    return Answer(source, "blocked", None, _why_blocked(reason, timeout), proxy=proxy)


def _verifies(url: str, context: ssl.SSLContext, proxy: str, timeout: float) -> bool:
    try:
        _get(url, context, proxy, timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def _why_blocked(reason: Union[str, BaseException], timeout: float) -> str:
    if isinstance(reason, socket.gaierror):
        return f"the name does not resolve ({reason.strerror or reason})"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason)


def _probe_proxy(source: Source, timeout: float) -> Answer:
    """The proxy itself: does its port take a connection?"""
    parts = urlsplit(source.url)
    port = parts.port or (443 if parts.scheme == "https" else 1080 if parts.scheme.startswith("socks") else 80)
    started = time.monotonic()
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            seconds = time.monotonic() - started
    except OSError as exc:
        return Answer(source, "blocked", None, _why_blocked(exc, timeout))
    return Answer(source, "slow" if seconds > SLOW_S else "ok", seconds, f"{parts.hostname}:{port} accepts connections")
