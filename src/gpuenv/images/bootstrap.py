"""Making a base image from an apt mirror alone, for when no registry gives the planned base.

This module owns that image: a minimal root filesystem of a Debian or Ubuntu release (a row of
kb/data/os_releases.toml) made by mmdebstrap (preferred: it streams a tarball, and runs without root in a
user namespace) or debootstrap (root only, into a temporary folder), streamed into `docker import` as
`gpuenv-base/<family>:<codename>` (`gpuenv-base/debian:bookworm`, `gpuenv-base/ubuntu:jammy`).

The image is set up as the official images are, so that gpuenv's Dockerfile treats it like one: APT
sources in the release's own file (/etc/apt/sources.list.d/<family>.sources from Debian 12 and Ubuntu
24.04 on, else /etc/apt/sources.list; never both) with the release, its -updates and its security
suite, naming the archive it was built from; apt's lists and caches empty; no host /etc/hostname or
/etc/resolv.conf; LANG=C.UTF-8, CMD ["bash"], and labels io.gpuenv.base-os, -mirror, -built, -tool.
mmdebstrap builds from all three suites (the image has the security updates); debootstrap from the
release alone.

A mirror is given as gpuenv.toml's network.apt_mirror is, the server that holds debian/ and
debian-security/ (or ubuntu/), the way the Dockerfile's APT_MIRROR uses it, or as the archive's own URL,
ending in /debian or /ubuntu. Suites the mirror lacks (-updates, security) are left out of the image's
sources rather than break apt; a mirror without the release itself is an error before anything runs.

Ubuntu is built for amd64 (and i386) only: other architectures are served from ports.ubuntu.com, which
the table does not name.

It decides nothing about when a base is needed (build/base.py does) and prints nothing: progress goes to
the `log` callback, failures are GpuenvErrors with the tool's last lines and a hint; nothing half-made is
left behind (no image, no tag, no temporary folder), on Ctrl-C too.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Deque, Optional, Sequence

from gpuenv.errors import EngineError, GpuenvError
from gpuenv.kb.tables import load_table

Log = Callable[[str], None]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_TAIL = 20                  # lines of a tool's output an error carries
_LINE = 400                 # characters of one line kept (mmdebstrap names every .deb in one line)
_PROBE_TIMEOUT = 20         # seconds for the mirror to answer a Release file
_STOP_WAIT = 30             # seconds a tool gets to clean up after SIGTERM (mmdebstrap unmounts its chroot)
_VALID_UNTIL = 'Acquire::Check-Valid-Until "false";'   # archived Release files are past their Valid-Until
_DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
# Debian: merged /usr through the usr-is-merged package where the release has it (12 on), as debootstrap does;
# without it mmdebstrap installs usrmerge, and perl with it (+47 MB). It fails on Ubuntu 24.04 (1.3.5).
_MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")


def _quiet(line: str) -> None:
    pass


@dataclass(frozen=True)
class OsRelease:
    """A release gpuenv can build a base of: one row of kb/data/os_releases.toml."""

    os: str                        # "debian12", "ubuntu22.04"
    family: str                    # "debian" | "ubuntu"
    codename: str                  # "bookworm", "jammy"
    version: str                   # "12", "22.04"
    mirror: str                    # the archive that serves it by default
    security_mirror: str           # the archive of its security updates by default
    security_suite: str            # "bookworm-security", "buster/updates"
    components: tuple[str, ...]
    python: str                    # the python3 it ships, "3.11"
    deb822: bool                   # sources in sources.list.d/<family>.sources
    keyrings: tuple[str, ...]      # host files that verify its archive; the first is also the image's own
    keyring_package: str
    tools: tuple[str, ...]         # bootstrappers that build it, best first
    archived: bool                 # moved to archive.debian.org / old-releases.ubuntu.com
    source: str

    @property
    def sources_path(self) -> str:
        """The file the official image keeps its APT sources in (the one the Dockerfile edits)."""
        return f"/etc/apt/sources.list.d/{self.family}.sources" if self.deb822 else "/etc/apt/sources.list"


@dataclass(frozen=True)
class AptSource:
    """One archive in the image's sources, with the suites it serves."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class Tool:
    """The program that makes the root filesystem, and how it runs here."""

    name: str                      # "mmdebstrap" | "debootstrap"
    path: str
    mode: str                      # "root" | "unshare" (mmdebstrap as a user, in a user namespace)


