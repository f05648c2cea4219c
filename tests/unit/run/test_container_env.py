"""Secrets never on a command line: `docker run` gets the container's environment (tokens, a password
hash, a proxy's login) from a private env file, and a build gets a proxy's login by name only. The real
engine and an unprivileged reader of /proc are in tests/integration/test_run_security.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gpuenv.errors import BadInput

JUPYTER_TOKEN, GATEWAY_TOKEN = "a1" * 24, "b2" * 24
PASSWORD_HASH = "argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA"
PROXY = "http://alice:s3cret@proxy.example.com:3128"


def _recipe(extra: str, tmp_path: Path):
    from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
    from gpuenv.render import render
    from gpuenv.render.recipe import Inputs

    (tmp_path / "gpuenv.toml").write_text('name = "n"\npython = "3.11"\nframeworks = ["jax"]\n[gpu]\n'
                                          'devices = "none"\n' + extra)
    request, spec = request_from_spec(tmp_path / "gpuenv.toml")
    inputs = Inputs(tokens={"JUPYTER_TOKEN": JUPYTER_TOKEN, "GPUENV_GATEWAY_TOKEN": GATEWAY_TOKEN})
    return render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, inputs).recipe


def _launches(recipe, tmp_path: Path):
    from gpuenv.host.access import RunArgs
    from gpuenv.run.container import Host, launches

    host = Host(tmp_path, "img:tag", (), RunArgs(()), "none", "none", (("jupyter", 8888, 18888),), 1000)
    return launches(recipe, host)


@pytest.mark.parametrize("extra, secrets", [
    (f'[access]\njupyter = true\ngateway = true\n[network]\nhttps_proxy = "{PROXY}"\n',
     [JUPYTER_TOKEN, GATEWAY_TOKEN, PROXY, "s3cret"]),
    (f'[access.jupyter]\nauth = "password"\npassword_hash = "{PASSWORD_HASH}"\n', [PASSWORD_HASH]),
])
def test_no_secret_is_in_docker_runs_arguments_only_in_its_environment(extra, secrets, tmp_path):
    launches = _launches(_recipe(extra, tmp_path), tmp_path)
    argv = "\0".join(a for launch in launches for a in launch.argv)
    environment = "\0".join(f"{k}={v}" for launch in launches for k, v in launch.environment)
    for secret in secrets:
        assert secret not in argv
        assert secret.split("$")[0] in environment
    assert "--env" not in argv and "-e" not in argv.split("\0")


def test_a_new_token_still_recreates_the_container(tmp_path):
    from dataclasses import replace

    recipe = _recipe("[access]\njupyter = true\n", tmp_path)
    other = replace(recipe, inputs=replace(recipe.inputs, tokens={**recipe.inputs.tokens, "JUPYTER_TOKEN": "c3" * 24}))
    assert _launches(recipe, tmp_path)[0].config != _launches(other, tmp_path)[0].config


def test_the_env_file_is_private_holds_each_value_verbatim_and_goes_away():
    from gpuenv.run.container import env_file

    values = (("JUPYTER_TOKEN", JUPYTER_TOKEN), ("HASH", PASSWORD_HASH), ("SPACED", " a = b # c "))
    with env_file(values) as path:
        folder = os.path.dirname(path)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700 and os.stat(folder).st_uid == os.getuid()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Path(path).read_text() == "".join(f"{k}={v}\n" for k, v in values)
    assert not os.path.exists(folder)


@pytest.mark.parametrize("key, value", [("A", "x\ny"), ("A", "x\r"), ("A", "x\0"), ("A B", "x"), ("", "x")])
def test_a_value_one_line_cannot_hold_is_refused_and_no_file_is_left(key, value, tmp_path, monkeypatch):
    from gpuenv.run.container import env_file

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(BadInput, match="cannot be passed"):
        with env_file(((key, value),)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_build_gets_a_proxys_login_by_name_from_the_clients_environment(tmp_path):
    from gpuenv.images.image import BuildSpec, command
    from gpuenv.host.engine import BuildRoute

    spec = BuildSpec(tmp_path, "t:1", (("USER_UID", "1000"), ("https_proxy", PROXY),
                                       ("http_proxy", "http://proxy.example.com:3128")))
    argv, env = command(BuildRoute("docker", "DOCKER_BUILDKIT=1"), spec)
    assert "s3cret" not in " ".join(argv)
    assert argv[argv.index("https_proxy") - 1] == "--build-arg" and env["https_proxy"] == PROXY
    assert "USER_UID=1000" in argv and "http_proxy=http://proxy.example.com:3128" in argv
