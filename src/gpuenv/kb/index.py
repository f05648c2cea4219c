"""A small client for PEP 503 / PEP 691 package indexes, following gpuenv's network policy.

Standard library only (urllib with its own SSL context and proxy handler), so that it works where
nothing else is installed yet:

- the index: `--index`, else the spec's `network.pip_index`, else PIP_INDEX_URL, else PyPI;
- proxies: the spec's `network.http_proxy` / `https_proxy` / `no_proxy`, each falling back to the
  environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, in either case); HTTPS goes through CONNECT;
- CAs: the spec's `network.ca_certificates` (a list of files; "none" = the system's only; "auto"
  = as if absent), else PIP_CERT, REQUESTS_CA_BUNDLE or SSL_CERT_FILE; the files are added to the
  system's CAs. TLS is always verified;
- plain http only to the hosts in `network.pip_trusted_hosts` (and PIP_TRUSTED_HOST); a redirect
  to any other http URL is refused too. Unlike pip, a trusted host is not exempt from certificate
  checks over https: a private CA is named instead. Credentials in the index URL are sent to that
  host only (never across a redirect) and never recorded; those in a proxy URL go to the proxy.

A project page is asked for as PEP 691 JSON and read as whatever the index serves (JSON, or the
PEP 503 HTML that many mirrors still serve only). The metadata of a wheel is read through PEP 658
(`<wheel url>.metadata`) when the page says it exists, else from the wheel itself with HTTP range
requests: its zip directory and the one METADATA member, a megabyte or two, never the whole wheel.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from gpuenv.errors import BadInput, GpuenvError

if TYPE_CHECKING:
    from email.message import Message
    from http.client import HTTPMessage

    from gpuenv.spec.model import Network as SpecNetwork

PYPI = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
USER_AGENT = "gpuenv-kb-refresh"
_CA_ENV = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
_CA_HINT = ("if the index or a proxy on the way uses a private CA (a TLS-inspecting proxy), name its certificate: "
            "network.ca_certificates = [\"/path/ca.crt\"] in gpuenv.toml, or PIP_CERT=/path/ca.crt")


class IndexAccessError(GpuenvError):
    """The package index could not be read (unreachable, refused, or an unusable answer)."""


class IndexTlsError(IndexAccessError):
    """TLS to the index (or through the proxy) failed: usually an unknown CA."""


class ProxyError(IndexAccessError):
    """The proxy refused the connection or the tunnel."""


class IndexNotFound(BadInput):
    """The index URL is no package index: 404 for every project, or pages with no usable wheel."""


class InsecureIndex(BadInput):
    """Plain http to a host that is not in network.pip_trusted_hosts."""


@dataclass(frozen=True)
class Network:
    """Where and how to reach the index; `*_origin` say where a setting came from, for messages."""

    index: str = PYPI
    index_origin: str = "default"
    http_proxy: Optional[str] = None
    https_proxy: Optional[str] = None
    no_proxy: tuple[str, ...] = ()
    ca_files: tuple[str, ...] = ()
    ca_origin: str = "system"
    trusted_hosts: tuple[str, ...] = ()
    timeout: float = 30.0
    retries: int = 3


def network_settings(spec_network: Optional[SpecNetwork] = None, index: Optional[str] = None,
                     base_dir: Optional[Path] = None, env: Optional[Mapping[str, str]] = None) -> Network:
    """The settings to use: `index` (--index), then the spec's `network` table, then the environment."""
    env = os.environ if env is None else env
    net = spec_network
    if index:
        url, origin = index, "--index"
    elif net is not None and net.pip_index:
        url, origin = net.pip_index, "network.pip_index"
    elif env.get("PIP_INDEX_URL"):
        url, origin = env["PIP_INDEX_URL"], "PIP_INDEX_URL"
    else:
        url, origin = PYPI, "default"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"the index {url!r} ({origin}) is not an http(s) URL",
                       "give a simple index such as https://pypi.org/simple")
    env_proxies = _env_proxies(env)
    http_proxy = (net.http_proxy if net is not None else None) or env_proxies.get("http")
    https_proxy = (net.https_proxy if net is not None else None) or env_proxies.get("https")
    no_proxy = tuple(net.no_proxy) if net is not None and net.no_proxy else _split(env_proxies.get("no", ""))
    ca_files, ca_origin = _ca_files(net, base_dir, env)
    trusted = tuple(net.pip_trusted_hosts) if net is not None else ()
    trusted += _split(env.get("PIP_TRUSTED_HOST", ""), sep=" ")
    return Network(url.rstrip("/"), origin, http_proxy, https_proxy, no_proxy, ca_files, ca_origin, trusted)