@dataclass(frozen=True)
class BaseImage:
    """A base image made here."""

    tag: str
    os: str
    mirror: str                    # the archive it was built from, named in its sources
    seconds: float
    size: int                      # bytes, as the engine counts them
    tool: str = ""
    image_id: str = ""


# ---- the releases

def releases() -> tuple[OsRelease, ...]:
    return tuple(_from_row(row) for row in load_table("os_releases")["release"])


def _from_row(row: dict) -> OsRelease:
    fields = {k: v for k, v in row.items() if k in OsRelease.__dataclass_fields__}
    lists = {key: tuple(row[key]) for key in ("components", "keyrings", "tools")}
    return OsRelease(**{**fields, **lists})


def release(os_name: str) -> Optional[OsRelease]:
    """The release gpuenv writes as `os_name` ("debian12", "ubuntu22.04"), or None when it cannot build it."""
    return next((r for r in releases() if r.os == os_name), None)


def _known(os_name: str) -> OsRelease:
    found = release(os_name)
    if found is None:
        names = ", ".join(r.os for r in releases())
        raise GpuenvError(f"gpuenv cannot build a base image of {os_name} itself: it builds {names}",
                          "choose a base on one of those releases, or make the planned base reachable "
                          "(a registry mirror, or `docker load` of a saved copy)")
    return found


def local_tag(os_name: str) -> str:
    """The name gpuenv gives its own base of a release: gpuenv-base/<family>:<codename>."""
    found = _known(os_name)
    return f"gpuenv-base/{found.family}:{found.codename}"


# ---- the image's APT sources (pure)

def archive_url(found: OsRelease, mirror: Optional[str] = None) -> str:
    """The archive the base is built from: the release's own, or the mirror's (APT_MIRROR/<family>)."""
    if not mirror:
        return found.mirror
    url = mirror.rstrip("/")
    return url if url.endswith("/" + found.family) else f"{url}/{found.family}"


def _security_url(found: OsRelease, archive: str) -> str:
    if archive == found.mirror:
        return found.security_mirror
    if found.family == "ubuntu":
        return archive                  # an Ubuntu mirror serves <codename>-security with the rest
    return archive + "-security"        # .../debian -> .../debian-security, as deb.debian.org lays them out


def apt_sources(found: OsRelease, mirror: Optional[str] = None,
                missing: frozenset[tuple[str, str]] = frozenset()) -> tuple[AptSource, ...]:
    """The release, its -updates and its security suite on the archive, less the (uri, suite) pairs missing."""
    archive = archive_url(found, mirror)
    pairs = ((archive, found.codename), (archive, f"{found.codename}-updates"),
             (_security_url(found, archive), found.security_suite))
    grouped: dict[str, list[str]] = {}
    for uri, suite in pairs:
        if (uri, suite) not in missing:
            grouped.setdefault(uri, []).append(suite)
    return tuple(AptSource(uri, tuple(suites), found.components) for uri, suites in grouped.items())


def sources_text(found: OsRelease, sources: Sequence[AptSource]) -> str:
    """The image's sources file, in the release's own format (deb822 stanzas, or one-line entries)."""
    if found.deb822:
        return "\n".join(_stanza(found, s) for s in sources)
    return "".join(f"deb {s.uri} {suite} {' '.join(s.components)}\n" for s in sources for suite in s.suites)


