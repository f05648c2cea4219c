"""A real package index on 127.0.0.1 for tests: PEP 503 HTML and PEP 691 JSON project pages, with
PEP 658/714 metadata files, served from recorded files (tests/fixtures/index/) by a threaded
`http.server`.

Layout of a recorded index folder (scripts/record-index writes it; SOURCE.md there says from where):

    pages/<project>.json      {"name": ..., "files": [{"filename", "sha256", "requires-python", "size",
                                "yanked", "metadata": "<file under metadata/>"}]}
    metadata/<name>           one METADATA per version, served as `<any wheel of that version>.metadata`

URLs: the main index answers `/simple/<project>/` and links its files as `/packages/<filename>`; a
PyTorch-style variant index `<token>` answers `/whl/<token>/<project>/` and links `/whl/<token>/<filename>`
as download.pytorch.org does. Only `.metadata` files are served: a request for a wheel or an sdist is
answered 404 and logged, so a test can assert that the resolver never downloaded one; the one exception
is a real source distribution kept under `sdists/` (byte for byte the file the page's sha256 names), which
a test of building from source needs (resolve/published.sdist_requires reads its PKG-INFO).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional, Protocol, Union

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

PYPI_SIMPLE = "https://pypi.org/simple"
PYTORCH_WHL = "https://download.pytorch.org/whl"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def file_version(filename: str) -> Optional[str]:
    """The version a wheel or sdist file name carries (local version included), None if unparsable."""
    parsed = parse_filename(filename)
    return parsed[1] if parsed else None


def parse_filename(filename: str) -> Optional[tuple[str, str]]:
    """(normalized project, version) of a wheel or sdist file name, None if it is neither."""
    try:
        if filename.endswith(".whl"):
            name, version = parse_wheel_filename(filename)[:2]
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return str(name), str(version)


@dataclass(frozen=True)
class IndexFile:
    """One file of a project page, as the index lists it."""

    filename: str
    sha256: str
    requires_python: Optional[str] = None
    size: Optional[int] = None
    yanked: Union[bool, str] = False
    metadata: Optional[str] = None       # a wheel whose METADATA is served: its name in the source
    metadata_sha256: Optional[str] = None  # that METADATA's sha256 (None: offered without a hash)


@dataclass(frozen=True)
class Project:
    name: str
    files: tuple[IndexFile, ...]


class Source(Protocol):
    """Where the pages and metadata come from: recorded files, or (when recording) a live index."""

    def names(self) -> list[str]: ...

    def project(self, name: str) -> Optional[Project]: ...

    def metadata(self, project: Project, file: IndexFile) -> Optional[bytes]: ...


class RecordedSource:
    """A recorded index folder (pages/ + metadata/), read once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._projects = {normalize(p.stem): p for p in sorted((folder / "pages").glob("*.json"))}
        self._cache: dict[str, Project] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._projects)

    def project(self, name: str) -> Optional[Project]:
        key = normalize(name)
        if key not in self._projects:
            return None
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._load(self._projects[key])
            return self._cache[key]

    def metadata(self, project: Project, file: IndexFile) -> Optional[bytes]:
        if not file.metadata:
            return None
        return (self.folder / "metadata" / file.metadata).read_bytes()

    def sdist(self, filename: str) -> Optional[bytes]:
        """A real source distribution kept under sdists/, None for any other file."""
        path = self.folder / "sdists" / filename
        return path.read_bytes() if "/" not in filename and path.is_file() else None

    def _load(self, page: Path) -> Project:
        data = json.loads(page.read_text(encoding="utf-8"))
        files = tuple(self._file(item) for item in data["files"])
        return Project(data["name"], files)

    def _file(self, item: dict) -> IndexFile:
        meta = item.get("metadata")
        digest = hashlib.sha256((self.folder / "metadata" / meta).read_bytes()).hexdigest() if meta else None
        return IndexFile(item["filename"], item["sha256"], item.get("requires-python"), item.get("size"),
                         item.get("yanked", False), meta, digest)


