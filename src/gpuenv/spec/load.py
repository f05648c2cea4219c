"""Reading a spec: gpuenv.toml text, or a mapping made from flags, to a valid `EnvSpec`.

Every problem is collected before anything is refused, and each one is placed: `FILE:LINE` for
a file, or the flag that stood for the field. The only exception that leaves here is SpecError
(or BadInput when the file itself cannot be read).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from pydantic import ValidationError

from gpuenv.errors import BadInput, Problem, SpecError
from gpuenv.spec import locate, problems, rules, values
from gpuenv.spec.locate import FieldPath
from gpuenv.spec.model import EnvSpec
from gpuenv.tomlcompat import tomllib

SPEC_FILE = "gpuenv.toml"
Placer = Callable[[FieldPath], tuple[str, Optional[int]]]

_HINT = "fix what is listed, then run `gpuenv spec check` again; README.md#the-spec lists every key"


def spec_path(path: Optional[Path] = None) -> Path:
    """The spec file a command means: PATH, PATH/gpuenv.toml for a folder, or ./gpuenv.toml."""
    path = Path(path) if path is not None else Path(SPEC_FILE)
    return path / SPEC_FILE if path.is_dir() else path


def load_spec(path: Optional[Path] = None) -> EnvSpec:
    """The valid spec in a file (see `spec_path`), or SpecError with every problem in it."""
    path = spec_path(path)
    return parse_spec(_read(path), source=str(path), base_dir=path.parent)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"no spec at {path}", "write one with `gpuenv init`, or name it with --file PATH") from None
    except UnicodeDecodeError as exc:
        problem = Problem("", f"the file is not UTF-8 text (byte {exc.start})", str(path))
        raise SpecError(str(path), [problem]) from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", "check the path and its permissions") from None


def parse_spec(text: str, source: str = SPEC_FILE, base_dir: Optional[Path] = None) -> EnvSpec:
    """The valid spec in TOML `text`; `base_dir` is the folder relative paths start from."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(source, text, exc) from None
    lines = locate.key_lines(text)

    def place(path: FieldPath) -> tuple[str, Optional[int]]:
        line = locate.line_of(lines, path)
        return (f"{source}:{line}" if line else source), line

    return validate_spec(data, source, base_dir, place)


def _syntax_error(source: str, text: str, exc: Exception) -> SpecError:
    said = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", said)
    line = int(match.group(1)) if match else None
    place = f" at column {match.group(2)}" if match else ""
    if "(at end of document)" in said:
        line, place = len(text.rstrip("\n").split("\n")), " at the end of the file"
    message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", said)
    where = f"{source}:{line}" if line else source
    problem = Problem("", f"TOML syntax: {message}{place}", where, line)
    return SpecError(source, [problem], "the file is not valid TOML; https://toml.io shows the syntax")


def validate_spec(
    data: Mapping[str, Any], source: str, base_dir: Optional[Path], place: Placer, hint: str = _HINT
) -> EnvSpec:
    """The valid spec a mapping describes; every problem placed by `place(field path)`."""
    data = dict(data)
    if "name" not in data:
        data["name"] = values.name_from_folder((base_dir or Path.cwd()).resolve().name)
    unwritable = list(_unwritable(data, ()))
    try:
        spec = EnvSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(source, _merged(unwritable, problems.from_validation_error(exc)), place, hint) from None
    broken = unwritable or rules.broken_rules(spec, base_dir)
    if broken:
        raise _spec_error(source, broken, place, hint)
    return rules.with_requirements_network(spec, base_dir)


def _unwritable(value: Any, path: FieldPath) -> Iterator[problems.Found]:
    """Every text of the document, at any depth, that holds a line break or control character: no field
    may carry one into a generated file (a field added to the model later is covered too)."""
    if isinstance(value, str):
        why = values.writable(value)
        if why:
            yield path, why, None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _unwritable(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _unwritable(item, (*path, index))


def _merged(first: list[problems.Found], then: list[problems.Found]) -> list[problems.Found]:
    """`first`, and those of `then` at a field path `first` does not name already."""
    named = {path for path, _, _ in first}
    return first + [found for found in then if found[0] not in named]


def _spec_error(source: str, found: list[problems.Found], place: Placer, hint: str) -> SpecError:
    placed = []
    for path, message, example in found:
        where, line = place(path)
        placed.append(Problem(_dotted(path), message, where, line, example))
    placed.sort(key=lambda p: p.line or 0)
    return SpecError(source, placed, hint)


def _dotted(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
