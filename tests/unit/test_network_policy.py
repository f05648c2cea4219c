"""The network policy in the spec: region presets, explicit settings winning, the CA settings, and where the
policy reaches (build arguments, the running containers, compose.yaml)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gpuenv.errors import SpecError
from gpuenv.kb import load_table
from gpuenv.kb.mirrors import SETTINGS, mirrored_wheel_url, presets, report
from gpuenv.spec import parse_spec
from gpuenv.spec.write import spec_data, to_toml

ROOT = Path(__file__).resolve().parents[2]


def spec(text: str):
    return parse_spec('name = "n"\n' + text)


def test_every_mirror_row_names_a_known_preset_and_setting_with_an_https_source():
    table = load_table("mirrors")
    names = {p["name"] for p in table["preset"]}
    assert {"cn"} <= names
    for row in table["mirror"]:
        assert row["preset"] in names and row["setting"] in SETTINGS and row["source"].startswith("https://")
        assert row["url"] or row.get("note"), "a preset that sets nothing must say why"


def test_every_preset_fills_pip_apt_and_pytorch_wheels_and_says_why_it_has_no_registry_mirror():
    for preset in presets().values():
        assert set(preset.fills()) == {"pip_index", "apt_mirror", "pytorch_wheels"}, preset.name
        assert dict(preset.notes).get("registry_mirror"), preset.name
        assert preset.fills()["apt_mirror"].startswith("http://")        # bases have no CA roots before apt


def test_a_preset_fills_what_the_spec_leaves_unset():
    net = spec('[network]\npreset = "cn"\n').network
    assert net.pip_index == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert net.apt_mirror == "http://mirrors.tuna.tsinghua.edu.cn"
    assert net.pytorch_wheels == "https://mirrors.nju.edu.cn/pytorch/whl"
    assert net.registry_mirror is None
    assert set(net.filled) == {"pip_index", "apt_mirror", "pytorch_wheels"}


def test_explicit_settings_win_over_the_preset():
    net = spec('[network]\npreset = "cn"\npip_index = "https://pypi.example.org/simple"\n').network
    assert net.pip_index == "https://pypi.example.org/simple"
    assert "pip_index" not in net.filled and net.apt_mirror == "http://mirrors.tuna.tsinghua.edu.cn"


def test_an_unknown_preset_is_refused_with_the_known_ones_and_its_line():
    with pytest.raises(SpecError) as caught:
        spec('[network]\npreset = "moon"\n')
    problem = caught.value.problems[0]
    assert problem.field == "network.preset" and problem.line == 3
    for name in presets():
        assert f'"{name}"' in problem.message


def test_the_written_spec_keeps_the_preset_not_its_mirrors_and_reads_back_the_same():
    s = spec('[network]\npreset = "cn"\napt_mirror = "http://deb.example.org"\n')
    short = spec_data(s, full=False)["network"]
    assert short == {"preset": "cn", "apt_mirror": "http://deb.example.org"}
    again = parse_spec(to_toml(spec_data(s, full=False)))
    assert again.network == s.network
    assert spec_data(s, full=True)["network"]["pip_index"] == "https://pypi.tuna.tsinghua.edu.cn/simple"


def test_spec_check_and_plan_say_what_the_preset_filled():
    found = report(spec('[network]\npreset = "cn"\n').network)
    assert found["filled"]["pip_index"].startswith("https://pypi.tuna")
    assert "registry_mirror" in found["not_set"] and "2024" in found["not_set"]["registry_mirror"]
    assert report(spec("").network) == {}


def test_a_spec_without_the_new_keys_keeps_its_hash():
    dumped = spec("").network.model_dump(mode="json")
    assert "preset" not in dumped and "pytorch_wheels" not in dumped


@pytest.mark.parametrize("value", ["[]", '"none"'])
def test_no_ca_is_none_and_builds_get_no_ca_secret(value, tmp_path, monkeypatch):
    from gpuenv.images.image import secrets

    s = spec(f"[network]\nca_certificates = {value}\n")
    assert s.network.ca_certificates == "none"
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    assert secrets(s.network.ca_certificates) == ()


def test_pytorch_urls_go_through_the_wheel_mirror():
    mirror = "https://mirrors.nju.edu.cn/pytorch/whl"
    assert mirrored_wheel_url("https://download.pytorch.org/whl/cu118", mirror) == mirror + "/cu118"
    assert mirrored_wheel_url("https://download.pytorch.org/whl/torch_stable.html", mirror + "/") == \
        mirror + "/torch_stable.html"
    assert mirrored_wheel_url("https://pypi.org/simple", mirror) == "https://pypi.org/simple"
    assert mirrored_wheel_url("https://download.pytorch.org/whl/cu118", "") == "https://download.pytorch.org/whl/cu118"


TORCH_CU118 = 'name = "t"\nframeworks = ["torch==2.5.1"]\n[gpu]\ncuda = "11.8"\ndriver = "535.54.03"\n' \
    '[access]\njupyter = true\n'


def _rendered(extra: str, ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt", tmp: Path = Path("/tmp")):
    import tempfile

    from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
    from gpuenv.render import render
    from gpuenv.render.recipe import Inputs

    with tempfile.TemporaryDirectory(prefix="gpuenv-network-") as folder:
        (Path(folder) / "gpuenv.toml").write_text(TORCH_CU118 + extra)
        request, s = request_from_spec(Path(folder) / "gpuenv.toml")
    inputs = Inputs(tokens={"JUPYTER_TOKEN": "t", "GPUENV_GATEWAY_TOKEN": "g"}, ca_bundle=ca_bundle)
    return render(plan(request, target_for(TargetFlags(), s, probe=False)), s, inputs)


def test_a_preset_reaches_the_dockerfile_and_the_running_containers():
    rendered = _rendered('[network]\npreset = "cn"\n')
    files = {f.path: f.text for f in rendered.files}
    assert "https://mirrors.nju.edu.cn/pytorch/whl/cu" in files["Dockerfile"]
    assert "download.pytorch.org" not in files["Dockerfile"].split("FROM", 1)[1]
    assert "ARG PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple" in files["Dockerfile"]
    assert "ARG APT_MIRROR=http://mirrors.tuna.tsinghua.edu.cn" in files["Dockerfile"]
    assert "PIP_INDEX_URL: https://pypi.tuna.tsinghua.edu.cn/simple" in files["compose.yaml"]


def test_the_hosts_ca_is_mounted_read_only_at_run_time_and_never_without_it():
    files = {f.path: f.text for f in _rendered("").files}
    assert "/etc/gpuenv/ca-bundle.pem:ro" in files["compose.yaml"]
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert f"{name}: /etc/gpuenv/ca-bundle.pem" in files["compose.yaml"]
    assert "GPUENV_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt" in files[".env"]
    assert "ca-bundle" not in files["Dockerfile"]
    none = {f.path: f.text for f in _rendered('[network]\nca_certificates = "none"\n').files}
    assert "ca-bundle.pem" not in none["compose.yaml"] and "GPUENV_CA_BUNDLE" not in none[".env"]


def test_docker_run_mounts_the_ca_and_sets_the_variables():
    from gpuenv.host.access import RunArgs
    from gpuenv.run.container import Host, launches

    r = _rendered('[network]\nhttps_proxy = "http://proxy.example.com:3128"\n').recipe
    host = Host(Path("/tmp/gpuenv-network-files"), "img:tag", (), RunArgs(()), "none", "none", (), 1000)
    launch = launches(r, host)[0]
    argv, env = launch.argv, dict(launch.environment)
    mount = "type=bind,source=/etc/ssl/certs/ca-certificates.crt,target=/etc/gpuenv/ca-bundle.pem,readonly"
    assert argv[argv.index(mount) - 1] == "--mount"
    assert env["SSL_CERT_FILE"] == "/etc/gpuenv/ca-bundle.pem" and env["HTTPS_PROXY"] == "http://proxy.example.com:3128"
    remote = launches(r, replace(host, remote=True))[0]
    assert mount not in remote.argv and "SSL_CERT_FILE" not in dict(remote.environment)
    assert dict(remote.environment)["HTTPS_PROXY"] == "http://proxy.example.com:3128"
