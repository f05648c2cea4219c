"""One quoting function per output format: every value that reaches a written file passes here.

    Dockerfile   dockerfile_value (ENV, LABEL, ARG, WORKDIR words), dockerfile_exec (JSON-array form)
    comments     comment_line (one `#` line of a Dockerfile, compose.yaml or .env)
    shell        shell_word (one word of a RUN line or of `sh -c`)
    YAML         compose_text (a literal string in compose.yaml), yaml_document
    Kubernetes   kube_text (env values, args: `$(VAR)` expansion escaped), kube_name (object names),
                 kube_label (label values), kube_quantity (a docker size as a quantity)
    JSON         json_document
    .env         env_line (what docker-compose v1 1.29 and compose v2 both read the same way)

A value a format cannot hold (a line break in a Dockerfile, NUL anywhere) raises `Unrepresentable`, a
BadInput naming the value: the spec's checks (spec/values.py) refuse such text first, so for a valid
spec this is a last guard for host facts (a folder whose name holds a newline).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any, Iterable

import yaml

from gpuenv.errors import Unrepresentable
from gpuenv.spec.values import UNWRITABLE as _LINE_BREAKING   # the characters no generated line may hold
_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")
_DOCKERFILE_BARE = re.compile(r"[A-Za-z0-9_./:@%+-]+")


def one_line(value: str, where: str) -> str:
    """`value` itself, or Unrepresentable when it holds a control character or line separator."""
    found = _LINE_BREAKING.search(value)
    if found:
        raise Unrepresentable(where, value, f"the character {found.group()!r}")
    return value


# --- Dockerfile --------------------------------------------------------------------------------------


def dockerfile_value(value: str, bare: bool = True) -> str:
    """A word of ENV, LABEL, ARG or WORKDIR: as it is when it is plain (`bare`), else in double quotes
    with `\\`, `"` and `$` escaped, so the builder neither splits it nor expands variables in it."""
    one_line(value, "a Dockerfile")
    if bare and _DOCKERFILE_BARE.fullmatch(value):
        return value
    return '"' + re.sub(r'([\\"$])', r"\\\1", value) + '"'


def dockerfile_exec(words: Iterable[str]) -> str:
    """The JSON-array (exec) form of CMD, HEALTHCHECK, SHELL: JSON strings, all non-ASCII escaped."""
    return json.dumps([one_line(w, "a Dockerfile") for w in words])


def comment_line(text: str) -> str:
    """One `# ...` line (Dockerfile, YAML, .env): a line break in `text` is shown escaped, so it never
    starts an instruction or a key."""
    shown = _LINE_BREAKING.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return f"# {shown}"


# --- shell -------------------------------------------------------------------------------------------


def shell_word(value: str) -> str:
    """One POSIX shell word (single quotes when needed), on one line: RUN lines and `sh -c` alike. A
    quoted word ends in `'`, never in the Dockerfile's line-continuation backslash."""
    return shlex.quote(one_line(value, "a shell line"))


def shell_words(values: Iterable[str]) -> str:
    return " ".join(shell_word(v) for v in values)


# --- YAML (compose.yaml) -------------------------------------------------------------------------------


def compose_text(value: str) -> str:
    """A literal string in compose.yaml: compose substitutes `${...}` in every value, so `$` is doubled
    (YAML's own quoting is the emitter's, yaml_document)."""
    return value.replace("$", "$$")


def yaml_document(doc: Any) -> str:
    """A YAML document that yaml.safe_load reads back as `doc`: the emitter quotes and escapes."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120, allow_unicode=False)


# --- Kubernetes (kubernetes.yaml: YAML through yaml_document, these for values with rules of their own) ----


def kube_text(value: str) -> str:
    """A literal env value, command or args word: Kubernetes expands `$(NAME)` there and reads `$$` as `$`,
    so every `$` is doubled; a line break is refused (one_line), as `gpuenv up`'s env file refuses it."""
    return one_line(value, "kubernetes.yaml").replace("$", "$$")


_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")


def kube_name(text: str, limit: int = 40) -> str:
    """An object name that is a DNS-1035 label (a Service's rule, the strictest): lower-case letters,
    digits and `-`, starting with a letter, at most `limit` characters (room for suffixes: a StatefulSet's
    pods carry NAME-HASH labels of at most 63). Text that is not such a name already is made one, with a
    hash of the text added, so two texts never give one name."""
    if re.fullmatch(r"[a-z]([a-z0-9-]*[a-z0-9])?", text) and len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    stem = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[: limit - 9].strip("-")
    return f"{stem if stem[:1].isalpha() else 'g-' + stem}-{digest}".replace("--", "-")[:limit]


def kube_label(text: str) -> str:
    """A label value (at most 63 of letters, digits, `-_.`, alphanumeric at both ends): as it is when it
    is one, else made a name (kube_name's rule), so it always passes the API's check."""
    return text if _LABEL_VALUE.fullmatch(text) else kube_name(text, 63)


def kube_quantity(size: str) -> str:
    """A docker size (spec/values.size: "16g", "512m", "64k", "100b") as the same number of bytes in
    Kubernetes' binary units: "16Gi", "512Mi", "64Ki", "100"."""
    number, unit = size[:-1], size[-1]
    if not number.isdigit() or unit not in "bkmg":
        raise Unrepresentable("kubernetes.yaml", size, "no size docker takes (a number and b, k, m or g)")
    return number + {"b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit]


# --- JSON (devcontainer.json) ------------------------------------------------------------------------


def json_document(doc: Any) -> str:
    return json.dumps(doc, indent=2) + "\n"


# --- .env ---------------------------------------------------------------------------------------------

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_line(key: str, value: str) -> str:
    """`KEY=value` read alike by docker-compose v1 (python-dotenv 0.21) and compose v2 (compose-go): bare
    when plain; else in single quotes, which both take without `#` comments or escapes. Unrepresentable: `'`
    and `\\` (the two disagree on escapes inside quotes), `${` (v1 substitutes it even in single quotes,
    with no escape), a line break."""
    if not _ENV_KEY.fullmatch(key):
        raise Unrepresentable(".env", key, "a name that is not a variable name")
    one_line(value, ".env")
    if _BARE.fullmatch(value) or value == "":
        return f"{key}={value}"
    bad = re.search(r"['\\]|\$\{", value)
    if bad:
        raise Unrepresentable(".env", value, f"{bad.group()!r}, which docker-compose v1 and v2 read differently")
    return f"{key}='{value}'"
