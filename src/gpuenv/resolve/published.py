"""What an index publishes for one project, to name what exists when a request asks for what does not:
its versions (from the project page) and one release's extras (`Provides-Extra` of its METADATA).

Read through gpuenv's own index client (kb/index.py: the same network policy as the resolver). Answers
are for messages only: a failure to read gives an empty list, never an error of its own.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from email.parser import Parser
from typing import Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gpuenv.errors import GpuenvError
from gpuenv.kb.index import IndexClient, Network, Page, distribution_file
from gpuenv.resolve.packages import Source


def versions_of(name: str, source: Source) -> list[str]:
    """The project's final releases on the main index, oldest first ([] when it cannot be read)."""
    page = _page(name, source)
    if page is None:
        return []
    found = {v for link in page.links if not link.yanked and (v := _version_of(link.filename, name))}
    return [str(v) for v in sorted(found)]


def extras_of(name: str, version: str, source: Source) -> list[str]:
    """The extras the release's METADATA declares ([] when it cannot be read)."""
    page = _page(name, source)
    link = next((x for x in page.links if x.filename.endswith(".whl") and _version_of(x.filename, name) == _v(version)),
                None) if page else None
    if link is None:
        return []
    try:
        text = IndexClient(_network(source)).wheel_metadata(link)
    except GpuenvError:
        return []
    if not text:
        return []
    declared = Parser().parsestr(text, headersonly=True).get_all("Provides-Extra") or []
    return sorted({canonicalize_name(e) for e in declared})


def _page(name: str, source: Source) -> Optional[Page]:
    try:
        return IndexClient(_network(source)).project_page(canonicalize_name(name))
    except GpuenvError:
        return None


def _network(source: Source) -> Network:
    proxies = dict(source.proxies)
    no_proxy = tuple(x for x in proxies.get("NO_PROXY", "").split(",") if x)
    return Network(source.index, "resolver", proxies.get("HTTP_PROXY"), proxies.get("HTTPS_PROXY"), no_proxy,
                   source.ca_files, "network.ca_certificates", source.trusted_hosts)


def _version_of(filename: str, name: str) -> Optional[Version]:
    """The final-release version in a wheel's or an sdist's file name, when the file is the project's."""
    found = distribution_file(filename)
    if found is None or found[0] != canonicalize_name(name):
        return None
    return None if found[1].is_prerelease or found[1].is_devrelease else found[1]


def _v(text: str) -> Optional[Version]:
    try:
        version = Version(text)
    except InvalidVersion:
        return None
    return None if version.is_prerelease or version.is_devrelease else version


SDIST_LIMIT = 64 << 20          # a source distribution read for its PKG-INFO: larger ones are not fetched


def sdist_requires(name: str, version: str, source: Source) -> Optional[tuple[str, ...]]:
    """The Requires-Dist of a release's source distribution, from the PKG-INFO setuptools wrote into it
    when it was made: for a package the image builds from source whose metadata the resolver would have
    to build first, when that build needs what only the image has (torch-scatter's setup.py imports
    torch). None when it cannot be read."""
    page = _page(name, source)
    link = next((x for x in page.links if x.filename.endswith((".tar.gz", ".zip"))
                 and _version_of(x.filename, name) == _v(version)), None) if page else None
    if link is None or (link.size or 0) > SDIST_LIMIT:
        return None
    try:
        answer = IndexClient(_network(source)).get(link.url)
    except GpuenvError:
        return None
    if answer.status != 200 or len(answer.body) > SDIST_LIMIT:
        return None
    text = _pkg_info(link.filename, answer.body)
    if text is None:
        return None
    return tuple(Parser().parsestr(text, headersonly=True).get_all("Requires-Dist") or ())


def _pkg_info(filename: str, body: bytes) -> Optional[str]:
    """The top-level PKG-INFO (`<name>-<version>/PKG-INFO`) of an sdist, as text."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                found = next((n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")), None)
                return archive.read(found).decode("utf-8", "replace") if found else None
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            member = next((m for m in archive.getmembers() if m.isfile() and m.name.count("/") == 1
                           and m.name.endswith("/PKG-INFO")), None)
            handle = archive.extractfile(member) if member else None
            return handle.read().decode("utf-8", "replace") if handle else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
        return None
