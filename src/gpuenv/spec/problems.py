"""Turning validation errors into sentences a user can act on, each with a valid example."""

from __future__ import annotations

import difflib
import json
import re
import typing
from typing import TYPE_CHECKING, Any, Optional

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gpuenv.spec.locate import FieldPath
from gpuenv.spec.model import EnvSpec

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

Found = tuple[FieldPath, str, Optional[str]]      # (where, what is wrong, an example)

_TYPE_WORDS = {
    "string_type": "must be text in quotes",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "list_type": "must be a list in [ ]",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "string_too_short": "must not be empty",
    "int_from_float": "must be a whole number",
}


def from_validation_error(exc: ValidationError, model: type[BaseModel] = EnvSpec) -> list[Found]:
    """(field path, message, example) for every error pydantic found."""
    return [_one(error, model) for error in exc.errors(include_url=False)]


def _one(error: ErrorDetails, model: type[BaseModel]) -> Found:
    path: FieldPath = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return path, *_unknown_key(path, model)
    message = _sentence(error)
    if not isinstance(error.get("input"), dict):
        message += f" (got {_shown(error.get('input'))})"
    return path, message, example_for(path, model)


def _sentence(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    if kind == "missing":
        return "is missing"
    return _TYPE_WORDS.get(kind, str(error["msg"]).lower())


def _unknown_key(path: FieldPath, model: type[BaseModel]) -> tuple[str, Optional[str]]:
    parent = _model_at(path[:-1], model)
    key = str(path[-1])
    allowed = sorted(parent.model_fields) if parent else []
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}'; did you mean '{close[0]}'?", example_for(path[:-1] + (close[0],), model)
    return f"unknown key '{key}'; known keys here: {', '.join(allowed)}", None


def example_for(path: FieldPath, model: type[BaseModel] = EnvSpec) -> Optional[str]:
    """A valid `key = value` line for the field at `path`, from the field's declared examples."""
    names = [p for p in path if isinstance(p, str)]
    info = _field_at(names, model)
    if info is None or not info.examples:
        return None
    return f"{names[-1]} = {toml_inline(info.examples[0])}"


def _field_at(names: list[str], model: type[BaseModel]) -> Optional[FieldInfo]:
    current: Optional[type[BaseModel]] = model
    info = None
    for name in names:
        if current is None or name not in current.model_fields:
            return None
        info = current.model_fields[name]
        current = _model_in(info.annotation)
    return info


def _model_at(path: FieldPath, model: type[BaseModel]) -> Optional[type[BaseModel]]:
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return model
    info = _field_at(names, model)
    return _model_in(info.annotation) if info else None


def _model_in(annotation: Any) -> Optional[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def toml_inline(value: Any) -> str:
    """A value written as TOML on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_inline(v)}" for k, v in value.items()) + " }"
    return str(value)


def _shown(value: Any, limit: int = 60) -> str:
    text = re.sub(r"(://[^/:@\s]*:)[^/@\s]+@", r"\1***@", toml_inline(value))   # a URL's password never echoed
    return text if len(text) <= limit else text[: limit - 3] + "..."