def _env_proxies(env: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in ("http", "https", "no"):
        value = env.get(f"{key}_proxy") or env.get(f"{key.upper()}_PROXY")
        if value:
            found[key] = value
    if "REQUEST_METHOD" in env:  # as urllib does: under CGI, HTTP_PROXY may come from a request header
        found.pop("http", None)
    return found


def _split(text: str, sep: str = ",") -> tuple[str, ...]:
    return tuple(item.strip() for item in text.replace(",", sep).split(sep) if item.strip())


def _ca_files(net: Optional[SpecNetwork], base_dir: Optional[Path],
              env: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    value = net.ca_certificates if net is not None else "auto"
    if value == "none":
        return (), "system"
    if isinstance(value, list):
        base = base_dir or Path(".")
        return tuple(str((base / Path(p).expanduser()).resolve()) for p in value), "network.ca_certificates"
    for name in _CA_ENV:
        if env.get(name):
            return (env[name],), name
    return (), "system"


def ssl_context(net: Network) -> ssl.SSLContext:
    """The system's CAs plus the extra ones; verification always on."""
    context = ssl.create_default_context()
    for path in net.ca_files:
        try:
            if os.path.isdir(path):
                context.load_verify_locations(capath=path)
            else:
                context.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise BadInput(f"CA certificate file {path} ({net.ca_origin}) does not exist",
                           "fix the path in network.ca_certificates (or PIP_CERT)") from None
        except (ssl.SSLError, OSError) as exc:
            raise BadInput(f"CA certificate file {path} ({net.ca_origin}) cannot be used: {exc}",
                           "it must hold PEM certificates") from None
    return context


# --- pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One file of a project page."""

    filename: str
    url: str
    requires_python: Optional[str] = None
    yanked: bool = False
    metadata: Optional[dict[str, str]] = None  # PEP 658/714: present (hashes, maybe empty) or None
    size: Optional[int] = None


@dataclass(frozen=True)
class Page:
    project: str
    url: str            # the page's URL as finally read (after redirects), without credentials
    kind: str           # "json" | "html"
    links: tuple[Link, ...]


def parse_json_page(text: str, url: str, project: str = "") -> Page:
    """A PEP 691 JSON project page."""
    try:
        data = json.loads(text)
        files = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexAccessError(f"{url} is no PEP 691 project page: {exc}", "check the index URL") from None
    links = []
    for item in files:
        if not isinstance(item, dict) or "filename" not in item or "url" not in item:
            continue
        yanked = item.get("yanked", False)
        meta = item.get("core-metadata", item.get("data-dist-info-metadata", item.get("dist-info-metadata")))
        links.append(Link(
            filename=item["filename"],
            url=urllib.parse.urljoin(url, item["url"]),
            requires_python=item.get("requires-python") or None,
            yanked=yanked is True or isinstance(yanked, str),
            metadata=_metadata_hashes(meta),
            size=item.get("size") if isinstance(item.get("size"), int) else None,
        ))
    return Page(project or str(data.get("name", "")), url, "json", tuple(links))


def _metadata_hashes(value: Any) -> Optional[dict[str, str]]:
    if value is True:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str) and value and value.lower() != "false":  # HTML: "sha256=..." or "true"
        name, sep, digest = value.partition("=")
        return {name: digest} if sep else {}
    return None


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, Optional[str]], str]] = []
        self.base: Optional[str] = None
        self._open: Optional[dict[str, Optional[str]]] = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


def parse_html_page(text: str, url: str, project: str = "") -> Page:
    """A PEP 503 HTML project page (with the data-* attributes of PEP 503/592/658/714)."""
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    base = urllib.parse.urljoin(url, parser.base) if parser.base else url
    links = []
    for attrs, label in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        target = urllib.parse.urljoin(base, href)
        path = urllib.parse.urlsplit(target).path
        filename = label or urllib.parse.unquote(path.rsplit("/", 1)[-1])
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if meta is None and ("data-core-metadata" in attrs or "data-dist-info-metadata" in attrs):
            meta = "true"  # a bare attribute
        links.append(Link(
            filename=filename,
            url=urllib.parse.urldefrag(target)[0],
            requires_python=(attrs.get("data-requires-python") or "").strip() or None,
            yanked="data-yanked" in attrs,
            metadata=_metadata_hashes(meta),
        ))
    return Page(project, url, "html", tuple(links))


