"""A registry reference as `gpuenv push` / `gpuenv pull` take it: host[:port]/repo[:tag][@sha256:HEX].

The host is required (a private registry is the point), so "vision:1" is refused with an example
rather than sent to Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from gpuenv.errors import BadInput

_HOST = re.compile(r"^(localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")
_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
EXAMPLE = "127.0.0.1:5000/vision, registry.lab.example:5000/group/vision:v1"


@dataclass(frozen=True)
class Ref:
    host: str                       # host[:port]
    repo: str                       # path in the registry: group/vision
    tag: Optional[str] = None
    digest: Optional[str] = None    # sha256:...

    @property
    def name(self) -> str:
        """host/repo: what `docker image inspect` .RepoDigests entries start with."""
        return f"{self.host}/{self.repo}"

    def tagged(self, tag: Optional[str] = None) -> str:
        return f"{self.name}:{tag or self.tag}"

    def pinned(self, digest: Optional[str] = None) -> str:
        return f"{self.name}@{digest or self.digest}"

    def __str__(self) -> str:
        text = self.name + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")


def parse(text: str, digest_allowed: bool = True) -> Ref:
    """REF checked part by part; BadInput naming the part that is wrong."""
    text = text.strip()
    rest, _, digest = text.partition("@")
    if digest and (not digest_allowed or not _DIGEST.match(digest)):
        raise _bad(text, "a digest is sha256: and 64 hex digits" if digest_allowed else
                   "push takes a tag, not a digest (the registry gives the digest)")
    host, slash, path = rest.partition("/")
    if not slash or not _HOST.match(host) or not ("." in host or ":" in host or host == "localhost"):
        raise _bad(text, "it must start with the registry's host (and port): HOST[:PORT]/REPO")
    repo, tag = path, None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = path.rsplit(":", 1)
        if not _TAG.match(tag):
            raise _bad(text, f"the tag '{tag}' may hold letters, digits, '_', '.', '-' (at most 128)")
    if not repo or not all(_COMPONENT.match(part) for part in repo.split("/")):
        raise _bad(text, f"the repository '{repo}' must be lowercase letters and digits, parts separated by '/'")
    if len(repo) + len(host) > 255:
        raise _bad(text, "the name is longer than 255 characters")
    return Ref(host, repo, tag, digest or None)


def _bad(text: str, why: str) -> BadInput:
    return BadInput(f"'{text}' is not a registry reference: {why}", f"e.g. {EXAMPLE}")
