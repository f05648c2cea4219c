"""Property: whatever TOML a user writes, gpuenv answers with a spec or with SpecErrors that place
each problem; never a traceback."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuenv.errors import SpecError
from gpuenv.spec import EnvSpec, parse_spec
from gpuenv.spec.model import Access, Gpu, Gateway, Jupyter, Network, Ssh, Workspace
from gpuenv.tomlcompat import tomllib

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = [(p.parent, p.read_text()) for p in sorted(EXAMPLES.glob("*/gpuenv.toml"))]
FIELD_NAMES = sorted({name for model in (EnvSpec, Gpu, Access, Jupyter, Gateway, Ssh, Workspace, Network)
                      for name in model.model_fields})
# GPUENV_FUZZ_EXAMPLES=5000 for a longer hunt
SETTINGS = settings(max_examples=int(os.environ.get("GPUENV_FUZZ_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=12))
scalars = st.one_of(
    st.text(max_size=30), st.sampled_from(["auto", "all", "none", "3.6", "384.90", "torch", "lab", "8888"]),
    st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(allow_nan=True), st.booleans(),
    st.dates(), st.datetimes(timezones=st.just(dt.timezone.utc)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
documents = st.dictionaries(keys, values, max_size=8)


def outcome(text: str, folder: Path = EXAMPLES / "torch") -> Any:
    try:
        return parse_spec(text, base_dir=folder)
    except SpecError as error:
        assert error.problems, "a SpecError must carry at least one problem"
        return error


@SETTINGS
@given(documents)
def test_random_documents_give_a_spec_or_placed_problems(document):
    result = outcome(tomli_w.dumps(document))
    if isinstance(result, SpecError):
        for problem in result.problems:
            assert problem.field and problem.message, problem
            assert problem.where.startswith("gpuenv.toml")


@st.composite
def mutated_text(draw):
    folder, text = draw(st.sampled_from(EXAMPLE_FILES))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        insert = draw(st.text(alphabet='[]{}=,."\'#\n abc019_-', max_size=6))
        text = text[:start] + insert + text[end:]
    return folder, text


@SETTINGS
@given(mutated_text())
def test_mutated_examples_give_a_spec_or_placed_problems(case):
    result = outcome(case[1], case[0])
    if isinstance(result, SpecError):
        for problem in result.problems:
            assert problem.field or problem.line, problem
            assert problem.message


@st.composite
def one_value_replaced(draw):
    folder, text = draw(st.sampled_from(EXAMPLE_FILES))
    data = tomllib.loads(text)
    path, table = [], data
    while True:
        key = draw(st.sampled_from(sorted(table)))
        path.append(key)
        if not isinstance(table[key], dict) or draw(st.booleans()):
            break
        table = table[key]
    table[key] = draw(values)
    return folder, data, path


@SETTINGS
@given(one_value_replaced())
def test_a_replaced_value_is_blamed_on_its_own_field(case):
    folder, data, path = case
    result = outcome(tomli_w.dumps(data), folder)
    if isinstance(result, SpecError):
        dotted = ".".join(path)
        for problem in result.problems:
            # the field replaced, something inside it, or a rule that ties it to a sibling field
            assert problem.field.startswith(path[0]) or problem.field.startswith(dotted), (problem, dotted)