@dataclass(frozen=True)
class Route:
    """One index on the server: where its project pages and its files live."""

    pages: str    # "/simple/" or "/whl/cu118/"
    files: str    # "/packages/" or "/whl/cu118/"
    source: Source


# --- rendering -----------------------------------------------------------------------------------


def wants_json(accept: str, query: str) -> bool:
    """PEP 691 content negotiation (and its `?format=` escape hatch); HTML unless JSON is preferred."""
    asked = urllib.parse.parse_qs(query).get("format")
    if asked:
        return asked[0] == JSON_TYPE
    weights = {"json": 0.0, "html": 0.0}
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        q = _quality(params)
        kind = kind.strip().lower()
        if kind == JSON_TYPE:
            weights["json"] = max(weights["json"], q)
        elif kind in (HTML_TYPE, "text/html", "*/*"):
            weights["html"] = max(weights["html"], q)
    return weights["json"] > 0 and weights["json"] >= weights["html"]


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _metadata_value(file: IndexFile) -> Union[bool, dict[str, str]]:
    return {"sha256": file.metadata_sha256} if file.metadata_sha256 else True


def json_page(project: Project, route: Route) -> bytes:
    files = []
    for f in project.files:
        entry: dict = {"filename": f.filename, "url": route.files + urllib.parse.quote(f.filename),
                       "hashes": {"sha256": f.sha256}, "yanked": f.yanked}
        if f.requires_python:
            entry["requires-python"] = f.requires_python
        if f.size is not None:
            entry["size"] = f.size
        if f.metadata:
            entry["core-metadata"] = entry["data-dist-info-metadata"] = _metadata_value(f)
        files.append(entry)
    versions = sorted({v for v in (file_version(f.filename) for f in project.files) if v})
    body = {"meta": {"api-version": "1.1"}, "name": normalize(project.name), "files": files, "versions": versions}
    return json.dumps(body, indent=1).encode()


def html_page(project: Project, route: Route) -> bytes:
    lines = ["<!DOCTYPE html>", "<html><head><meta name=\"pypi:repository-version\" content=\"1.1\">",
             f"<title>Links for {html.escape(project.name)}</title></head><body>",
             f"<h1>Links for {html.escape(project.name)}</h1>"]
    lines += [_anchor(f, route) for f in project.files]
    lines.append("</body></html>")
    return "\n".join(lines).encode()


def _anchor(f: IndexFile, route: Route) -> str:
    href = f"{route.files}{urllib.parse.quote(f.filename)}#sha256={f.sha256}"
    attrs = [f'href="{html.escape(href)}"']
    if f.requires_python:
        attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
    if f.metadata:
        value = f"sha256={f.metadata_sha256}" if f.metadata_sha256 else "true"
        attrs += [f'data-core-metadata="{value}"', f'data-dist-info-metadata="{value}"']
    if f.yanked:
        attrs.append(f'data-yanked="{html.escape(f.yanked if isinstance(f.yanked, str) else "")}"')
    return f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>"


