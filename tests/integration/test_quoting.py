"""The quoting functions (render/quote.py) against the real readers: BuildKit for the Dockerfile, docker-compose
v1 (python-dotenv and its interpolation) for compose.yaml and .env. Hostile but valid values must arrive as
written: no split word, no expanded `$`, no comment, no extra instruction."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.render import render
from gpuenv.render.quote import dockerfile_exec, dockerfile_value, shell_words
from gpuenv.render.recipe import Inputs

pytestmark = pytest.mark.docker

VALUES = ["a b", "$HOME", "${USER_UID}", "it's", 'say "hi"', "back\\slash", "end\\", "# not a comment", "-rf",
          "é 日本 \U0001f600", "x=1 y=2", "`id` $(id) ; && |", "\\$escaped\\\\", "%s %d", "*", "~"]


def test_buildkit_reads_env_label_arg_workdir_and_shell_words_as_written(engine, tmp_path):
    names = [f"V{i}" for i in range(len(VALUES))]
    lines = [f"FROM {engine.base_image}", "ARG " + f"A0={dockerfile_value(VALUES[1])}"]
    lines += ["ENV " + " \\\n    ".join(f"{n}={dockerfile_value(v)}" for n, v in zip(names, VALUES))]
    lines += ["LABEL " + " ".join(f"io.test.{n}={dockerfile_value(v, bare=False)}" for n, v in zip(names, VALUES))]
    lines += [f"WORKDIR {dockerfile_value('/work dir/$x #y')}",
              f"RUN printf '%s\\n' {shell_words(VALUES)} > /words && echo \"$A0\" > /arg",
              f"CMD {dockerfile_exec(['cat', '/words'])}"]
    (tmp_path / "Dockerfile").write_text("\n".join(lines) + "\n")
    tag = engine.track_image(engine.unique("quoting") + ":1")
    engine.docker("build", "-q", "-t", tag, str(tmp_path))
    config = json.loads(engine.docker("image", "inspect", tag).stdout)[0]["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert [env[n] for n in names] == VALUES
    assert [config["Labels"][f"io.test.{n}"] for n in names] == VALUES
    assert config["WorkingDir"] == "/work dir/$x #y"
    container = engine.track_container(engine.unique("quoting"))
    words = engine.docker("run", "--name", container, tag).stdout.decode()
    assert words.split("\n")[:-1] == VALUES
    arg = engine.docker("run", "--rm", "--entrypoint", "cat", tag, "/arg").stdout.decode()
    assert arg == "$HOME\n"


def _compose_config(folder: Path) -> dict:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose (v1) is missing: scripts/test installs it (ensure_tools in scripts/setup.sh)")
    run = subprocess.run([compose, "config"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)


def test_docker_compose_v1_reads_hostile_paths_and_urls_in_compose_yaml_and_env_as_written(tmp_path):
    folder = tmp_path / "env"
    workspace = folder / "my $HOME ${USER} #1 it's"
    key = folder / "keys dir $X #k" / "id $y.pub"
    key.parent.mkdir(parents=True)
    workspace.mkdir()
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostileTestKeyOnlyForQuoting test\n")
    proxy = "http://proxy.example:3128/$p'q"
    (folder / "gpuenv.toml").write_text(
        'name = "quoting"\nframeworks = ["torch>=2.4"]\n[gpu]\ndriver = "550.54.15"\n[access.jupyter]\n'
        '[access.ssh]\n'
        f"[workspace]\nhost = '''{workspace.name}'''\nmount = \"/in side/#w\"\n"
        f"[network]\nhttps_proxy = \"{proxy}\"\nno_proxy = [\"a$b\", \"#c\"]\n")
    request, spec = request_from_spec(folder / "gpuenv.toml")
    inputs = Inputs(workspace=f"./{workspace.name}", ssh_key=str(key), ca_bundle="",
                    tokens={"JUPYTER_TOKEN": "t" * 48, "GPUENV_GATEWAY_TOKEN": "g" * 48})
    for f in render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, inputs).files:
        (folder / f.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / f.path).write_text(f.text)
    config = _compose_config(folder)
    services = config["services"]
    volumes = {v["target"]: v["source"] for s in services.values() for v in s.get("volumes", []) if isinstance(v, dict)}
    volumes |= {v.rsplit(":", 2)[1]: v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
                if isinstance(v, str)}
    assert volumes["/in side/#w"] == str(workspace)
    assert volumes["/etc/gpuenv/authorized_keys"] == str(key)
    env = services["jupyter"]["environment"]
    assert env["https_proxy"].replace("$$", "$") == proxy   # `config` prints values escaped again
    assert env["no_proxy"].replace("$$", "$") == "a$b,#c"
    assert services["jupyter"]["working_dir"] == "/in side/#w"


def test_buildkit_puts_an_apt_mirror_with_sed_characters_into_the_sources_as_written(engine, tmp_path):
    """APT_MIRROR is sed's replacement text in the generated Dockerfile: `#`, `&` and `\\` in the URL (valid
    in a spec's apt_mirror) must land as written, and `#w FILE` must not make sed write a file."""
    from gpuenv.render.dockerfile import _apt_setup

    class Debian12:   # the fields _apt_setup reads of a recipe
        os, nvidia_base = "debian12", False

    setup = _apt_setup(Debian12()).split(" \\\n && ")[0]
    (tmp_path / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n")
    (tmp_path / "Dockerfile").write_text("\n".join([
        f"FROM {engine.base_image}", 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
        "COPY debian.sources /etc/apt/sources.list.d/debian.sources", "ARG APT_MIRROR", f"RUN {setup}",
        "RUN grep '^URIs:' /etc/apt/sources.list.d/debian.sources > /uris \\",
        " && { [ ! -e /tmp/x ] || echo WROTE >> /uris; }",
        'CMD ["cat", "/uris"]', ""]))
    mirror = "http://m.example:8080/a#w/tmp/x#&b\\c"
    tag = engine.track_image(engine.unique("quoting-apt") + ":1")
    engine.docker("build", "-q", "--build-arg", f"APT_MIRROR={mirror}/", "-t", tag, str(tmp_path))
    container = engine.track_container(engine.unique("quoting-apt"))
    assert engine.docker("run", "--name", container, tag).stdout.decode() == f"URIs: {mirror}/debian\n"
