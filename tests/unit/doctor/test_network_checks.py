"""`gpuenv doctor --network`: which sources a spec uses, and the finding each kind of answer gives.
(The answers themselves come from real sockets: tests/integration/test_network.py.)"""

from __future__ import annotations

import pytest

from gpuenv.doctor.network_checks import IDS, finding, report
from gpuenv.doctor.network_probe import SLOW_S, Answer, Source, sources
from gpuenv.spec import parse_spec


def spec(text: str = ""):
    return parse_spec('name = "n"\n' + text)


def test_a_spec_without_network_settings_is_checked_against_the_defaults_builds_use():
    found = {s.id: s for s in sources(spec(), env={})}
    assert found["pip-index"].url == "https://pypi.org/simple/pip/" and found["pip-index"].setting == "(default)"
    assert found["apt-mirror"].url == "http://deb.debian.org/debian/"
    assert found["docker-hub"].registry and "proxy" not in found and "pytorch-wheels" not in found


def test_a_preset_and_explicit_settings_are_what_is_tried():
    found = sources(spec('frameworks = ["torch"]\n[network]\npreset = "cn"\nregistry_mirror = "mirror.example:5000"\n'
                         'pip_extra_indexes = ["https://a.example/simple", "https://b.example/simple"]\n'
                         'https_proxy = "http://proxy.example:3128"\n'), env={})
    urls = {(s.id, s.url) for s in found}
    assert ("pip-index", "https://pypi.tuna.tsinghua.edu.cn/simple/pip/") in urls
    assert ("apt-mirror", "http://mirrors.tuna.tsinghua.edu.cn/debian/") in urls
    assert ("pytorch-wheels", "https://mirrors.nju.edu.cn/pytorch/whl/torch/") in urls
    assert ("registry-mirror", "https://mirror.example:5000/v2/") in urls
    assert ("proxy", "http://proxy.example:3128") in urls
    assert [s.setting for s in found if s.id == "pip-extra-index"] == ["network.pip_extra_indexes[0]",
                                                                       "network.pip_extra_indexes[1]"]
    assert {f"net-{s.id}" for s in found} <= set(IDS)


def test_the_shells_proxy_counts_when_the_spec_names_none():
    found = {s.id: s for s in sources(spec(), env={"HTTPS_PROXY": "http://corp:8080"})}
    assert found["proxy"].url == "http://corp:8080" and found["proxy"].setting == "(environment)"


def answer(source_id: str, status: str, **kw) -> Answer:
    src = Source(source_id, f"network.{source_id}", "https://x.example/simple/pip/", source_id.endswith("hub"))
    return Answer(src, status, kw.pop("seconds", None), kw.pop("detail", "d"), **kw)


def test_ok_gives_no_finding_and_slow_a_warning_with_the_time():
    assert finding(answer("pip-index", "ok", seconds=0.2), spec()) is None
    slow = finding(answer("pip-index", "slow", seconds=SLOW_S + 1.5), spec())
    assert slow.severity == "warning" and f"{SLOW_S + 1.5:.1f} s" in slow.problem
    assert any('preset = "cn"' in line for line in slow.fix)


def test_a_tls_failure_the_hosts_ca_would_fix_says_so_and_how():
    f = finding(answer("pip-index", "tls", ca_fixes=True, detail="certificate not trusted"), spec())
    assert f.severity == "error" and f.failure_mode == 36 and "inspected by a proxy" in f.problem
    assert f.fix[0].startswith('# gpuenv.toml: [network] ca_certificates = "auto"')
    other = finding(answer("pip-index", "tls", ca_fixes=False), spec())
    assert "inspected" not in other.problem and any("ca_certificates = [" in x for x in other.fix)


@pytest.mark.parametrize("source_id, severity, row", [("apt-mirror", "error", 38), ("docker-hub", "warning", 29),
                                                      ("proxy", "error", 39)])
def test_blocked_sources(source_id, severity, row):
    f = finding(answer(source_id, "blocked", detail="the name does not resolve"), spec())
    assert (f.severity, f.failure_mode, f.check) == (severity, row, f"net-{source_id}")


def test_the_report_fails_only_on_errors_and_honours_skip():
    answers = [answer("pip-index", "ok", seconds=0.1), answer("docker-hub", "blocked")]
    assert report(answers, spec()).ok
    bad = [answer("apt-mirror", "http", detail="HTTP 404")]
    assert not report(bad, spec()).ok and report(bad, spec(), ("net-apt-mirror",)).ok


def test_a_source_the_preset_filled_says_so_and_names_the_other_presets():
    s = spec('[network]\npreset = "cn"\n')
    pip = next(x for x in sources(s, env={}) if x.id == "pip-index")
    assert pip.setting == 'network.pip_index, from preset "cn"'
    f = finding(Answer(pip, "blocked", None, "the name does not resolve"), s)
    assert any('"cn-aliyun"' in line for line in f.fix)


@pytest.mark.parametrize("args, said", [(["--offline"], "--offline forbids it"),
                                        (["--skip", "net-pip"], "did you mean net-pip-index?")])
def test_bad_flags_are_refused_before_anything_is_tried(args, said, tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "gpuenv", "doctor", "--network", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and said in run.stderr and "Traceback" not in run.stderr
