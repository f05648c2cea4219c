"""Checks and normal forms of the single values a spec holds (versions, URLs, ports, paths).

Each function takes the value as TOML gave it and returns its normal form, or raises ValueError
with a sentence that says what a valid value looks like. The model (`model.py`) attaches them to
fields; nothing here knows which field it serves.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from gpuenv.kb import frameworks
from gpuenv.kb.mirrors import preset


# Characters no value of a spec may hold, in any field: C0 controls (newline, CR, tab, NUL...), DEL,
# C1 controls and the Unicode line and paragraph separators. Each would end a line of a generated file
# (a Dockerfile instruction, a .env line, a YAML key) or cannot be passed to a program at all (NUL);
# render/quote.py refuses them too, as a last guard for values that come from the host.
UNWRITABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def writable(value: str) -> Optional[str]:
    """Why `value` can be no value of a spec (it holds a line break or control character), or None."""
    found = UNWRITABLE.search(value)
    if found is None:
        return None
    return (f"must not hold the character {found.group()!r}: a line break or control character would "
            "end a line of the files gpuenv writes")


def python_version(value: str) -> str:
    if not re.fullmatch(r"(2|3)(\.\d{1,2})?", value):
        raise ValueError("must be a Python version MAJOR or MAJOR.MINOR, such as \"3\" or \"3.6\"")
    if value.startswith("2") and value not in ("2", "2.7"):
        raise ValueError("of Python 2 only 2.7 is supported")
    return value


def driver_version(value: str) -> str:
    if value == "auto" or re.fullmatch(r"\d{3}\.\d{1,3}(\.\d{1,3})?", value):
        return value
    raise ValueError("must be \"auto\" (this host's driver) or an NVIDIA driver version such as \"384.90\"")


def cuda_version(value: str) -> str:
    if value == "auto" or re.fullmatch(r"([1-9]|1[0-9])(\.\d)?", value):
        return value
    raise ValueError("must be \"auto\" or a CUDA version MAJOR.MINOR such as \"9.0\"")


def compute_capabilities(value: Any) -> Union[str, list[str]]:
    """"auto", or a list of compute capabilities "X.Y" ("sm_86" and 8.6 are read as "8.6")."""
    if value == "auto":
        return value
    items = value if isinstance(value, list) else [value]
    return sorted({_compute_capability(item) for item in items}, key=_cc_key)


def _compute_capability(item: Any) -> str:
    text = item if isinstance(item, str) else None
    if isinstance(item, float):
        text = repr(item)
    match = re.fullmatch(r"(?:sm_?)?(\d{1,2})\.?(\d)", text or "")
    if not match:
        raise ValueError(
            "must be \"auto\" or compute capabilities such as [\"7.0\", \"8.6\"] (\"sm_86\" also works)"
        )
    return f"{int(match.group(1))}.{match.group(2)}"


def _cc_key(cc: str) -> tuple[int, int]:
    major, minor = cc.split(".")
    return int(major), int(minor)


_GPU_UUID = re.compile(r"(GPU|MIG)-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def gpu_devices(value: Any) -> Union[str, list[Union[int, str]]]:
    """"all", "none", "free" (chosen at `up`: share/free.py), or a list of GPU indexes (0, 1) and UUIDs
    ("GPU-8a1f...")."""
    if value in ("all", "none", "free"):
        return value
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must not be empty: use \"none\" for no GPU, \"all\" for every GPU, \"free\" for free ones")
    devices = [_gpu_device(item) for item in items]
    if len(set(map(str, devices))) != len(devices):
        raise ValueError("names a GPU twice")
    return devices


def _gpu_device(item: Any) -> Union[int, str]:
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1024:
        return item
    if isinstance(item, str) and _GPU_UUID.fullmatch(item):
        return item
    raise ValueError(
        "must be \"all\", \"none\", \"free\", or a list of GPU indexes and UUIDs, such as [0, 1] or "
        "[\"GPU-8a1f6c2e-4b1d-2f3e-9c8a-0123456789ab\"]"
    )


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IP address of this host, such as \"127.0.0.1\" or \"0.0.0.0\"") from None


def url(*schemes: str, login: bool = True) -> Callable[[str], str]:
    """A check for URLs with one of `schemes` and a host; `login=False` refuses a password in it (an
    index or mirror URL becomes a build argument, which the image's history keeps)."""

    def check(value: str) -> str:
        if not _is_url(value, schemes):
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise ValueError(f"must be a URL starting with {wanted} and naming a host")
        if not login and urlsplit(value).password is not None:
            raise ValueError("must not hold a password: it would stay in the image's history; put the login "
                             "in ~/.netrc (builds get it as the `netrc` secret)")
        return value

    return check


def _is_url(value: str, schemes: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in schemes and bool(parts.hostname) and not re.search(r"\s", value)
    except ValueError:  # such as an unclosed [IPv6 address
        return False


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?")


def hostname(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError("must be a host name, optionally with a port, such as \"pypi.douban.com\"")
    return value


def registry_mirror(value: str) -> str:
    """A registry host[:port][/path]; a leading https:// or http:// is accepted and kept."""
    rest = re.sub(r"^https?://", "", value)
    host, _, path = rest.partition("/")
    if not _HOST.fullmatch(host) or re.search(r"[^A-Za-z0-9._/-]", path):
        raise ValueError("must be a registry such as \"registry.example.com:5000\" or \"https://mirror.example.com\"")
    return value


def no_proxy_entry(value: str) -> str:
    if not value or re.search(r"[\s,]", value):
        raise ValueError("must list one host, domain or address per entry, such as [\"localhost\", \".corp\"]")
    return value


_IMAGE = re.compile(
    r"((?P<registry>[A-Za-z0-9.-]+(:\d+)?)/)?"
    r"(?P<repo>[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[0-9a-f]{64}))?"
)


def image_reference(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(
            "must be an image reference [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], "
            "such as \"nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04\""
        )
    return value


def env_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", value):
        raise ValueError(
            "must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def name_from_folder(folder: str) -> str:
    """A valid environment name made from a folder name ("My Project" -> "my-project")."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", folder.lower()).strip("-_.")[:63]
    return name or "gpuenv"


def container_path(value: str) -> str:
    normal = posixpath.normpath(value)
    if not value.startswith("/") or UNWRITABLE.search(value):
        raise ValueError("must be an absolute path inside the container, such as \"/workspace\"")
    if re.search(r"[:$]", value):
        raise ValueError("must not hold ':' (docker run -v and compose split volumes at it) or '$' "
                         "(compose and devcontainer.json substitute ${...} in it)")
    top = "/" + normal.strip("/").split("/")[0]
    if normal == "/" or top in _SYSTEM_DIRS:
        raise ValueError(f"must not be / or under a system folder ({', '.join(sorted(_SYSTEM_DIRS))})")
    if normal == ENV_HOME or normal.startswith(ENV_HOME + "/"):
        raise ValueError(f"must not be {ENV_HOME} or inside it: that is the environment's home, a volume of its "
                         "own; a mount inside it races the engine when two services start at once. "
                         "Use a folder such as \"/workspace\"")
    return normal


ENV_HOME = "/home/gpuenv"   # render.recipe.HOME: the environment user's home, a named volume in every container


_SYSTEM_DIRS = {"/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/var", "/run"}


def host_path(value: str) -> str:
    if not value or UNWRITABLE.search(value):
        raise ValueError("must be a path on the host, such as \".\" or \"~/projects/vision\"")
    if ":" in value:
        raise ValueError("must not hold ':': docker run -v and compose's volumes split paths at it")
    return value


def run_as(value: str) -> str:
    if value == "host" or re.fullmatch(r"\d{1,10}:\d{1,10}", value):
        return value
    raise ValueError("must be \"host\" (your own UID and GID) or \"UID:GID\" such as \"1000:1000\"")


_KEY_TYPES = r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"


def is_public_key(value: str) -> bool:
    """Whether an authorized_key setting is a key itself (else it is "auto" or a key file's path)."""
    return re.fullmatch(_KEY_TYPES + r" [A-Za-z0-9+/]+={0,3}( [^\n]*)?", value) is not None


def authorized_key(value: str) -> str:
    """"auto", a public key itself, or the path of a public key file (.pub / authorized_keys)."""
    if value == "auto" or is_public_key(value):
        return value
    name = posixpath.basename(value)
    if re.search(r"[:'\\$]", value) and (name.endswith(".pub") or name == "authorized_keys"):
        raise ValueError("a key file's path must not hold ':', \"'\", '\\' or '$': it is written into .env "
                         "and a compose volume, whose syntax cannot hold them")
    if not UNWRITABLE.search(value) and (name.endswith(".pub") or name == "authorized_keys"):
        return value
    raise ValueError(
        "must be \"auto\", a public key (\"ssh-ed25519 AAAA...\"), or the path of a public key file "
        "ending in .pub; never a private key"
    )


def password_hash(value: str) -> str:
    if re.fullmatch(r"argon2:\$argon2(id|i|d)\$\S+|sha(1|256|512):[0-9a-f]+:[0-9a-f]+", value):
        return value
    raise ValueError(
        "must be a hashed Jupyter password (\"argon2:$argon2id$...\"), never the password itself; "
        "make one with: python3 -c 'from jupyter_server.auth import passwd; print(passwd())'"
    )


def apt_package(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?", value):
        raise ValueError("must be a Debian/Ubuntu package name, optionally =VERSION, such as \"libgfortran3\"")
    return value


def requirement(value: str) -> Requirement:
    try:
        return Requirement(value)
    except InvalidRequirement:
        raise ValueError(
            "must be a pip requirement such as \"pandas\", \"numpy<2\" or \"scikit-image==0.14.0\""
        ) from None


def normal_requirement(req: Requirement) -> str:
    req.name = frameworks.canonical(req.name)
    return str(req)


def framework_requirement(value: str) -> str:
    req = requirement(value)
    if frameworks.family_of(req.name) is None:
        raise ValueError(_not_a_framework(req.name))
    return normal_requirement(req)


def package_requirement(value: str) -> str:
    req = requirement(value)
    if frameworks.family_of(req.name) is not None:
        raise ValueError(
            f"'{req.name}' is a framework: list it under `frameworks` so that gpuenv picks its CUDA build"
        )
    return normal_requirement(req)


def _not_a_framework(name: str) -> str:
    alias = frameworks.misnomer(name)
    if alias:
        return f"'{name}' is not a framework's PyPI name: use '{alias[0]}' ({alias[1]})"
    close = frameworks.closest(name)
    known = "torch, tensorflow, mxnet, jax, paddlepaddle, cupy"
    guess = f"did you mean '{close}'? " if close else ""
    return f"'{name}' is not a framework gpuenv knows ({known}); {guess}other pip packages go under `packages`"


def unique(items: list[str], key: Optional[Callable[[str], str]] = None) -> list[str]:
    seen: set[str] = set()
    for item in items:
        k = key(item) if key else item
        if k in seen:
            raise ValueError(f"lists {k!r} twice")
        seen.add(k)
    return items


def unique_projects(requirements: list[str]) -> list[str]:
    return unique(requirements, key=lambda text: Requirement(text).name)


def size(value: str) -> str:
    """A size as Docker takes it: a number with b, k, m or g ("8g", "512m")."""
    if not re.fullmatch(r"[1-9]\d{0,5}[bkmg]", value):
        raise ValueError("must be a size such as \"8g\" or \"512m\" (a whole number and b, k, m or g)")
    return value


def ca_certificates(value: Any) -> Union[str, list[str]]:
    """"auto" (the host's CAs), "none" (also written []: the image's own roots only), or a list of CA
    certificate files on the host."""
    if value in ("auto", "none"):
        return value
    if value == []:
        return "none"
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i and not UNWRITABLE.search(i) for i in items):
        raise ValueError(
            "must be \"auto\" (the host's CAs), \"none\" (or []), or a list of CA certificate files such as "
            "[\"/usr/local/share/ca-certificates/corp.crt\"]"
        )
    return unique(items)


def network_preset(value: str) -> str:
    """A region preset of mirrors named in kb/data/mirrors.toml."""
    return preset(value).name


# [run] cpus, memory, pids: "auto" (the default: a share of the engine's host that `up` computes,
# host/limits.py), "none" (no limit; 0 means the same), or the limit itself.
_LIMIT_WORDS = ("auto", "none")
_MAX_CPUS = 4096
MIN_MEMORY = 6 * 1024 * 1024           # docker's floor: "Minimum memory limit allowed is 6MB"


def cpus(value: Any) -> str:
    """"auto", "none", or a number of CPUs (8, 7.5, "8"), as decimal text: "8", "7.5"."""
    if value in _LIMIT_WORDS:
        return str(value)
    number = _number(value)
    if number == 0:
        return "none"
    if number is None or not 0.01 <= number <= _MAX_CPUS:
        raise ValueError(f"must be \"auto\", \"none\" (or 0: no limit), or a number of CPUs from 0.01 to {_MAX_CPUS}, "
                         "such as 8 or 7.5")
    return f"{round(number, 2):g}"


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\d{1,5}(\.\d{1,2})?", value):
        return float(value)
    return None


def memory(value: Any) -> str:
    """"auto", "none" (or 0), or a size docker takes ("32g", "512m"), at least docker's 6 MiB."""
    if value in _LIMIT_WORDS:
        return str(value)
    if value == 0 or value == "0":
        return "none"
    if not isinstance(value, str) or not re.fullmatch(r"[1-9]\d{0,12}[bkmg]", value):
        raise ValueError("must be \"auto\", \"none\" (or 0: no limit), or a size such as \"32g\" or \"512m\" "
                         "(a whole number and b, k, m or g)")
    if size_bytes(value) < MIN_MEMORY:
        raise ValueError("must be at least \"6m\": docker refuses a smaller memory limit")
    return value


def size_bytes(value: str) -> int:
    """The bytes of a size as `size` and `memory` accept it ("8g" -> 8 GiB: docker's units are binary)."""
    return int(value[:-1]) * 1024 ** "bkmg".index(value[-1])


def pids(value: Any) -> Union[str, int]:
    """"auto", "none" (or 0), or the most processes and threads at once (4096; "4096" is read so too)."""
    if value in _LIMIT_WORDS:
        return str(value)
    number = int(value) if isinstance(value, str) and re.fullmatch(r"\d{1,7}", value) else value
    if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= 4194304:
        return number or "none"
    raise ValueError("must be \"auto\", \"none\" (or 0: no limit), or a number of processes and threads "
                     "from 1 to 4194304, such as 4096")