def _stanza(found: OsRelease, source: AptSource) -> str:
    return (f"Types: deb\nURIs: {source.uri}\nSuites: {' '.join(source.suites)}\n"
            f"Components: {' '.join(source.components)}\nSigned-By: {found.keyrings[0]}\n")


def finish_script(found: OsRelease, text: str) -> str:
    """One line of shell that makes the root filesystem at $1 what the image holds: the sources file `text`
    alone, no host files, apt's lists and caches empty (an mmdebstrap customize hook; `sh -c` after
    debootstrap). One line: mmdebstrap takes a hook with a newline for a file name, and warns."""
    steps = [
        'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1/etc/apt/sources.list"',
        'mkdir -p "$1/etc/apt/sources.list.d" "$1/etc/apt/apt.conf.d"',
        f'printf {shlex.quote(_printf_format(text))} > "$1{found.sources_path}"',
    ]
    if found.archived:
        steps.append(f'printf {shlex.quote(_printf_format(_VALID_UNTIL + chr(10)))} '
                     '> "$1/etc/apt/apt.conf.d/99gpuenv-archived"')
    steps.append('rm -rf "$1"/var/lib/apt/lists/*_* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb')
    return " && ".join(steps)


def _printf_format(text: str) -> str:
    """`text` as a printf format that prints it: on one line (newlines as \\n), percent signs doubled."""
    return text.replace("\\", "\\\\").replace("%", "%%").replace("\n", "\\n")


# ---- which tool

def tool(os_name: Optional[str] = None) -> Optional[Tool]:
    """The bootstrapper that can run here (for `os_name`: one that builds that release), best first:
    mmdebstrap as root or as a user where user namespaces work, debootstrap as root. None: none can."""
    names = _known(os_name).tools if os_name else ("mmdebstrap", "debootstrap")
    for name in names:
        usable = _usable(name)
        if usable:
            return usable
    return None


def _usable(name: str) -> Optional[Tool]:
    path = shutil.which(name)
    if path is None:
        return None
    if os.geteuid() == 0:
        return Tool(name, path, "root")
    if name == "mmdebstrap" and _unshare_works(path):
        return Tool(name, path, "unshare")
    return None


