"""No mount of a generated container lies inside another of its mounts.

A folder mounted inside a named volume makes the engine create its mount point inside that volume's
data, and when compose creates two services at once (docker-compose v1 does), one of them can fail with
`failed to mkdir .../<project>-home/_data/.ssh-host: file exists` (seen in CI, 2026-12-07). So sshd's
host keys live outside HOME, and a workspace inside HOME is refused by the spec.
"""

from __future__ import annotations

import posixpath

import pytest
import yaml

from gpuenv.render.recipe import HOME, SSH_HOST_KEYS
from gpuenv.spec.values import ENV_HOME
from tests.unit.render.test_goldens import EXAMPLES, rendered_example


def _target(volume: str) -> str:
    for suffix in (":ro", ":rw"):
        volume = volume.removesuffix(suffix)
    return posixpath.normpath(volume.rsplit(":", 1)[1])


def _nested(targets: list[str]) -> list[tuple[str, str]]:
    return [(outer, inner) for outer in targets for inner in targets
            if inner != outer and inner.startswith(outer.rstrip("/") + "/")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_service_mounts_a_folder_inside_another_mount(name: str) -> None:
    compose = next(f for f in rendered_example(name).files if f.path == "compose.yaml")
    services = yaml.safe_load(compose.text)["services"]
    checked = 0
    for service, body in services.items():
        targets = [_target(v) for v in body.get("volumes", [])]
        assert len(set(targets)) == len(targets), f"{name}/{service} mounts one path twice: {targets}"
        assert _nested(targets) == [], f"{name}/{service}"
        checked += len(targets)
    assert checked >= 2


def test_ssh_host_keys_live_outside_home_and_the_spec_knows_home() -> None:
    assert ENV_HOME == HOME
    assert not SSH_HOST_KEYS.startswith(HOME + "/")


def test_the_nested_check_finds_a_nested_mount() -> None:
    assert _nested(["/home/gpuenv", "/home/gpuenv/.ssh-host", "/workspace"]) == [("/home/gpuenv", "/home/gpuenv/.ssh-host")]
    assert _target("${GPUENV_CA_BUNDLE:?run gpuenv generate to write .env}:/etc/ssl/ca.pem:ro") == "/etc/ssl/ca.pem"
