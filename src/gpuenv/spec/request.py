"""A short request, as typed on the command line, to the part of a spec it describes.

    gpuenv init tensorflow==1.2.1 --python 3.6 --jupyter
    gpuenv init "tensorflow 1.2.1 py3 jupyter"
    gpuenv init mxnet cu90 + gateway matplotlib pandas

Each word is one of: a pip requirement (a framework goes to `frameworks`, any other project to
`packages`); a bare version right after an unpinned requirement (pins it); a Python version
(`py3`, `py36`, `python3.6`); a CUDA version (`cu90`, `cuda9.0`, `cu121`); an access word
(`jupyter`/`lab`, `notebook`, `gateway`/`hydrogen`, `ssh`, `tensorboard`); `cpu` or `gpu`;
`latest` (leaves the framework unpinned); or a separator (`+`, `,`). Each word has its flag
(FLAGS_OF_WORDS): `cpu` is `--cpu`, `hydrogen` is `--hydrogen`, `py36` is `--python 3.6`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from gpuenv.errors import BadInput
from gpuenv.kb import frameworks

# The part of a spec a request sets, in gpuenv.toml's own shape (spec/model.py validates it); a key is
# there only when a word set it:
#     "frameworks": ["tensorflow==1.2.1", ...]     framework requirements, as written (or pinned by a version)
#     "packages":   ["pandas", ...]                 every other pip requirement
#     "python":     "3.6"                           or "3"
#     "gpu":        {"cuda": "9.0", "devices": "none" | "all"}
#     "access":     {"jupyter": {"mode": "lab" | "notebook"}, "gateway": {}, "ssh": {}, "ports": [6006]}
# A plain dict, not a TypedDict: the words write it by path (_setting), and `gpuenv init` merges it with
# the flags' dict of the same shape before validation.
Partial = dict[str, Any]

_HINT = (
    "a request is made of pip requirements (torch>=2.4, tensorflow==1.2.1), versions after a "
    "framework (tensorflow 1.2.1), py36, cu90, jupyter, notebook, gateway, ssh, tensorboard, cpu, gpu"
)


def parse_request(words: list[str]) -> Partial:
    """The spec fields a request sets, as a nested mapping (Partial says its keys); BadInput for a word
    it cannot read."""
    partial: Partial = {}
    last: Optional[Requirement] = None
    for word in _split(words):
        last = _apply(partial, word, last)
    return partial


def _split(words: list[str]) -> list[str]:
    return [w for text in words for w in text.split() if w not in ("+", ",")]


def _apply(partial: Partial, word: str, last: Optional[Requirement]) -> Optional[Requirement]:
    lower = word.lower()
    for reader in _READERS:
        if reader(partial, lower):
            return None if reader is not _latest else last
    if _is_version(word):
        if last is None or last.specifier or last.url is not None:
            raise BadInput(f"the version '{word}' follows no unpinned requirement in the request", _HINT)
        _pin(partial, last, word)
        return None
    return _requirement(partial, word)


def _setting(partial: Partial, path: tuple[str, ...], value: Any, word: str) -> None:
    table = partial
    for key in path[:-1]:
        table = table.setdefault(key, {})
    old = table.get(path[-1])
    if old is not None and old != value:
        raise BadInput(f"the request sets {'.'.join(path)} twice: {old!r}, then {value!r} ('{word}')", _HINT)
    table[path[-1]] = value


def _python(partial: Partial, word: str) -> bool:
    match = re.fullmatch(r"(?:py|python)([23])\.?(\d{1,2})?", word)
    if match:
        version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
        _setting(partial, ("python",), version, word)
    return match is not None


def _cuda(partial: Partial, word: str) -> bool:
    match = re.fullmatch(r"(?:cuda|cu)(?:(\d{1,2})\.(\d)|(\d{1,3}))", word)
    if not match:
        return False
    _setting(partial, ("gpu", "cuda"), _cuda_version(match.group(1), match.group(2), match.group(3)), word)
    return True


def _cuda_version(major: Optional[str], minor: Optional[str], digits: Optional[str]) -> str:
    """cu90 -> 9.0, cu121 -> 12.1, cuda12 -> 12, cuda9 -> 9, cuda9.0 -> 9.0."""
    if major is not None:
        return f"{major}.{minor}"
    assert digits is not None
    if len(digits) == 1 or digits in ("10", "11", "12", "13"):
        return digits
    return f"{digits[:-1]}.{digits[-1]}"


_ACCESS = {
    "jupyter": ("jupyter", {"mode": "lab"}),
    "lab": ("jupyter", {"mode": "lab"}),
    "jupyterlab": ("jupyter", {"mode": "lab"}),
    "notebook": ("jupyter", {"mode": "notebook"}),
    "gateway": ("gateway", {}),
    "kernel-gateway": ("gateway", {}),
    "hydrogen": ("gateway", {}),
    "ssh": ("ssh", {}),
}


def _access(partial: Partial, word: str) -> bool:
    if word in _ACCESS:
        key, value = _ACCESS[word]
        _setting(partial, ("access", key), value, word)
        return True
    if word == "tensorboard":
        ports = partial.setdefault("access", {}).setdefault("ports", [])
        if 6006 not in ports:
            ports.append(6006)
        return True
    return False


_DEVICES = {"cpu": "none", "gpu": "all"}


def _device(partial: Partial, word: str) -> bool:
    if word in _DEVICES:
        _setting(partial, ("gpu", "devices"), _DEVICES[word], word)
    return word in _DEVICES


def _latest(partial: Partial, word: str) -> bool:
    return word == "latest"


_READERS: tuple[Callable[[Partial, str], bool], ...] = (_python, _cuda, _access, _device, _latest)

# Every word a request reads, and the flags of `gpuenv init` and `gpuenv up` that say the same (the
# tests hold each pair to the same spec). Python and CUDA words stand for their patterns.
FLAGS_OF_WORDS: dict[str, tuple[str, ...]] = {
    **{word: (f"--{word}",) for word in _ACCESS},
    "tensorboard": ("--tensorboard",),
    "cpu": ("--cpu",),
    "gpu": ("--devices", "all"),
    "latest": (),                       # the default: the framework unpinned
    "py36": ("--python", "3.6"),
    "python3.6": ("--python", "3.6"),
    "py3": ("--python", "3"),
    "cu90": ("--cuda", "9.0"),
    "cuda9.0": ("--cuda", "9.0"),
    "cu121": ("--cuda", "12.1"),
}


def _is_version(word: str) -> bool:
    if not word[:1].isdigit():
        return False
    try:
        Version(word)
    except InvalidVersion:
        return False
    return True


def _pin(partial: Partial, last: Requirement, word: str) -> None:
    """`tensorflow[and-cuda] 2.15.0` -> tensorflow[and-cuda]==2.15.0: the extras and marker as written."""
    listed = partial["frameworks" if _is_framework(last.name) else "packages"]
    extras = f"[{','.join(sorted(last.extras))}]" if last.extras else ""
    marker = f"; {last.marker}" if last.marker else ""
    listed[listed.index(str(last))] = f"{last.name}{extras}=={word}{marker}"


def _requirement(partial: Partial, word: str) -> Requirement:
    try:
        req = Requirement(word)
    except InvalidRequirement:
        raise BadInput(f"cannot read '{word}' in the request", _HINT) from None
    partial.setdefault("frameworks" if _is_framework(req.name) else "packages", []).append(str(req))
    return req


def _is_framework(name: str) -> bool:
    """Frameworks, and names close to one (so that a typo gets the framework's 'did you mean')."""
    return bool(frameworks.family_of(name) or frameworks.misnomer(name) or frameworks.closest(name))