def _unshare_works(path: str) -> bool:
    """mmdebstrap's own test: a command in the user namespace it would build in (subuid ranges, newuidmap)."""
    try:
        return subprocess.run([path, "--unshare-helper", "true"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _sudo() -> str:
    return "" if os.geteuid() == 0 else "sudo "


def missing_tool_hint(os_name: Optional[str] = None) -> str:
    """What to install (and how to run) so that `tool(os_name)` finds a bootstrapper."""
    if os_name and release(os_name) and "mmdebstrap" not in _known(os_name).tools:
        return (f"{os_name} is built with debootstrap, as root: `{_sudo()}apt-get install debootstrap`, then run "
                "gpuenv as root (mmdebstrap cannot configure that release's essential packages)")
    text = (f"install mmdebstrap: `{_sudo()}apt-get install mmdebstrap` (Debian 11 on, Ubuntu 20.04 on); "
            "debootstrap (`apt-get install debootstrap`) works too, as root")
    if os.geteuid() != 0:
        text += ("; as a user, mmdebstrap needs user namespaces: `sudo apt-get install uidmap` and ranges for you "
                 "in /etc/subuid and /etc/subgid (`sudo usermod --add-subuids 100000-165535 "
                 "--add-subgids 100000-165535 $USER`)")
    return text


def host_keyrings(found: OsRelease) -> tuple[str, ...]:
    """The release's keyring files this host has; an error naming the package when it has none."""
    present = tuple(k for k in found.keyrings if os.path.isfile(k))
    if present:
        return present
    install = f"`{_sudo()}apt-get install {found.keyring_package}`"
    hint = f"install it: {install}"
    if found.family == "ubuntu":
        hint += (" (Ubuntu, Debian 13 on; Debian 12 has it in bookworm-backports: add "
                 "`deb http://deb.debian.org/debian bookworm-backports main` to the sources, then "
                 f"`{_sudo()}apt-get install -t bookworm-backports {found.keyring_package}`)")
    raise GpuenvError(f"building a base of {found.os} needs the {found.family} archive keyring "
                      f"{found.keyrings[0]}, which this machine does not have", hint)


# ---- the mirror

def _unanswered(uri: str, suite: str) -> Optional[str]:
    """None when the archive serves the suite (its InRelease or Release file), else why not."""
    why = ""
    for name in ("InRelease", "Release"):
        url = f"{uri}/dists/{suite}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as answer:
                answer.read(1)
            return None
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code} for {url}"
        except urllib.error.URLError as exc:
            return f"{url}: {exc.reason}"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return f"{url}: {exc}"
    return why


def _reachable_sources(found: OsRelease, mirror: Optional[str], log: Log) -> tuple[AptSource, ...]:
    archive = archive_url(found, mirror)
    why = _unanswered(archive, found.codename)
    if why:
        raise GpuenvError(f"the apt mirror {archive} does not serve {found.os} ({found.codename}): {why}",
                          _mirror_hint(found, archive))
    missing = set()
    for source in apt_sources(found, mirror):
        for suite in source.suites:
            if suite != found.codename and _unanswered(source.uri, suite):
                log(f"{source.uri} does not serve {suite}: left out of the image's APT sources")
                missing.add((source.uri, suite))
    return apt_sources(found, mirror, frozenset(missing))


def _mirror_hint(found: OsRelease, archive: str) -> str:
    hint = (f"check the mirror's address (network.apt_mirror: the server that holds {found.family}/, or the "
            f"archive itself, {found.mirror}) and that it mirrors {found.codename}")
    if found.archived:
        hint += f"; {found.os} is archived: its packages are at {found.mirror} and mirrors of it"
    return hint


# ---- making it

def bootstrap(docker: Sequence[str], os_name: str, mirror: Optional[str], tag: str, log: Log = _quiet,
              *, using: Optional[Tool] = None) -> BaseImage:
    """Build the base of `os_name` from the apt mirror (None: the release's own archive) and tag it `tag`.

    `docker` is the client's argv prefix (["/usr/bin/docker"]); `using` forces a tool (else `tool()`)."""
    found = _known(os_name)
    chosen = using or tool(os_name)
    if chosen is None:
        raise GpuenvError(f"cannot build a base image of {os_name} here: it takes {' or '.join(found.tools)}, "
                          "and none can run", missing_tool_hint(os_name))
    keyrings = host_keyrings(found)
    started = time.monotonic()
    archive = archive_url(found, mirror)
    sources = _reachable_sources(found, mirror, log)
    built = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    importing = _import_argv(docker, found, archive, built, chosen)
    try:
        image_id = _make(chosen, found, archive, sources, keyrings, importing, log)
        size = _install(docker, image_id, tag)
    except BaseException:
        _discard(docker, found, built)
        raise
    return BaseImage(tag, found.os, archive, round(time.monotonic() - started, 1), size, chosen.name, image_id)


def _import_argv(docker: Sequence[str], found: OsRelease, archive: str, built: str, chosen: Tool) -> list[str]:
    labels = {"io.gpuenv.base-os": found.os, "io.gpuenv.base-mirror": archive, "io.gpuenv.base-built": built,
              "io.gpuenv.base-tool": chosen.name}
    label = " ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())
    changes = [f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["bash"]', f"LABEL {label}"]
    message = f"gpuenv: {found.os} ({found.codename}) from {archive} by {chosen.name}"
    return [*docker, "import", *(f"--change={c}" for c in changes), f"--message={message}", "-"]


def _make(chosen: Tool, found: OsRelease, archive: str, sources: Sequence[AptSource], keyrings: Sequence[str],
          importing: list[str], log: Log) -> str:
    script = finish_script(found, sources_text(found, sources))
    if chosen.name == "mmdebstrap":
        return _stream(mmdebstrap_argv(chosen, found, sources, keyrings, script), importing, log, "mmdebstrap")
    return _debootstrapped(chosen, found, archive, keyrings[0], script, importing, log)


def mmdebstrap_argv(chosen: Tool, found: OsRelease, sources: Sequence[AptSource], keyrings: Sequence[str],
                    script: str) -> list[str]:
    """mmdebstrap writing the minbase root filesystem of every suite in `sources` as a tarball to stdout."""
    signed = f"[signed-by={','.join(keyrings)}] "
    entries = [f"deb {signed}{s.uri} {suite} {' '.join(s.components)}" for s in sources for suite in s.suites]
    argv = [chosen.path, "--variant=minbase", "--include=apt", "--format=tar", f"--mode={chosen.mode}",
            f"--customize-hook={script}"]   # Ubuntu's apt is Priority: important, outside minbase's set
    if found.family == "debian" and _MERGED_USR_HOOK.is_dir():   # Ubuntu's own packages merge /usr
        argv.append(f"--hook-dir={_MERGED_USR_HOOK}")
    if found.archived:
        argv.append(f"--aptopt={_VALID_UNTIL}")
    return [*argv, found.codename, "-", *entries]


def debootstrap_argv(chosen: Tool, found: OsRelease, archive: str, keyring: str, target: str) -> list[str]:
    """debootstrap of the release alone into `target`, with the family's script when it lacks the codename's."""
    argv = [chosen.path, "--variant=minbase", f"--keyring={keyring}",
            f"--components={','.join(found.components)}", found.codename, target, archive]
    if not (_DEBOOTSTRAP_SCRIPTS / found.codename).exists():
        argv.append(str(_DEBOOTSTRAP_SCRIPTS / ("gutsy" if found.family == "ubuntu" else "sid")))
    return argv


def _debootstrapped(chosen: Tool, found: OsRelease, archive: str, keyring: str, script: str,
                    importing: list[str], log: Log) -> str:
    target = tempfile.mkdtemp(prefix="gpuenv-rootfs-")
    try:
        try:
            _run(debootstrap_argv(chosen, found, archive, keyring, target), log, "debootstrap", _debootstrap_noise)
        except GpuenvError as exc:
            raise GpuenvError(exc.message + _log_tail(Path(target, "debootstrap", "debootstrap.log")),
                              exc.hint) from None
        _run(["sh", "-c", script, "sh", target], log, "the root filesystem's clean-up")
        return _stream(["tar", "--numeric-owner", "-C", target, "-cf", "-", "."], importing, log, "tar")
    finally:
        _remove_tree(target, log)


def _debootstrap_noise(line: str) -> bool:
    """debootstrap's line per package (hundreds): kept for an error, not logged."""
    return line.startswith(("I: Retrieving", "I: Validating", "I: Extracting", "I: Unpacking", "I: Configuring"))


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-_TAIL:]
    except OSError:
        return ""
    return "\n" + f"{path.name}:\n" + "\n".join(lines) if lines else ""


# ---- processes

def _follow(stream: IO[bytes], log: Log, tail: Deque[str], noise: Callable[[str], bool]) -> None:
    for raw in stream:
        line = raw.decode(errors="replace").rstrip()[:_LINE]
        if line:
            tail.append(line)
            if not noise(line):
                try:
                    log(line)
                except Exception:   # a failing callback must not stop the draining (the tool would block)
                    log = _quiet


def _run(argv: list[str], log: Log, name: str, noise: Callable[[str], bool] = lambda line: False) -> None:
    tail: Deque[str] = deque(maxlen=_TAIL)
    process = _start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None                 # stdout=PIPE
    try:
        _follow(process.stdout, log, tail, noise)
        process.wait()
    finally:
        _stop(process)
    if process.returncode != 0:
        raise _failed(name, process.returncode, tail)


def _stream(producing: list[str], importing: list[str], log: Log, name: str) -> str:
    """Pipe the producer's tarball into `docker import`; the new image's id."""
    tail: Deque[str] = deque(maxlen=_TAIL)
    producer = _start(producing, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None                # stdout=PIPE
    importer = None
    try:
        importer = _start(importing, stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        producer.stdout.close()
        reader = threading.Thread(target=_follow, args=(producer.stderr, log, tail, lambda line: False), daemon=True)
        reader.start()
        out, err = importer.communicate()
        producer.wait()
        reader.join()
    finally:
        _stop(producer, importer)
    said = err.decode(errors="replace").strip()
    if producer.returncode != 0:
        extra = f"\n(docker import: {said})" if importer.returncode != 0 and said else ""
        raise _failed(name, producer.returncode, tail, extra)
    if importer.returncode != 0:
        raise EngineError(f"docker import of the root filesystem failed: {said or 'no message'}",
                          "check that the engine answers (`gpuenv doctor`) and has disk space")
    return out.decode().strip()


def _start(argv: list[str], **kw) -> subprocess.Popen:
    try:
        return subprocess.Popen(argv, stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
    except OSError as exc:
        raise GpuenvError(f"cannot run {argv[0]}: {exc.strerror or exc}",
                          f"is {argv[0]} installed (and on PATH)?") from None


def _stop(*processes: Optional[subprocess.Popen]) -> None:
    """Whatever still runs (an error, Ctrl-C) gets SIGTERM and time to clean up, then SIGKILL."""
    for process in processes:
        if process is None or process.poll() is not None:
            continue
        process.terminate()
        try:
            process.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _failed(name: str, code: int, tail: Deque[str], extra: str = "") -> GpuenvError:
    said = "\n".join(tail) or "(it said nothing)"
    return GpuenvError(f"{name} failed (exit {code}) building the base's root filesystem; its last lines:\n"
                       f"{said}{extra}",
                       "a download or signature error means the mirror lacks the release or is not a copy of "
                       "the official archive: check network.apt_mirror; a mount or permission error means this "
                       "machine does not let the tool build here (`gpuenv doctor`)")


def _remove_tree(path: str, log: Log) -> None:
    """Remove a temporary root filesystem: what debootstrap left mounted in it first, never crossing into
    another file system (a /dev or /proc it bound in is not deleted through)."""
    for mount in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", path], capture_output=True)
    if os.path.exists(path):
        log(f"could not remove the temporary root filesystem {path}: remove it by hand")


def _mounts_under(path: str) -> list[str]:
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    except OSError:
        return []
    points = [p.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\") for p in points]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


# ---- the engine

def _docker(docker: Sequence[str], *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*docker, *args], capture_output=True, text=True)
    except OSError as exc:
        return subprocess.CompletedProcess([*docker, *args], 127, "", str(exc))


def _install(docker: Sequence[str], image_id: str, tag: str) -> int:
    """Tag the new image (only now: a failure never leaves the tag on half an image); drop the image
    the tag named before when nothing else uses it. Its size in bytes."""
    before = _docker(docker, "image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    done = _docker(docker, "tag", image_id, tag)
    if done.returncode != 0:
        raise EngineError(f"docker tag {image_id} {tag} failed: {done.stderr.strip()}")
    if before and before != image_id:
        _docker(docker, "image", "rm", before)     # refused while a container or another tag uses it: fine
    size = _docker(docker, "image", "inspect", "--format", "{{.Size}}", image_id).stdout.strip()
    return int(size) if size.isdigit() else 0


def _discard(docker: Sequence[str], found: OsRelease, built: str) -> None:
    """Remove what this attempt imported (found by its labels: the id may never have been read)."""
    listed = _docker(docker, "images", "--quiet", "--no-trunc", "--filter", f"label=io.gpuenv.base-os={found.os}",
                     "--filter", f"label=io.gpuenv.base-built={built}")
    ids = sorted(set(listed.stdout.split()))
    if ids:
        _docker(docker, "image", "rm", "--force", *ids)
