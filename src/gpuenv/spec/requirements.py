"""A spec's requirements file (`requirements = "requirements.txt"`), read as pip reads one, and confined.

The file, and every file it names with `-r`, lies inside the spec's folder (symlinks resolved), is UTF-8
text, and holds only what gpuenv honours; anything else is a problem naming FILE:LINE, never dropped:

    NAME[extras] SPECIFIER [; marker]   a requirement (markers: pip decides in the image; not on frameworks)
    NAME @ https://... | git+https://...  a direct URL requirement, installed as written
    -r FILE, --requirement FILE         another file, relative to this one, followed (a cycle is a problem)
    -i/--index-url, --extra-index-url,  the network policy, as if written in [network]: an index URL that
    --trusted-host                      differs from network.pip_index is a problem; the lists are joined
    refused with the reason:            -c (constraints), -e (editable), local paths and bare URLs,
                                        --hash and every other pip option
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement

from gpuenv.kb.frameworks import family_of
from gpuenv.spec import values


@dataclass
class RequirementsFile:
    """What a requirements file (and those it includes) asks for, and what is wrong with it."""

    requirements: list[str] = field(default_factory=list)        # PEP 508 texts, normal form
    index_url: Optional[str] = None
    extra_index_urls: list[str] = field(default_factory=list)
    trusted_hosts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)            # "requirements.txt:3: ..."
    index_line: str = ""                                         # FILE:LINE of the index URL
    files: list[Path] = field(default_factory=list)              # every file read (-r too), resolved


def read_requirements(path: Path, folder: Path) -> RequirementsFile:
    """The requirements file at `path`, whose files must all lie inside `folder`."""
    reader = _Reader(folder.resolve())
    reader.read(path, ())
    return reader.found


@dataclass(frozen=True)
class _Line:
    text: str
    where: str                   # "reqs/base.txt:3"
    file: Path                   # the file it is in, symlinks resolved
    chain: tuple[Path, ...]      # the files that led here through -r, this one last


class _Reader:
    """Reads one requirements file and those it includes into `found`, every file confined to `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.found = folder, RequirementsFile()

    def read(self, path: Path, chain: tuple[Path, ...]) -> None:
        real, shown = path.resolve(), self.shown(path)
        if real in chain:
            cycle = " -> ".join(self.shown(p) for p in (*chain, real))
            self.found.problems.append(f"{shown}: includes itself (a cycle of -r: {cycle})")
            return
        text = self.text(path, shown, "the spec's folder" if not chain else "the file that names it")
        self.found.files += [real] if text is not None else []
        for number, line in _logical_lines(text or ""):
            self.line(_Line(line, f"{shown}:{number}", real, (*chain, real)))

    def shown(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.folder))
        except ValueError:
            return str(path)

    def text(self, path: Path, shown: str, relative_to: str) -> Optional[str]:
        real, problem = path.resolve(), None
        if not path.exists():
            problem = f"no file at {path}: the path is relative to {relative_to}"
        elif real != self.folder and self.folder not in real.parents:
            problem = (f"{shown}: is outside the spec's folder {self.folder} (symlinks resolved); requirements "
                       "files must live next to gpuenv.toml")
        elif not real.is_file():
            problem = f"{shown}: is not a file"
        if problem:
            self.found.problems.append(problem)
            return None
        return self.decoded(real, shown)

    def decoded(self, real: Path, shown: str) -> Optional[str]:
        try:
            data = real.read_bytes()
        except OSError as exc:
            self.found.problems.append(f"{shown}: cannot be read ({exc.strerror})")
            return None
        problem = _not_text(data)
        if problem:
            self.found.problems.append(f"{shown}: {problem}")
            return None
        return data.decode("utf-8")

    def line(self, line: _Line) -> None:
        why = values.writable(line.text)
        if why:
            self.found.problems.append(f"{line.where}: {why}")
        elif line.text.startswith("-"):
            self.option(line)
        else:
            _requirement(line.text, line.where, self.found)

    def option(self, line: _Line) -> None:
        name, given = _split_option(line.text)
        problem = _option_problem(name, given)
        if problem:
            self.found.problems.append(f"{line.where}: {problem}")
        elif name in _INCLUDE:
            self.read(line.file.parent / given[0], line.chain)
        else:
            _network(_NETWORK[name], given[0], line.where, self.found)


def _not_text(data: bytes) -> Optional[str]:
    if b"\0" in data:
        return f"is a binary file, not a requirements file (a NUL byte at offset {data.index(0)})"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte {exc.start}), not a requirements file"
    return None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with comments gone and backslash continuations joined, as pip does."""
    lines, start, held = [], 0, ""
    for number, raw in enumerate(text.split("\n"), 1):
        raw = raw.rstrip("\r")
        start = start or number
        if raw.endswith("\\"):
            held += raw[:-1]
            continue
        line = re.sub(r"(^|\s)#.*$", "", held + raw).strip()
        if line:
            lines.append((start, line))
        held, start = "", 0
    return lines


_NETWORK = {"-i": "index", "--index-url": "index", "--extra-index-url": "extra", "--trusted-host": "trusted"}
_INCLUDE = ("-r", "--requirement")
_REFUSED = {
    "-c": "constraints files (-c) are not supported: pin the versions in the requirements themselves",
    "--constraint": "constraints files are not supported: pin the versions in the requirements themselves",
    "-e": "editable installs (-e) cannot work in an image: the source is not in it; install a released "
          "version, or NAME @ git+https://... for a repository",
    "--editable": "editable installs cannot work in an image: install a released version instead",
}
_EXAMPLE = {"-r": "other.txt", "--requirement": "other.txt", "--trusted-host": "pypi.example.com"}


def _option_problem(name: str, given: list[str]) -> Optional[str]:
    if name in _REFUSED:
        return _REFUSED[name]
    if name not in _INCLUDE and name not in _NETWORK:
        return (f"the pip option {name!r} is not supported in a requirements file gpuenv reads (it knows -r, "
                "--index-url, --extra-index-url, --trusted-host); put the setting in gpuenv.toml's [network], "
                "or remove it")
    if len(given) != 1:
        return f"{name} takes one value, such as {name} {_EXAMPLE.get(name, 'https://pypi.example.com/simple')}"
    return None


def _split_option(line: str) -> tuple[str, list[str]]:
    """("--index-url", ["https://..."]) from `--index-url URL`, `--index-url=URL`, `-i URL` or `-iURL`."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    head, rest = words[0], words[1:]
    if "=" in head and head.startswith("--"):
        head, _, first = head.partition("=")
        rest = [first, *rest]
    elif re.fullmatch(r"-[a-zA-Z].+", head):
        head, rest = head[:2], [head[2:], *rest]
    return head, rest


def _network(kind: str, value: str, where: str, found: RequirementsFile) -> None:
    check = values.hostname if kind == "trusted" else values.url("http", "https", login=False)
    try:
        value = check(value)
    except ValueError as exc:
        found.problems.append(f"{where}: {value!r} {exc}")
        return
    if kind == "index":
        if found.index_url not in (None, value):
            found.problems.append(f"{where}: a second index URL {value!r}, after {found.index_url!r} at "
                                  f"{found.index_line}; give one")
        found.index_url, found.index_line = value, found.index_line or where
    else:
        target = found.trusted_hosts if kind == "trusted" else found.extra_index_urls
        target.extend([] if value in target else [value])


_PATH_LIKE = re.compile(r"^(\.{0,2}/|~|file:)|\.(whl|zip|tar\.gz|tgz)$")


def _requirement(line: str, where: str, found: RequirementsFile) -> None:
    if re.search(r"\s--?[a-zA-Z]", line):
        found.problems.append(f"{where}: options after a requirement (such as --hash) are not supported: "
                              "`gpuenv lock` records hashes, and `gpuenv build --locked` checks them")
        return
    try:
        req = Requirement(line)
    except InvalidRequirement:
        found.problems.append(f"{where}: {_not_a_requirement(line)}")
        return
    problem = _unusable(req)
    if problem:
        found.problems.append(f"{where}: {problem}")
    else:
        found.requirements.append(str(req))


def _not_a_requirement(line: str) -> str:
    if _PATH_LIKE.search(line):
        return (f"{line!r} is a local path or file, which is not in the image's build context: publish it "
                "to an index, or name it NAME @ https://...")
    if re.match(r"^[a-z+]+://", line):
        return f"{line!r} is a URL without a project name: write it as NAME @ {line}"
    return f"{line!r} is not a pip requirement such as \"pandas\", \"numpy<2\" or \"name @ https://...\""


def _unusable(req: Requirement) -> Optional[str]:
    if req.url and not re.match(r"^(https?|git\+https?)://", req.url):
        return (f"{req.url!r} is not an http(s) or git+https URL; a local path or file: URL is not in the "
                "image's build context")
    if req.url and family_of(req.name):
        return (f"{req.name} is a framework: gpuenv picks the build of it that fits the planned machine, so a "
                "URL for it cannot be honoured; give a version instead")
    if req.marker is not None and family_of(req.name):
        return (f"{req.name} is a framework: gpuenv picks its build for the planned machine, so an "
                "environment marker on it cannot be honoured; remove the marker")
    return None