# --- HTTP ----------------------------------------------------------------------------------------

_MAX_BODY = 64 << 20  # no project page or metadata file is this big; a wrong URL might be


class IndexUnreachableError(IndexAccessError):
    """The index (or the proxy) cannot be reached at all."""


@dataclass
class Response:
    url: str
    status: int
    headers: Union[Mapping[str, str], Message]      # a test's dict, or what urllib read
    body: bytes = b""


@dataclass
class Stats:
    pages_json: int = 0
    pages_html: int = 0
    metadata_pep658: int = 0
    metadata_range: int = 0
    bytes_read: int = 0
    connects: list[str] = field(default_factory=list)  # proxies a CONNECT was sent to


class IndexClient:
    """Reads project pages and wheel metadata from one index; safe to share between threads."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.context = ssl_context(net)
        self.stats = Stats()
        self._lock = threading.Lock()
        parts = urllib.parse.urlsplit(net.index)
        self._auth: dict[str, str] = {}
        if parts.username is not None:
            creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth[_hostport(parts)] = "Basic " + base64.b64encode(creds.encode()).decode()
        self.index = public_url(net.index)
        self.check_url(net.index)

    def count(self, connects: Optional[str] = None, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)
            if connects:
                self.stats.connects.append(connects)

    # URLs --------------------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Refuses plain http to a host that is not trusted (and anything that is not http(s))."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and self._trusted(parts)):
            return
        raise InsecureIndex(
            f"refusing plain-{parts.scheme or '?'} URL {public_url(url)}: {parts.hostname} is not a trusted host",
            f"use https, or trust the host: network.pip_trusted_hosts = [\"{parts.hostname}\"] in gpuenv.toml",
        )

    def _trusted(self, parts: urllib.parse.SplitResult) -> bool:
        host, hostport = (parts.hostname or "").lower(), _hostport(parts)
        return any(t.lower() in (host, hostport) for t in self.net.trusted_hosts)

    def page_url(self, project: str) -> str:
        return f"{self.index}/{project}/"

    def proxy_for(self, url: str) -> Optional[str]:
        parts = urllib.parse.urlsplit(url)
        proxy = self.net.https_proxy if parts.scheme == "https" else self.net.http_proxy
        if not proxy or bypass_proxy(parts.hostname or "", parts.port, self.net.no_proxy):
            return None
        return proxy

    # requests ----------------------------------------------------------------------------------

    def get(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Response:
        """GET `url`: a 2xx or 404 answer comes back, anything else raises; passing failures are retried.

        With a Range header, an answer other than 206 comes back without its body (never a whole wheel).
        """
        self.check_url(url)
        delay = 1.0
        for attempt in range(self.net.retries):
            try:
                return self._get_once(url, headers or {})
            except _Transient as exc:
                if attempt + 1 >= self.net.retries:
                    raise exc.error from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_once(self, url: str, headers: Mapping[str, str]) -> Response:
        request = urllib.request.Request(public_url(url), headers={"User-Agent": USER_AGENT, **headers})
        auth = self._auth.get(_hostport(urllib.parse.urlsplit(url)))
        if auth:
            request.add_unredirected_header("Authorization", auth)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _Proxies(self), _Redirects(self),
            urllib.request.HTTPSHandler(context=self.context),
        )
        try:
            with opener.open(request, timeout=self.net.timeout) as answer:
                where = public_url(answer.geturl())
                if "Range" in headers and answer.status != 206:
                    return Response(where, answer.status, answer.headers)
                body = answer.read(_MAX_BODY + 1)
                if len(body) > _MAX_BODY:
                    raise IndexAccessError(f"{where} is larger than {_MAX_BODY >> 20} MB: not an index page",
                                           "check the index URL")
                self.count(bytes_read=len(body))
                return Response(where, answer.status, answer.headers, body)
        except urllib.error.HTTPError as exc:
            return self._http_error(url, exc)
        except urllib.error.URLError as exc:
            raise self._url_error(url, exc.reason) from None
        except (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as exc:
            raise self._url_error(url, exc) from None

    def _http_error(self, url: str, exc: urllib.error.HTTPError) -> Response:
        with exc:
            if exc.code == 404:
                return Response(public_url(exc.geturl() or url), 404, exc.headers)
        what = f"{public_url(url)}: HTTP {exc.code} {exc.reason}"
        if exc.code == 407:
            raise ProxyError(f"the proxy asks for credentials ({what})",
                             "put them in the proxy URL: https_proxy = \"http://user:password@proxy:3128\"")
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(IndexAccessError(what, "the index had trouble; try again later"))
        raise IndexAccessError(what, "check the index URL (--index, network.pip_index or PIP_INDEX_URL)")

    def _url_error(self, url: str, reason: Union[str, BaseException]) -> Exception:
        host = urllib.parse.urlsplit(url).hostname
        proxy = self.proxy_for(url)
        if isinstance(reason, ssl.SSLCertVerificationError):
            why = reason.verify_message or str(reason)
            return IndexTlsError(f"TLS verification of {host} failed: {why} (trusted CAs: {self._cas()})", _CA_HINT)
        if isinstance(reason, ssl.SSLError):
            return IndexTlsError(f"TLS with {host} failed: {reason.reason or reason}", _CA_HINT)
        if isinstance(reason, GpuenvError):
            return reason
        text = _describe(reason)
        if proxy and ("Tunnel connection failed" in text or isinstance(reason, ConnectionRefusedError)):
            return ProxyError(f"the proxy {public_url(proxy)} refused the connection to {host}: {text}",
                              "check network.https_proxy / network.http_proxy in gpuenv.toml, or HTTPS_PROXY / "
                              "HTTP_PROXY (and NO_PROXY) in the environment")
        where = public_url(url)
        via = f" through the proxy {public_url(proxy)}" if proxy else ""
        hint = ("check the network; behind a firewall set a proxy (network.https_proxy or HTTPS_PROXY) "
                "or use a mirror you can reach (--index or network.pip_index)")
        if isinstance(reason, socket.gaierror):
            return IndexUnreachableError(f"cannot resolve {host} ({where}){via}: {text}", hint)
        error = IndexUnreachableError(f"cannot reach {where}{via}: {text}", hint)
        return error if isinstance(reason, ConnectionRefusedError) else _Transient(error)

    def _cas(self) -> str:
        if not self.net.ca_files:
            return "the system's"
        return f"the system's and {', '.join(self.net.ca_files)} ({self.net.ca_origin})"

    # project pages and metadata ----------------------------------------------------------------

    def project_page(self, project: str) -> Optional[Page]:
        """The project's page, or None when the index has no such project (404)."""
        answer = self.get(self.page_url(project), {"Accept": ACCEPT})
        if answer.status == 404:
            return None
        kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
        text = answer.body.decode(_charset(answer.headers) or "utf-8", errors="replace")
        if kind.endswith("+json") or kind == "application/json" or (not kind and text.lstrip().startswith("{")):
            self.count(pages_json=1)
            return parse_json_page(text, answer.url, project)
        self.count(pages_html=1)
        return parse_html_page(text, answer.url, project)

    def wheel_metadata(self, link: Link) -> Optional[str]:
        """A wheel's METADATA: by PEP 658 when the page offers it, else from the wheel by ranges; None if neither."""
        if link.metadata is not None:
            answer = self.get(link.url + ".metadata")
            if answer.status == 200:
                _check_hash(answer.body, link.metadata, link.url + ".metadata")
                self.count(metadata_pep658=1)
                return answer.body.decode("utf-8", errors="replace")
        text = read_member_by_ranges(self, link, _dist_info_prefix(link.filename) + "METADATA")
        if text is not None:
            self.count(metadata_range=1)
        return text


