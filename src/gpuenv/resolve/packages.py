"""The whole environment through a real resolver: `uv pip compile` (PyPI's `uv`, docs/decisions.md).

gpuenv's knowledge decides the framework build (variant, index, CUDA, driver, archs); uv then resolves
everything together (the framework requirement with its index, the access tools, the spec's packages
and requirements file) for the target Python and Linux x86_64, from the index's own metadata, through
the spec's network policy (index, extra indexes, trusted hosts, proxies, CAs). Wheels only: the
environments have no compiler (issue 18 adds one), so uv never builds a package to read its metadata.

Each Dockerfile pip step is one input file, so uv's `# via -r <step>.in` says which step asked for a
distribution; a distribution goes to the first step that needs it (`_first_steps`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from gpuenv import kb                 # kb.index, the HTTP client, loads only when an index is asked
from gpuenv.errors import GpuenvError
from gpuenv.kb.mirrors import mirrored_wheel_url
from gpuenv.resolve import answers
from gpuenv.resolve.resolved import Pin, Resolved, StepPins, StepRequires

if TYPE_CHECKING:
    from gpuenv.spec.model import Network

PLATFORM = "x86_64-manylinux_2_28"
OLDEST_PYTHON = (3, 6)        # uv resolves for Python >= 3.6
TIMEOUT_S = 300


@dataclass(frozen=True)
class Source:
    """Where the resolver reads packages from, and how it gets there (the spec's network policy)."""

    index: str = "https://pypi.org/simple"
    extra_indexes: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    proxies: tuple[tuple[str, str], ...] = ()      # ("HTTPS_PROXY", url), ...
    ca_files: tuple[str, ...] = ()                 # added to the system's CAs
    pytorch_wheels: str = ""                       # network.pytorch_wheels: a copy of download.pytorch.org
    wheel_mirrors: tuple[tuple[str, str], ...] = ()  # network.wheel_mirrors: (upstream prefix, copy)
    offline: bool = False                          # GPUENV_OFFLINE / --offline: the knowledge base alone
    sdists: tuple[str, ...] = ()                   # packages with no wheel, allowed as source distributions
    # (name, version, Requires-Dist) of sdists whose metadata only their build gives, which needs torch: read
    # from their PKG-INFO (resolve/published.sdist_requires) and handed to uv as static metadata
    static_metadata: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


class NoSolution(Exception):
    """uv found no set of versions that satisfies every requirement; `cause` is its explanation."""

    def __init__(self, cause: str, python: str) -> None:
        super().__init__(cause)
        self.cause = cause
        self.python = python


class Unreachable(Exception):
    """No answer from an index (network, proxy, TLS, an index uv cannot read): the plan rests on the kb."""


class MissingExtra(Exception):
    """A requirement names an extra its release does not publish (uv only warns and drops it)."""

    def __init__(self, name: str, version: str, extra: str) -> None:
        super().__init__(f"{name} {version} has no extra {extra}")
        self.name, self.version, self.extra = name, version, extra


class NoMetadata(Exception):
    """uv had to build a source distribution to learn its dependencies, and that build failed (its setup.py
    imports what an isolated build has not: torch)."""

    def __init__(self, name: str, version: str, cause: str) -> None:
        super().__init__(f"{name} {version}: {cause}")
        self.name, self.version, self.cause = canonicalize_name(name), version, cause


class ResolverError(GpuenvError):
    """uv itself failed in a way that is neither a conflict nor the network (its message is kept)."""


def source_for(network: Optional[Network] = None, spec_dir: Optional[Path] = None, offline: bool = False) -> Source:
    """The Source of a spec's `network` table (None: the environment's PIP_INDEX_URL, proxies and CAs)."""
    if offline or os.environ.get("GPUENV_OFFLINE", "") not in ("", "0"):
        return Source(offline=True)     # no index is asked: nothing of the network is read
    net = kb.index.network_settings(network, base_dir=spec_dir)
    client = kb.index.IndexClient(net)
    proxies = tuple((k, v) for k, v in (("HTTP_PROXY", net.http_proxy), ("HTTPS_PROXY", net.https_proxy),
                                        ("NO_PROXY", ",".join(net.no_proxy))) if v)
    extra = tuple(str(u).rstrip("/") for u in (network.pip_extra_indexes if network is not None else ()))
    wheels = str(network.pytorch_wheels or "").rstrip("/") if network is not None else ""
    copies = tuple((str(k).rstrip("/"), str(v).rstrip("/")) for k, v in
                   (network.wheel_mirrors.items() if network is not None else ()))
    for url in (net.index, *extra, *([wheels] if wheels else []), *(c for _, c in copies)):
        client.check_url(url)           # plain http only to a trusted host, as for every index gpuenv reads
    return Source(net.index, extra, net.trusted_hosts, proxies, net.ca_files, wheels, wheel_mirrors=copies)


def resolvable_python(python: str) -> bool:
    try:
        return tuple(int(x) for x in python.split(".")[:2]) >= OLDEST_PYTHON
    except ValueError:
        return False


def compile_steps(steps: Sequence[StepRequires], options: Sequence[str], python: str,
                  source: Source, constraints: Sequence[str] = ()) -> Resolved:
    """Resolve the steps' requirements together for `python` on Linux x86_64. `steps` are the Dockerfile's
    pip steps in order, each with what it asks for (cumulative lists are fine: each requirement counts for
    the first step that names it); `options` are the framework build's pip options (its index);
    `constraints` narrow what may be chosen and ask for nothing (a release wheel's exact version)."""
    options = [mirrored_wheel_url(o, source.pytorch_wheels, source.wheel_mirrors) for o in options]
    own = _own_requirements(steps)
    with tempfile.TemporaryDirectory(prefix="gpuenv-resolve-") as tmp:
        files = _write_inputs(Path(tmp), own, source)
        done = _run_uv(files, options, python, source, Path(tmp), tuple(constraints))
    pins = _parse(done.stdout, {f.stem: f.stem for f in files})
    _check_extras(done.stderr)
    order = [step.id for step in steps]
    grouped = _first_steps(pins, order)
    return Resolved("resolved", tuple(StepPins(step.id, tuple(step.requires), tuple(grouped.get(step.id, ())))
                                      for step in steps),
                    python=python, platform=PLATFORM, indexes=_indexes(source, options),
                    built=tuple(sorted(canonicalize_name(n) for n in source.sdists)),
                    find_links=tuple(options[i + 1] for i, o in enumerate(options[:-1]) if o in ("--find-links", "-f")))


def _own_requirements(steps: Sequence[StepRequires]) -> list[tuple[str, list[str]]]:
    seen: set[str] = set()
    out = []
    for step_id, requirements in steps:
        new = [r for r in requirements if r not in seen]
        seen.update(requirements)
        out.append((step_id, new))
    return out


def _write_inputs(folder: Path, own: list[tuple[str, list[str]]], source: Source) -> list[Path]:
    """One input file per step, named by its step id (ids are gpuenv's own: `[a-z0-9-]+`)."""
    files = []
    for step_id, requirements in own:
        if not re.fullmatch(r"[a-z0-9-]+", step_id):
            raise ValueError(f"step id {step_id!r}")
        if not requirements:
            continue
        path = folder / f"{step_id}.in"
        path.write_text("".join(r + "\n" for r in requirements), encoding="utf-8")
        files.append(path)
    return files


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise ResolverError("the resolver `uv` is not installed", "reinstall gpuenv (uv is one of its dependencies): "
                        "pip install --force-reinstall gpuenv")


def _run_uv(files: list[Path], options: Sequence[str], python: str, source: Source,
            tmp: Path, constraints: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    if not files:
        return subprocess.CompletedProcess([], 0, "", "")
    args = [uv_binary(), "pip", "compile", *map(str, files), "--python-version", python,
            "--python-platform", PLATFORM, "--generate-hashes", "--emit-index-annotation",
            "--no-header", "--index-url", source.index, "--only-binary", ":all:"]
    for name in source.sdists:           # built in the image from its source distribution (no wheel exists)
        args += ["--no-binary", name]
    if source.static_metadata:
        config = tmp / "uv.toml"
        config.write_text(_metadata_toml(source.static_metadata), encoding="utf-8")
        args += ["--config-file", str(config)]
        files = files + [config]         # keys the answer too (_asked)
    if constraints:
        narrowed = tmp / "constraints.txt"
        narrowed.write_text("".join(c + "\n" for c in constraints), encoding="utf-8")
        args += ["--constraint", str(narrowed)]
        files = files + [narrowed]       # keys the answer too (_asked)
    for url in source.extra_indexes:
        args += ["--extra-index-url", url]
    for host in source.trusted_hosts:
        args += ["--allow-insecure-host", host]
    args += _uv_options(options)
    done = _asked(args, files, source, tmp)
    if done.returncode != 0:
        raise _failure(done.stderr, python)
    return done


NO_WHEEL = re.compile(r"([A-Za-z0-9._-]+)(?:==\S+)? has no usable wheels")


def _asked(args: list[str], files: list[Path], source: Source, tmp: Path) -> subprocess.CompletedProcess:
    """uv's answer: a recent one to the same question (answers.py), else uv run now."""
    inputs = [(f.name, f.read_text(encoding="utf-8")) for f in files]
    question = answers.key(inputs, [a for a in args[1:] if not a.startswith(str(tmp))] + [_uv_version(args[0])])
    kept = answers.get(question)
    if kept is not None:
        return subprocess.CompletedProcess(args, kept[0], kept[1], kept[2])
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, env=_uv_env(source, tmp))
    except subprocess.TimeoutExpired:
        raise Unreachable(f"the resolver did not answer within {TIMEOUT_S} s") from None
    if (done.returncode == 0 or "No solution found" in done.stderr) and not _credentials(source):
        answers.put(question, done.returncode, done.stdout, done.stderr)
    return done


def _metadata_toml(entries: Sequence[tuple[str, str, tuple[str, ...]]]) -> str:
    """uv's `dependency-metadata`: what it takes as the dependencies of these releases, building nothing."""
    def quoted(text: str) -> str:
        # a TOML basic string: JSON's escapes are TOML's (control characters too); DEL is TOML's only extra
        # (the values come from an sdist's PKG-INFO: outside text)
        return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
    return "".join(f"[[dependency-metadata]]\nname = {quoted(n)}\nversion = {quoted(v)}\n"
                   f"requires-dist = [{', '.join(quoted(r) for r in reqs)}]\n\n" for n, v, reqs in entries)


def _credentials(source: Source) -> bool:
    """An index URL with a user or password: its answers are not kept on disk."""
    return any(urlsplit(u).username or urlsplit(u).password for u in (source.index, *source.extra_indexes))


def _uv_version(binary: str) -> str:
    """The resolver's identity for the answers it gave: its binary's size and time (no process started)."""
    try:
        stat = os.stat(binary)
    except OSError:
        return binary
    return f"{binary}:{stat.st_size}:{int(stat.st_mtime)}"


_PASSED_OPTIONS = {"--extra-index-url": "--extra-index-url", "--index-url": "--extra-index-url",
                   "--find-links": "--find-links", "-f": "--find-links"}


def _uv_options(options: Sequence[str]) -> list[str]:
    """The framework build's pip options as uv's: its own index is one more index (PyPI stays the main one)."""
    out, words = [], list(options)
    for i, word in enumerate(words[:-1]):
        if word in _PASSED_OPTIONS:
            out += [_PASSED_OPTIONS[word], words[i + 1]]
    return out


def _uv_env(source: Source, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_")) or k == "UV_CACHE_DIR"}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1", UV_HTTP_TIMEOUT="30", NO_COLOR="1")
    for key in [k for k in env if k.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")]:
        env.pop(key)                    # the policy's proxies only (network_settings read the environment's)
    env.update(dict(source.proxies))
    # Always the system's CAs (and the policy's): uv trusts only its own built-in roots otherwise, so behind
    # a TLS-inspecting proxy whose CA the host trusts, a fresh shell (no SSL_CERT_FILE) could not resolve.
    bundle = _ca_bundle(source.ca_files, tmp)
    if bundle is not None:
        env["SSL_CERT_FILE"] = str(bundle)
    return env


# Where distributions keep the system's CA bundle, when OpenSSL's default names none that exists.
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def _ca_bundle(ca_files: Sequence[str], tmp: Path) -> Optional[Path]:
    """The system's CAs and the policy's, in one file (uv reads one SSL_CERT_FILE); None when there are
    none (uv's own roots then)."""
    paths = ssl.get_default_verify_paths()
    system = (paths.cafile, paths.openssl_cafile) + _SYSTEM_BUNDLES
    parts = [p for p in system if p and os.path.isfile(p)][:1] + list(ca_files)
    if not parts:
        return None
    bundle = tmp / "ca-bundle.pem"
    with bundle.open("w", encoding="utf-8") as out:
        for part in parts:
            for name in (sorted(Path(part).glob("*.pem")) + sorted(Path(part).glob("*.crt"))
                         if os.path.isdir(part) else [Path(part)]):
                out.write(name.read_text(encoding="utf-8", errors="replace") + "\n")
    return bundle


# --- reading uv's answer ----------------------------------------------------------------------------------

_NETWORK = re.compile(r"error sending request|failed to fetch|tcp connect|dns error|tunnel error|connection "
                      r"refused|timed out|certificate|unknownissuer|invalid peer|could not connect|network",
                      re.IGNORECASE)


_BUILD_FAILED = re.compile(r"Failed to build `([A-Za-z0-9._-]+)==([^`]+)`")


def _failure(stderr: str, python: str) -> Exception:
    text = "\n".join(line for line in stderr.splitlines() if not line.startswith("warning: The requested Python"))
    if "No solution found" in text:
        return NoSolution(_cause(text), python)
    built = _BUILD_FAILED.search(text)
    if built:
        return NoMetadata(built.group(1), built.group(2), _cause(text))
    if _NETWORK.search(text):
        return Unreachable(_short(text))
    return ResolverError(f"the resolver failed: {_short(text)}", "run `gpuenv plan --json` for the whole answer; "
                         "if the index is a mirror, check that it serves PEP 503/691 pages")


def _cause(text: str) -> str:
    """uv's explanation as one paragraph: its `cause:` block and any `hint:` lines."""
    lines = [line.strip() for line in text.splitlines()]
    kept = [line.removeprefix("cause:").strip() for line in lines
            if line and not line.startswith(("error:", "warning:"))]
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


def _short(text: str) -> str:
    lines = [line.strip().removeprefix("cause:").strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[-3:])[:500]


_EXTRA = re.compile(r"The package `([^`=]+)==([^`]+)` does not have an extra named `([^`]+)`")


def _check_extras(stderr: str) -> None:
    found = _EXTRA.search(stderr)
    if found:
        raise MissingExtra(canonicalize_name(found.group(1)), found.group(2), found.group(3))


@dataclass
class _Entry:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)
    index: str = ""


def _parse(text: str, step_of_file: dict[str, str]) -> list[Pin]:
    """uv's requirements output: `name==version`, `--hash=` lines, `# via` and `# from` annotations."""
    entries: list[_Entry] = []
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        if not raw.startswith(" ") and "==" in line:
            name, version = line.rstrip(" \\").split("==", 1)
            entries.append(_Entry(canonicalize_name(name.split("[")[0]), version.split(";")[0].strip()))
            in_via = False
        elif not entries or not line:
            continue
        elif line.startswith("--hash="):
            entries[-1].hashes.append(line.removeprefix("--hash=").rstrip(" \\"))
        elif line.startswith("# via"):
            rest = line.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                entries[-1].via.append(_via(rest, step_of_file))
        elif line.startswith("# from "):
            entries[-1].index = _public(line.removeprefix("# from ").strip())
            in_via = False
        elif in_via and line.startswith("#"):
            entries[-1].via.append(_via(line.lstrip("# ").strip(), step_of_file))
    return [Pin(e.name, e.version, tuple(e.hashes), e.index, tuple(e.via)) for e in entries]


def _via(text: str, step_of_file: dict[str, str]) -> str:
    """`-r /tmp/x/tools.in` -> "tools" (a step); `jinja2` -> "jinja2"; `torch (extra: x)` -> "torch"."""
    if text.startswith("-r "):
        return step_of_file.get(Path(text[3:].strip()).stem, text[3:].strip())
    return canonicalize_name(text.split(" ")[0])


def _public(url: str) -> str:
    return kb.index.public_url(url)


def _first_steps(pins: list[Pin], order: list[str]) -> dict[str, list[Pin]]:
    """Each distribution in the earliest step that needs it: a step that names it, or the step of any
    distribution that requires it (to a fixed point: dependency cycles exist)."""
    rank = {step: i for i, step in enumerate(order)}
    by_name = {p.name: p for p in pins}
    step = {p.name: min((rank[v] for v in p.via if v in rank), default=len(order)) for p in pins}
    changed = True
    while changed:
        changed = False
        for p in pins:
            best = min([step[p.name]] + [step[v] for v in p.via if v in by_name])
            if best < step[p.name]:
                step[p.name], changed = best, True
    grouped: dict[str, list[Pin]] = {}
    for p in pins:
        if step[p.name] < len(order):
            grouped.setdefault(order[step[p.name]], []).append(p)
    return grouped


def _indexes(source: Source, options: Sequence[str]) -> tuple[str, ...]:
    extra = [options[i + 1] for i, o in enumerate(options[:-1]) if o in _PASSED_OPTIONS]
    return tuple(_public(u) for u in (source.index, *source.extra_indexes, *extra))