def root_page(source: Source, as_json: bool) -> bytes:
    names = source.names()
    if as_json:
        return json.dumps({"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}).encode()
    anchors = "".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a><br/>\n' for n in names)
    return f"<!DOCTYPE html>\n<html><body>\n{anchors}</body></html>".encode()


# --- the server ----------------------------------------------------------------------------------


@dataclass
class RequestLog:
    """What the server was asked, for tests: (path, status) in order."""

    entries: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, status: int) -> None:
        with self.lock:
            self.entries.append((path, status))

    def mark(self) -> int:
        """Where the log stands now: pass it to `paths(since=...)` to see only what came after."""
        with self.lock:
            return len(self.entries)

    def paths(self, suffix: str = "", since: int = 0) -> list[str]:
        with self.lock:
            return [p for p, _ in self.entries[since:] if p.endswith(suffix)]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, send_body: bool) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        try:
            status, kind, body = self._route(path, parts.query)
        except Exception as exc:  # a broken recording is a 500 the test sees, never a hung client
            status, kind, body = 500, "text/plain", f"recorded index: {type(exc).__name__}: {exc}\n".encode()
        self.server.log.add(path, status)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _route(self, path: str, query: str) -> tuple[int, str, bytes]:
        for route in self.server.routes:
            if path == route.pages:
                as_json = wants_json(self.headers.get("Accept", ""), query)
                return 200, JSON_TYPE if as_json else HTML_TYPE, root_page(route.source, as_json)
            if path.startswith(route.pages) and path.endswith("/") and path.count("/") == route.pages.count("/") + 1:
                return self._page(route, path[len(route.pages):-1], query)
            if path.startswith(route.files) and "/" not in path[len(route.files):]:
                return self._file(route, path[len(route.files):])
        return _missing(f"{path}: not a page of this index")

    def _page(self, route: Route, name: str, query: str) -> tuple[int, str, bytes]:
        project = route.source.project(name)
        if project is None:
            return _missing(f"no project {name!r} on this index")
        if wants_json(self.headers.get("Accept", ""), query):
            return 200, JSON_TYPE, json_page(project, route)
        return 200, HTML_TYPE + "; charset=utf-8", html_page(project, route)

    def _file(self, route: Route, filename: str) -> tuple[int, str, bytes]:
        wheel = filename[: -len(".metadata")] if filename.endswith(".metadata") else None
        if wheel is None:
            kept = getattr(route.source, "sdist", lambda _: None)(filename)
            if kept is not None:
                return 200, "application/octet-stream", kept
            return _missing(f"{filename}: this recorded index serves metadata only, never a distribution")
        parsed = parse_filename(wheel)
        project = route.source.project(parsed[0]) if parsed else None
        entry = next((f for f in project.files if f.filename == wheel), None) if project else None
        body = route.source.metadata(project, entry) if project and entry and entry.metadata else None
        if body is None:
            return _missing(f"no metadata for {wheel}")
        return 200, "application/octet-stream", body


def _missing(why: str) -> tuple[int, str, bytes]:
    return 404, "text/plain; charset=utf-8", (why + "\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: tuple[Route, ...]
    log: RequestLog


class IndexServer:
    """An index on 127.0.0.1 (a free port), serving `routes` from a thread until `stop()`."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.routes = routes
        self.httpd.log = RequestLog()
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="pyindex", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def log(self) -> RequestLog:
        return self.httpd.log

    def start(self) -> "IndexServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@dataclass
class RecordedIndex:
    """A running recorded index: `simple` is the main index's URL, `variant(token)` a variant's."""

    server: IndexServer
    tokens: tuple[str, ...]

    @property
    def simple(self) -> str:
        return f"{self.server.url}/simple"

    def variant(self, token: str) -> str:
        if token not in self.tokens:
            raise KeyError(f"no recorded variant index {token!r}; recorded: {', '.join(self.tokens)}")
        return f"{self.server.url}/whl/{token}"

    def stand_in(self, url: str) -> str:
        """The local URL standing in for a real index: PyPI's simple index, or PyTorch's per variant."""
        real = url.rstrip("/")
        if real in (PYPI_SIMPLE, "https://pypi.python.org/simple"):
            return self.simple
        if real.startswith(PYTORCH_WHL + "/"):
            return self.variant(real[len(PYTORCH_WHL) + 1:])
        raise KeyError(f"no recorded index stands in for {url}")

    @property
    def log(self) -> RequestLog:
        return self.server.log

    def stop(self) -> None:
        self.server.stop()


def serve_recorded(folder: Path) -> RecordedIndex:
    """Serves `folder` (tests/fixtures/index): pypi/ as /simple/, each variants/<token>/ as /whl/<token>/."""
    routes = [Route("/simple/", "/packages/", RecordedSource(folder / "pypi"))]
    tokens = tuple(sorted(p.name for p in (folder / "variants").iterdir() if p.is_dir())) \
        if (folder / "variants").is_dir() else ()
    routes += [Route(f"/whl/{t}/", f"/whl/{t}/", RecordedSource(folder / "variants" / t)) for t in tokens]
    return RecordedIndex(IndexServer(tuple(routes)).start(), tokens)