class _Transient(Exception):
    """A failure worth another try; `error` is what to raise when the tries are used up."""

    def __init__(self, error: GpuenvError) -> None:
        super().__init__(error.message)
        self.error = error


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but never to plain http on an untrusted host."""

    def __init__(self, client: IndexClient) -> None:
        self.client = client

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> Optional[urllib.request.Request]:
        self.client.check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Proxies(urllib.request.BaseHandler):
    """Routes through the configured proxy (ours, not urllib's environment one): CONNECT for https.

    Like urllib's ProxyHandler it acts when the request is opened (after the Host header is set), and
    then lets the http(s) handler do the work.
    """

    handler_order = 100  # before the http(s) handlers, as urllib's ProxyHandler

    def __init__(self, client: IndexClient) -> None:
        self.client = client

    def http_open(self, request: urllib.request.Request) -> None:
        proxy = self.client.proxy_for(request.full_url)
        if proxy is None:
            return None
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"proxy {public_url(proxy)}: only http proxies are supported here",
                           "give an http proxy, such as network.https_proxy = \"http://proxy:3128\"")
        if parts.username is not None:
            creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            request.add_header("Proxy-Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
        hostport = parts.hostname + (f":{parts.port}" if parts.port else "")
        if request.type == "https":
            self.client.count(connects=hostport)
        request.set_proxy(hostport, "http")
        return None

    https_open = http_open


def bypass_proxy(host: str, port: Optional[int], no_proxy: Sequence[str]) -> bool:
    """Whether NO_PROXY-style entries exempt `host`: "*", a domain (".corp" or "corp"), an address or a CIDR."""
    host = host.lower().strip("[]")
    for entry in no_proxy:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and port is not None and entry_port != str(port):
            continue
        name = name.strip("[]")
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
            continue
        except ValueError:
            pass
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def distribution_file(filename: str) -> Optional[tuple[str, Version]]:
    """(normalized name, Version) of a wheel's or an sdist's file name; None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def public_url(url: str) -> str:
    """`url` without user:password@."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _hostport(parts: urllib.parse.SplitResult) -> str:
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def _charset(headers: Union[Mapping[str, str], Message]) -> Optional[str]:
    for piece in headers.get("Content-Type", "").split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "charset":
            return value.strip('"') or None
    return None


def _describe(exc: Union[str, BaseException]) -> str:
    if isinstance(exc, BaseException):
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return text
    return str(exc)


def _check_hash(body: bytes, hashes: Mapping[str, str], url: str) -> None:
    for name, digest in hashes.items():
        if name in hashlib.algorithms_guaranteed and digest:
            if hashlib.new(name, body).hexdigest() != digest.lower():
                raise IndexAccessError(f"{public_url(url)}: {name} does not match the index page",
                                       "the index or a proxy altered the file; try again or use another index")
            return


def _dist_info_prefix(filename: str) -> str:
    name, version = filename.split("-")[:2]
    return f"{name}-{version}.dist-info/"


# --- a zip read through HTTP range requests -------------------------------------------------------

_TAIL = 1 << 16
_CHUNK = 1 << 18


class _NoRanges(Exception):
    """The server ignores Range."""


class _RangeFile:
    """A read-only, seekable file over HTTP ranges, enough for zipfile; caches what it read."""

    def __init__(self, client: IndexClient, url: str) -> None:
        self.client, self.url = client, url
        self.pos = 0
        self.pieces: list[tuple[int, bytes]] = []
        answer = client.get(url, {"Range": f"bytes=-{_TAIL}"})
        if answer.status != 206:
            raise _NoRanges()
        total = answer.headers.get("Content-Range", "").rpartition("/")[2]
        if not total.isdigit():
            raise _NoRanges()
        self.size = int(total)
        self.pieces.append((self.size - len(answer.body), answer.body))

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        data = self._cached(self.pos, end)
        if data is None:
            stop = min(self.size, max(end, self.pos + _CHUNK))
            answer = self.client.get(self.url, {"Range": f"bytes={self.pos}-{stop - 1}"})
            if answer.status != 206 or len(answer.body) != stop - self.pos:
                raise _NoRanges()
            self.pieces.append((self.pos, answer.body))
            data = answer.body[: end - self.pos]
        self.pos = end
        return data

    def _cached(self, start: int, end: int) -> Optional[bytes]:
        for offset, body in self.pieces:
            if offset <= start and end <= offset + len(body):
                return body[start - offset: end - offset]
        return None


def read_member_by_ranges(client: IndexClient, link: Link, member: str) -> Optional[str]:
    """One member of a remote wheel, read with range requests; None when the server cannot do ranges."""
    try:
        remote = _RangeFile(client, link.url)
        with zipfile.ZipFile(remote) as wheel:
            names = [n for n in wheel.namelist() if n.lower() == member.lower()]
            if not names:  # a dist-info named otherwise than the file (old wheels): any METADATA at the top
                names = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                return None
            return wheel.read(names[0]).decode("utf-8", errors="replace")
    except _NoRanges:
        return None
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise IndexAccessError(f"{public_url(link.url)}: not a readable wheel ({exc})",
                               "try again; if it persists, the index serves a broken file") from None
