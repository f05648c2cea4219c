"""`gpuenv generate` as a user meets it: a real process writing a real folder, and the spec's options
as they show in the files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.render import render
from gpuenv.render.compose import BUILDER
from gpuenv.render.recipe import Inputs

ROOT = Path(__file__).resolve().parents[3]
TOKENS = {"JUPYTER_TOKEN": "t" * 48, "GPUENV_GATEWAY_TOKEN": "g" * 48}


def gpuenv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """No engine answers (a dead DOCKER_HOST): the files are the plan's as made, on every machine alike
    (with an engine, generate writes what `up` builds there: tests/integration/test_devcontainer.py)."""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/gpuenv-test-no-engine.sock"}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def spec_folder(tmp_path: Path, text: str) -> Path:
    (tmp_path / "gpuenv.toml").write_text(text)
    return tmp_path


def files_of(tmp_path: Path, text: str) -> dict[str, str]:
    request, spec = request_from_spec(spec_folder(tmp_path, text) / "gpuenv.toml")
    rendered = render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec,
                      Inputs(tokens=TOKENS, ssh_key="/k.pub"))
    return {f.path: f.text for f in rendered.files}


TORCH = 'name = "t"\nframeworks = ["torch>=2.4"]\n[gpu]\ndriver = "580.65.06"\n'


def test_generate_writes_a_private_env_and_keeps_its_tokens_when_run_again(tmp_path):
    folder = spec_folder(tmp_path, TORCH + "[access.jupyter]\nmode = \"lab\"\n")
    (folder / ".gitignore").write_text("data/\n")
    first = gpuenv("generate", "--json", cwd=folder)
    assert first.returncode == 0, first.stderr
    url = json.loads(first.stdout)["access"]["jupyter_url"]
    env = folder / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and url.split("token=")[1] in env.read_text()
    again = gpuenv("generate", "--json", cwd=folder)
    assert json.loads(again.stdout)["access"]["jupyter_url"] == url
    assert (folder / ".gitignore").read_text().splitlines().count(".env") == 1
    assert (folder / ".gitignore").read_text().startswith("data/\n")


def test_a_users_own_dockerfile_is_never_replaced_unless_forced(tmp_path):
    folder = spec_folder(tmp_path, TORCH)
    (folder / "Dockerfile").write_text("FROM my/own:image\n")
    refused = gpuenv("generate", cwd=folder)
    assert refused.returncode == 2 and "Dockerfile" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "gpuenv.toml"]   # nothing half-written
    forced = gpuenv("generate", "--force", cwd=folder)
    assert forced.returncode == 0 and "gpuenv generate" in (folder / "Dockerfile").read_text()


def test_a_spec_with_a_typo_or_an_out_that_is_a_file_is_bad_input(tmp_path):
    folder = spec_folder(tmp_path, 'name = "t"\nframeworks = ["troch"]\n')
    typo = gpuenv("generate", cwd=folder)
    assert typo.returncode == 2 and "gpuenv.toml:2" in typo.stderr and "torch" in typo.stderr
    (tmp_path / "afile").write_text("")
    (folder / "gpuenv.toml").write_text(TORCH)
    out_file = gpuenv("generate", "--out", str(tmp_path / "afile"), cwd=folder)
    assert out_file.returncode == 2 and "is a file" in out_file.stderr


def test_ssh_prints_the_command_and_a_config_entry_and_mounts_an_inline_key(tmp_path):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdwdWVudi10ZXN0LWtleS1ub3QtcmVhbA me@laptop"
    folder = spec_folder(tmp_path, TORCH + f'[access.ssh]\nport = 8822\nauthorized_key = "{key}"\n')
    run = gpuenv("generate", "--json", cwd=folder)
    access = json.loads(run.stdout)["access"]
    assert access["ssh_command"] == "ssh -p 8822 gpuenv@127.0.0.1"
    assert "Port 8822" in access["ssh_config"] and "User gpuenv" in access["ssh_config"]
    assert (folder / ".gpuenv" / "authorized_keys").read_text() == key + "\n"
    assert "GPUENV_SSH_AUTHORIZED_KEY=.gpuenv/authorized_keys" in (folder / ".env").read_text()


def test_the_gateway_prints_hydrogens_settings(tmp_path):
    folder = spec_folder(tmp_path, TORCH + "[access.gateway]\nport = 9889\n")
    gateways = json.loads(gpuenv("generate", "--json", cwd=folder).stdout)["access"]["hydrogen_gateways"]
    token = next(line.split("=", 1)[1] for line in (folder / ".env").read_text().splitlines()
                 if line.startswith("GPUENV_GATEWAY_TOKEN="))
    assert gateways == [{"name": "t (gpuenv)", "options": {"baseUrl": "http://127.0.0.1:9889", "token": token}}]


def test_a_password_reaches_compose_escaped_and_no_token_is_written(tmp_path):
    hashed = "argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA"
    files = files_of(tmp_path, TORCH + f'[access.jupyter]\nauth = "password"\npassword_hash = "{hashed}"\n')
    service = yaml.safe_load(files["compose.yaml"])["services"]["jupyter"]
    assert service["environment"]["GPUENV_JUPYTER_PASSWORD_HASH"] == hashed.replace("$", "$$")
    assert "JUPYTER_TOKEN" not in files[".env"]


@pytest.mark.parametrize("table, check", [
    ('[run]\ncompose_gpu = "runtime"\n',
     lambda s, b: s["runtime"] == "nvidia" and s["environment"]["NVIDIA_VISIBLE_DEVICES"] == "all"
     and "deploy" not in s),
    ('[gpu]\ndevices = [0, 2]\n', None),
    ('[run]\nipc = "host"\n', lambda s, b: s["ipc"] == "host" and "shm_size" not in s),
    ('[access]\nbind = "0.0.0.0"\nports = ["16006:6006"]\n[access.jupyter]\n',
     lambda s, b: s["ports"] == ["0.0.0.0:8888:8888", "0.0.0.0:16006:6006"]),
    ('[network]\nhttps_proxy = "http://proxy.corp:3128"\nno_proxy = ["localhost"]\n',
     lambda s, b: s["environment"]["https_proxy"] == "http://proxy.corp:3128"
     and b["build"]["args"]["no_proxy"] == "localhost" and "build" not in s),
])
def test_run_options_show_in_compose(tmp_path, table, check):
    text = TORCH.replace('[gpu]\ndriver = "580.65.06"\n', "") if table.startswith("[gpu]") else TORCH
    if table.startswith("[gpu]"):
        text += '[gpu]\ndriver = "580.65.06"\ndevices = [0, 2]\n'
    else:
        text += table
    services = yaml.safe_load(files_of(tmp_path, text)["compose.yaml"])["services"]
    builder = services.pop(BUILDER)          # builds the image; the services people start only run it
    service = next(iter(services.values()))
    if check is None:
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": ["0", "2"], "capabilities": ["gpu"]}]
    else:
        assert check(service, builder), service


def test_cpu_only_asks_for_no_gpu_anywhere(tmp_path):
    files = files_of(tmp_path, 'name = "c"\npython = "3.11"\nframeworks = ["jax"]\n[gpu]\ndevices = "none"\n')
    assert "NVIDIA_" not in files["Dockerfile"] and "deploy" not in files["compose.yaml"]
    assert "hostRequirements" not in json.loads(files[".devcontainer/devcontainer.json"])


def test_the_ca_goes_into_the_image_only_when_asked(tmp_path):
    plain = files_of(tmp_path, TORCH)["Dockerfile"]
    asked = files_of(tmp_path, TORCH + "[network]\nca_in_image = true\n")["Dockerfile"]
    assert "gpuenv-ca-bundle.pem" not in plain and "--mount=type=secret,id=ca" in plain
    assert "install -m 644 /run/secrets/ca /etc/ssl/certs/gpuenv-ca-bundle.pem" in asked


def test_a_mirror_rewrites_docker_hub_images_only(tmp_path):
    files = files_of(tmp_path, TORCH + '[network]\nregistry_mirror = "https://mirror.example.com:5000"\n')
    assert "FROM mirror.example.com:5000/library/python:" in files["Dockerfile"]
    given = files_of(tmp_path, 'base = "nvcr.io/nvidia/pytorch:24.01-py3"\n' + TORCH
                     + '[network]\nregistry_mirror = "mirror.example.com"\n')
    assert "FROM nvcr.io/nvidia/pytorch:24.01-py3 AS system" in given["Dockerfile"]


def test_a_url_with_a_password_is_refused_in_the_spec(tmp_path):
    folder = spec_folder(tmp_path, TORCH + '[network]\npip_index = "https://me:s3cret@pypi.corp/simple"\n')
    run = gpuenv("generate", cwd=folder)
    assert run.returncode == 2 and "must not hold a password" in run.stderr and "s3cret" not in run.stderr


def test_two_folders_with_one_environment_name_get_two_ssh_aliases(tmp_path):
    """The ~/.ssh/config entry gpuenv prints is named after the project (NAME-USER-FOLDERHASH): a second
    folder with the same `name` must not take over the first one's alias and remembered host key."""
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdwdWVudi10ZXN0LWtleS1ub3QtcmVhbA test"
    entries = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        spec_folder(folder, f'name = "same"\nframeworks = ["jax"]\n[access.ssh]\nauthorized_key = "{key}"\n')
        run = gpuenv("generate", "--json", cwd=folder)
        assert run.returncode == 0, run.stderr
        entries.append(json.loads(run.stdout)["access"]["ssh_config"])
    hosts = [next(line.split()[1] for line in e.splitlines() if line.startswith("Host ")) for e in entries]
    aliases = [next(line.split()[1] for line in e.splitlines() if "HostKeyAlias" in line) for e in entries]
    assert hosts[0] != hosts[1] and aliases[0] != aliases[1], entries
    assert all(h.startswith("gpuenv-same-") for h in hosts)


def test_free_gpus_ask_compose_for_their_count(tmp_path):
    """compose cannot choose free GPUs: it asks for `count` of them (`gpuenv up` takes free ones)."""
    text = TORCH + 'devices = "free"\ncount = 2\n'
    services = yaml.safe_load(files_of(tmp_path, text)["compose.yaml"])["services"]
    services.pop(BUILDER)
    devices = next(iter(services.values()))["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}]
