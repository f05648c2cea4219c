"""sha256 hashes of every file of a pinned version, as the spec's package indexes publish them.

Every file of the version, wheels for all platforms and the sdist (as `pip-compile --generate-hashes`
records them), so that the lock holds for any platform of the same Python. Pages are read as PEP 691
JSON (`files[].hashes.sha256`) or PEP 503 HTML (`#sha256=` URL fragments), through gpuenv's index
client (kb/index.py): the spec's proxy, and the host's CA bundle for a TLS-inspecting proxy.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gpuenv.errors import GpuenvError
from gpuenv.host.user import ca_bundle
from gpuenv.kb.index import ACCEPT, PYPI, IndexClient, IndexUnreachableError, distribution_file, network_settings

if TYPE_CHECKING:
    from gpuenv.spec.model import Network

FileHashes = list[tuple[str, str]]       # (filename, sha256 hex)


def json_files(text: str, url: str) -> FileHashes:
    """(filename, sha256) of a PEP 691 JSON project page; files without a sha256 are left out."""
    try:
        files = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise GpuenvError(f"{url} is not a PEP 691 project page: {exc}", "check the index URL") from None
    return [(f["filename"], f["hashes"]["sha256"]) for f in files
            if isinstance(f, dict) and isinstance(f.get("hashes"), dict) and f["hashes"].get("sha256")
            and f.get("filename")]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: FileHashes = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if not href:
            return
        path, _, fragment = href.partition("#")
        name, _, digest = fragment.partition("=")
        if name == "sha256" and digest:
            self.found.append((urllib.parse.unquote(path.rsplit("/", 1)[-1]), digest.lower()))


def html_files(text: str) -> FileHashes:
    """(filename, sha256) of a PEP 503 HTML project page, from the links' `#sha256=` fragments."""
    parser = _Links()
    parser.feed(text)
    parser.close()
    return parser.found


def of_version(files: FileHashes, name: str, version: str) -> list[str]:
    """The "sha256:..." of every file of `name` `version` (wheels and sdists), sorted, no duplicates."""
    want_name, want = canonicalize_name(name), _version(version)
    out = set()
    for filename, digest in files:
        found = distribution_file(filename)
        if found and found[0] == want_name and want is not None and found[1] == want:
            out.add(f"sha256:{digest}")
    return sorted(out)


def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class Indexes:
    """The spec's indexes, in pip's order of asking: the index, then the extra indexes."""

    def __init__(self, clients: Sequence[IndexClient]) -> None:
        self.clients = list(clients)

    def hashes(self, name: str, version: str) -> tuple[list[str], str]:
        """(hashes, where) for the first index that has files of that version; ([], why) when none."""
        for client in self.clients:
            files = self._files(client, name)
            found = of_version(files, name, version) if files else []
            if found:
                return found, client.index
        return [], "no index of the spec has files of this version (a local build or the base's own)"

    @staticmethod
    def _files(client: IndexClient, name: str, tries: int = 3) -> FileHashes:
        for attempt in range(tries):      # a resolver that is briefly overwhelmed (EAI_AGAIN) gets more tries
            try:
                answer = client.get(client.page_url(canonicalize_name(name)), {"Accept": ACCEPT})
                break
            except IndexUnreachableError:
                if attempt + 1 == tries:
                    raise
                time.sleep(1.0 + attempt)
        if answer.status == 404:
            return []
        kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
        text = answer.body.decode("utf-8", errors="replace")
        if kind.endswith("+json") or kind == "application/json":
            return json_files(text, answer.url)
        return html_files(text)

    def all(self, pins: list[tuple[str, str]], workers: int = 6) -> dict[tuple[str, str], tuple[list[str], str]]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            answers = list(pool.map(lambda pin: self.hashes(*pin), pins))
        return dict(zip(pins, answers))


def indexes_for(spec_network: Network, pip_options: Sequence[str], spec_dir: Path) -> Indexes:
    """Clients of the index and extra indexes a build of this spec uses, trusting the host's CA bundle."""
    # the index the build's PIP_INDEX_URL names (the spec's, else PyPI), not this host's pip settings
    net = network_settings(spec_network, index=spec_network.pip_index or PYPI, base_dir=spec_dir)
    net = replace(net, ca_files=(ca_bundle(spec_network.ca_certificates),), ca_origin="this host's CA bundle")
    urls = [net.index] + list(spec_network.pip_extra_indexes) + _extra_urls(pip_options)
    return Indexes([IndexClient(replace(net, index=u.rstrip("/"))) for u in dict.fromkeys(urls)])


def _extra_urls(options: Sequence[str]) -> list[str]:
    out = []
    for i, word in enumerate(options):
        if word in ("--extra-index-url", "--index-url") and i + 1 < len(options):
            out.append(options[i + 1])
        elif word.startswith("--extra-index-url="):
            out.append(word.split("=", 1)[1])
    return out
