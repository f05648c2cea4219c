"""Property: hostile text in ANY string field of the spec is refused as bad input, or the generated files
parse to the same structure as with a plain value and the value reads back where it lands.

The fields are found by walking the EnvSpec model (list items and nested tables included), so a string field
added later is covered without touching this file. Each example sets one field of a full spec (every way in,
every network setting) to hostile text (line breaks, quotes, backslashes, `$`, `${X}`, `#`, NUL, U+2028,
unicode, a leading `-`, long), renders every file, and compares with the same spec holding a plain value:

    Dockerfile          the same instructions (dockerfile-parse), ENV and LABEL keys
    compose.yaml        the same keys and list lengths (yaml.safe_load); each string that held the plain value
                        holds the hostile one instead, once compose's `$$` is read back as `$`
    devcontainer.json   the same keys (json.loads), the value read back likewise
    .env                the same keys (python-dotenv, the parser docker-compose v1 uses), the value read back

Deterministic (derandomize); GPUENV_FUZZ_EXAMPLES raises the count for a longer hunt.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Union

import pytest
import tomli_w
import yaml
from dockerfile_parse import DockerfileParser
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.errors import BadInput, GpuenvError, ImpossibleRequest
from gpuenv.render import render
from gpuenv.render.recipe import Inputs
from gpuenv.spec.model import EnvSpec
from gpuenv.spec.values import is_public_key

FieldPath = tuple[Union[str, int], ...]
SETTINGS = settings(max_examples=int(os.environ.get("GPUENV_FUZZ_EXAMPLES", "12")), deadline=None,
                    derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# A spec with every string field that can reach a file set to a plain, distinctive value.
PLAIN: dict[str, Any] = {
    "name": "plainname", "python": "3.11", "frameworks": ["torch>=2.4"], "packages": ["plainpkg"],
    "requirements": "plainreqs.txt", "apt": ["plainapt"],
    "gpu": {"devices": "all", "driver": "550.54.15", "model": "auto", "compute_capability": "auto", "cuda": "auto"},
    "access": {"bind": "127.0.0.1", "jupyter": {"mode": "lab", "port": 8888, "auth": "password",
                                                 "password_hash": "argon2:$argon2id$plainhash"},
               "gateway": {"port": 8889}, "ssh": {"port": 2222, "authorized_key": "plainkey.pub"},
               "ports": [6006]},
    "workspace": {"host": "plainhost", "mount": "/plainmount", "user": "1000:1000"},
    "network": {"pip_index": "https://plainindex.example/simple",
                "pip_extra_indexes": ["https://plainextra.example/simple"],
                "pip_trusted_hosts": ["plaintrusted.example"], "apt_mirror": "http://plainmirror.example",
                "pytorch_wheels": "https://plainwheels.example/whl", "registry_mirror": "plainregistry.example:5000",
                "http_proxy": "http://plainproxy.example:3128", "https_proxy": "http://plainsproxy.example:3128",
                "no_proxy": ["plainnoproxy.example"], "ca_certificates": ["/plainca.crt"]},
    "run": {"shm_size": "8g", "ipc": "private", "restart": "no", "compose_gpu": "deploy"},
}
REQUIREMENTS_TEXT = "plainreq==1.0\n"
HOSTILE_PARTS = ["\n", "\r", "\r\n", "\0", "\u2028", "\u0085", "'", '"', "\\", "\\\n", "$", "${X}", "$$", "#", " # c",
                 "`id`", "$(id)", ";", "&&", "|", " ", "\t", ":", ",", "=", "-", "--x", "/", "..", "~", "é", "日本",
                 "\U0001f600", "\nRUN touch /pwned \\", "\nUSER root", "\n  x: 1", '", "x": "', "\nX=1"]


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation can hold: Optional, Union and Annotated opened."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is Union:
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def string_fields(model: type[BaseModel] = EnvSpec, path: FieldPath = ()) -> Iterator[FieldPath]:
    """Every place a string can go in the model: fields, list items (index 0), fields of nested tables."""
    for name, info in model.model_fields.items():
        for kind in _unwrap(info.annotation):
            yield from _places(kind, (*path, name))


def _places(kind: Any, path: FieldPath) -> Iterator[FieldPath]:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        yield from string_fields(kind, path)
    elif kind is str or typing.get_origin(kind) is typing.Literal:
        yield path
    elif typing.get_origin(kind) is list:
        for item in _unwrap(typing.get_args(kind)[0]):
            yield from _places(item, (*path, 0))


FIELDS = sorted(set(string_fields()), key=str)


def _set(data: dict[str, Any], path: FieldPath, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    node: Any = data
    for key in path[:-1]:
        if isinstance(key, int):
            node = node[key]
            continue
        if key not in node or not isinstance(node[key], (dict, list)):
            node[key] = [] if isinstance(path[path.index(key) + 1], int) else {}
        node = node[key]
    last = path[-1]
    if isinstance(last, int):
        if len(node) <= last:
            node.append(value)
        else:
            node[last] = value
    else:
        node[last] = value
    return data


def _plain_at(path: FieldPath) -> Any:
    node: Any = PLAIN
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, str) else None


hostile_text = st.one_of(
    st.lists(st.sampled_from(HOSTILE_PARTS), min_size=1, max_size=4).map("".join),
    st.text(min_size=1, max_size=20),
    st.lists(st.sampled_from(HOSTILE_PARTS + list("abc/.")), min_size=100, max_size=200).map("".join),
)


@st.composite
def hostile_value(draw: Any, plain: str) -> str:
    """Hostile text alone, or around / inside the plain value."""
    bad = draw(hostile_text)
    cut = draw(st.integers(0, len(plain)))
    return draw(st.sampled_from([plain[:cut] + bad + plain[cut:], bad, plain + bad, bad + plain]))


REQUIREMENTS_LINE = ("<requirements file line>",)
CASES = [(path, _plain_at(path) or "plainvalue") for path in FIELDS] + [(REQUIREMENTS_LINE, "plainreq==1.0")]


# --- rendering ----------------------------------------------------------------------------------------------


FOLDER = Path(tempfile.mkdtemp(prefix="gpuenv-hostile-"))
FIXED = Inputs(uid=1000, gid=1000, tokens={"JUPYTER_TOKEN": "t" * 48, "GPUENV_GATEWAY_TOKEN": "g" * 48})


def rendered(data: dict[str, Any], requirements: str = REQUIREMENTS_TEXT) -> "dict[str, str] | GpuenvError":
    """The generated files of a spec (as gpuenv generate makes them, host facts taken from the spec as
    render_inputs would), or the error that refused it."""
    spec_file = FOLDER / "gpuenv.toml"
    spec_file.write_text(tomli_w.dumps(data))
    (FOLDER / "plainreqs.txt").write_text(requirements)
    try:
        request, spec = request_from_spec(spec_file)
        result = plan(request, target_for(TargetFlags(), spec, probe=False))
        return {f.path: f.text for f in render(result, spec, _inputs(spec)).files}
    except (BadInput, ImpossibleRequest) as refused:
        return refused


def _inputs(spec: EnvSpec) -> Inputs:
    key = spec.access.ssh.authorized_key if spec.access.ssh else ""
    inline = is_public_key(key)
    return replace(FIXED, workspace=spec.workspace.host, ssh_key=".gpuenv/authorized_keys" if inline else key,
                   ssh_key_text=key + "\n" if inline else "")


PLAIN_FILES = None


def plain_files() -> dict[str, str]:
    global PLAIN_FILES
    if PLAIN_FILES is None:
        PLAIN_FILES = rendered(PLAIN)
        assert isinstance(PLAIN_FILES, dict), PLAIN_FILES
    return PLAIN_FILES


# --- structure ----------------------------------------------------------------------------------------------


def dockerfile_structure(text: str) -> list[tuple[str, tuple[str, ...]]]:
    parser = DockerfileParser(fileobj=io.BytesIO())
    parser.content = text
    out = []
    for item in parser.structure:
        keys: tuple[str, ...] = ()
        if item["instruction"] in ("ENV", "LABEL", "ARG"):
            keys = tuple(word.split("=", 1)[0] for word in _words(item["value"]))
        out.append((item["instruction"], keys))
    return out


def _words(value: str) -> list[str]:
    """KEY=VALUE words of ENV/LABEL/ARG as the builder splits them: at spaces outside quotes."""
    words, word, quote, escaped = [], "", "", False
    for ch in value:
        if escaped:
            word, escaped = word + ch, False
        elif ch == "\\":
            word, escaped = word + ch, True
        elif quote:
            word, quote = word + ch, ("" if ch == quote else quote)
        elif ch in "\"'":
            word, quote = word + ch, ch
        elif ch.isspace():
            words, word = (words + [word]) if word else words, ""
        else:
            word += ch
    return words + ([word] if word else [])


def skeleton(doc: Any) -> Any:
    """The shape of a parsed document: its keys and list lengths, its strings as `str`."""
    if isinstance(doc, dict):
        return {k: skeleton(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [skeleton(v) for v in doc]
    return type(doc).__name__


def leaves(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves(v, (*path, i))
    else:
        yield path, doc


def env_values(text: str) -> dict[str, Any]:
    return dict(dotenv_values(stream=io.StringIO(text), interpolate=True))


def assert_same_structure(plain: dict[str, str], hostile: dict[str, str], was: str, now: str) -> None:
    assert sorted(plain) == sorted(hostile)
    assert dockerfile_structure(hostile["Dockerfile"]) == dockerfile_structure(plain["Dockerfile"])
    for name, load, unescape in (("compose.yaml", yaml.safe_load, lambda s: s.replace("$$", "$")),
                                 (".devcontainer/devcontainer.json", json.loads, lambda s: s),
                                 (".env", env_values, lambda s: s)):
        before, after = load(plain[name]), load(hostile[name])
        assert skeleton(after) == skeleton(before), name
        _round_trip(before, after, was, now, unescape, name)


def _round_trip(before: Any, after: Any, was: str, now: str, unescape: Any, name: str) -> None:
    """Each string that held the plain value holds the hostile one in its place (as the reader reads it)."""
    new = dict(leaves(after))
    for path, value in leaves(before):
        if isinstance(value, str) and was in unescape(value):
            assert _untagged(unescape(new[path])) == _untagged(unescape(value).replace(was, now)), (name, path)


def _untagged(text: str) -> str:
    """An image reference without its content tag (a hash of the build context, which the value changes)."""
    return re.sub(r":[0-9a-f]{12}$", ":<tag>", text)


# --- the properties -----------------------------------------------------------------------------------------


def test_every_string_field_is_found():
    """The walk finds fields of every table, list items and union types (a meta-test of the walk)."""
    found = set(FIELDS)
    for expected in [("workspace", "mount"), ("workspace", "host"), ("packages", 0), ("network", "no_proxy", 0),
                     ("access", "ssh", "authorized_key"), ("access", "jupyter", "password_hash"),
                     ("network", "ca_certificates", 0), ("gpu", "devices", 0), ("name",), ("requirements",)]:
        assert expected in found, expected
    assert len(found) >= 35


def test_the_plain_spec_renders_every_file_and_value():
    files = plain_files()
    for plain in ("/plainmount", "plainhost", "plainpkg", "plainreq", "plainindex", "plainnoproxy", "plainproxy"):
        assert any(plain in text for text in files.values()), plain


@pytest.mark.parametrize("path, plain", CASES, ids=[".".join(map(str, p)) for p, _ in CASES])
@SETTINGS
@given(data=st.data())
def test_hostile_text_in_any_field_is_refused_or_keeps_the_files_structure(path, plain, data):
    hostile = data.draw(hostile_value(plain), label="hostile")
    if path == REQUIREMENTS_LINE:   # a newline there starts the file's next line: that is its own syntax
        hostile = hostile.replace("\n", "")
        result = rendered(PLAIN, REQUIREMENTS_TEXT.replace(plain, hostile))
    else:
        result = rendered(_set(PLAIN, path, hostile))
    if isinstance(result, GpuenvError):
        assert result.exit_code in (2, 3) and result.message, result
        return
    if path == REQUIREMENTS_LINE and _without_the_line() == result["Dockerfile"]:
        return   # the hostile text made the line a comment or blank: the file's own syntax, not an injection
    assert_same_structure(plain_files(), result, plain, _landed(path, hostile))


def _without_the_line() -> str:
    files = rendered(PLAIN, "")
    assert isinstance(files, dict), files
    return files["Dockerfile"]


def _landed(path: FieldPath, hostile: str) -> str:
    """The value as the spec keeps it (container paths are normalised), which is what files carry."""
    if path == ("workspace", "mount"):
        import posixpath

        return posixpath.normpath(hostile)
    return hostile


def test_a_newline_in_the_workspace_mount_is_refused_not_a_dockerfile_instruction():
    """The field that injected: `mount = "/w\\nRUN ... \\\\"` made a RUN of its own and swallowed USER."""
    result = rendered(_set(PLAIN, ("workspace", "mount"), "/w\nRUN touch /pwned \\"))
    assert isinstance(result, GpuenvError) and result.exit_code == 2
    assert "workspace.mount" in str([p.field for p in result.problems])


def test_hadolint_finds_the_same_dockerfile_with_hostile_but_valid_values():
    """hadolint's parser (language-docker) reads the Dockerfile of a spec full of accepted hostile values as it
    reads the plain one: no parse error (DL1000), and the same findings."""
    from tests.unit.render.test_validate import hadolint_findings

    data = PLAIN
    for path, value in [(("workspace", "mount"), "/in side/#w 'q' \"d\" \\b"),
                        (("network", "https_proxy"), "http://p.example:3128/$HOME'\"#x"),
                        (("network", "pip_index"), "https://i.example/${X}/simple?a=b&c=\\d"),
                        (("network", "no_proxy", 0), "a$b#c\"d'e"), (("packages", 0), "x-y; python_version > '3'")]:
        data = _set(data, path, value)
    files = rendered(data)
    assert isinstance(files, dict), files
    found = []
    for name, text in (("plain", plain_files()["Dockerfile"]), ("hostile", files["Dockerfile"])):
        (FOLDER / name).write_text(text)
        found.append(sorted((f["code"], f["line"]) for f in hadolint_findings(FOLDER / name)))
    assert found[1] == found[0] and not any(code == "DL1000" for code, _ in found[1]), found
