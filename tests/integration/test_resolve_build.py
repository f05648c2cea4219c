"""The whole-environment resolution on the real engine (issue 16): a spec whose package holds the framework
back builds and verifies with exactly the versions the plan printed (the image's distributions are the
resolution's, every one), and a spec that cannot resolve fails at plan time, in seconds, building nothing.
Resolved against the live index (PyPI through this machine's proxy), as a user's `gpuenv up` is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from packaging.version import Version

from gpuenv.lock import inside
from gpuenv.run.docker import Docker

pytestmark = pytest.mark.docker
UID = 4321


def gpuenv(*args: str, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID)}
    env.pop("GPUENV_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def spec(folder: Path, frameworks: list[str], packages: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpuenv.toml").write_text(
        f'name = "resolve-{uuid.uuid4().hex[:8]}"\npython = "3.11"\nframeworks = {json.dumps(frameworks)}\n'
        f'packages = {json.dumps(packages)}\n\n[gpu]\ndevices = "none"\n')
    os.chown(folder, UID, UID)
    return folder / "gpuenv.toml"


def test_a_package_that_holds_the_framework_back_builds_what_the_plan_printed(module_engine, tmp_path):
    """numpy<1.26 holds jax back: the newest jax needs numpy>=2.0, so the plan is an older jax (the one whose
    numpy floor fits) and says numpy decided; the image then holds exactly the resolved set, and verifies."""
    folder = tmp_path / "held"
    spec(folder, ["jax"], ["numpy<1.26"])
    planned = gpuenv("plan", "--json", cwd=folder)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    newest = json.loads(gpuenv("plan", "--json", "--offline", cwd=folder).stdout)["frameworks"][0]["version"]
    jax = plan["frameworks"][0]["version"]
    assert Version(jax) < Version(newest) and plan["packages"] == [f"jax=={jax}"]
    assert any(f"jax {jax} (not {newest})" in r and "numpy" in r for r in plan["reasons"]), plan["reasons"]
    pins = {p["name"]: p["version"] for s in plan["resolved"]["steps"] for p in s["packages"]}
    assert pins["jax"] == jax and Version(pins["numpy"]) < Version("1.26")
    built = gpuenv("build", "--json", cwd=folder)
    assert built.returncode == 0, built.stderr[-3000:]
    image = json.loads(built.stdout)["image"]
    module_engine.images.append(image)
    holds = inside.distributions(Docker(module_engine.client), image)
    found = {d.key: d.version for d in holds.dists if d.installer in ("pip", "uv") and d.key != "pip"}
    assert found == pins
    try:
        started = gpuenv("up", "--json", cwd=folder)
        assert started.returncode == 0 and json.loads(started.stdout)["image"] == image, started.stderr[-2000:]
        verified = gpuenv("verify", "--json", cwd=folder)
        assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
        checks = json.loads(verified.stdout)["checks"]
        assert checks and all(c["status"] in ("ok", "skip") for c in checks)
        assert any(jax in c["detail"] for c in checks), checks
    finally:
        gpuenv("down", "--volumes", cwd=folder)


def test_a_spec_that_cannot_resolve_fails_at_plan_time_and_builds_nothing(module_engine, tmp_path):
    folder = tmp_path / "clash"
    spec(folder, ["jax==0.6.1"], ["numpy>=2.3", "ml-dtypes==0.2.0"])
    before = set(module_engine.docker("images", "-aq", "--no-trunc").stdout.decode().split())
    start = time.monotonic()
    run = gpuenv("up", "--json", cwd=folder)
    took = time.monotonic() - start
    assert run.returncode == 3, run.stdout + run.stderr
    error = json.loads(run.stdout)["error"]
    assert error["code"] == "conflict" and "ml-dtypes" in error["message"], error
    assert took < 60, took
    assert set(module_engine.docker("images", "-aq", "--no-trunc").stdout.decode().split()) == before
    assert not (folder / "Dockerfile").exists()


def test_a_base_built_here_before_is_known_before_planning_so_the_environment_is_resolved_once(
        module_engine, tmp_path, monkeypatch):
    """No registry answers here, so the planned python:X-slim base is built from the apt mirror and
    remembered. The next `build` knows that base before it plans: one resolution, for the base's Python
    (not one for the planned Python, then another for the base's), and the image is found built."""
    from gpuenv import environment, planning
    from gpuenv.resolve.base import Base

    folder = tmp_path / "once"
    folder.mkdir()
    (folder / "gpuenv.toml").write_text(f'name = "once-{uuid.uuid4().hex[:8]}"\npackages = ["six"]\n\n'
                                        '[gpu]\ndevices = "none"\n')
    os.chown(folder, UID, UID)
    built = gpuenv("build", "--json", cwd=folder)
    assert built.returncode == 0, built.stderr[-3000:]
    module_engine.images.append(json.loads(built.stdout)["image"])
    calls = []
    real = planning.plan_whole
    monkeypatch.setattr(planning, "plan_whole", lambda *a, **k: calls.append(a[0].python) or real(*a, **k))
    monkeypatch.setenv("SUDO_UID", str(UID))
    monkeypatch.setenv("SUDO_GID", str(UID))
    monkeypatch.delenv("GPUENV_OFFLINE", raising=False)
    said: list[str] = []
    docker = Docker(module_engine.client)
    prepared = environment.prepare(folder / "gpuenv.toml", lambda: (None, docker), said.append)
    assert len(calls) == 1, calls
    assert isinstance(prepared.plan.base, Base) and prepared.plan.base.image.startswith("gpuenv-base/")
    assert prepared.plan.python == prepared.plan.base.python_in_base == calls[0]
    assert prepared.image == json.loads(built.stdout)["image"] and prepared.image_info


def test_a_dependency_published_only_as_an_sdist_is_resolved_from_it_after_wheels_fail(tmp_path):
    """Against the live index: tensorflow-gpu 1.2.1 (README's first example) pins html5lib 0.9999999, which
    PyPI has only as an sdist; no Python or framework version avoids it, so it is allowed from its source
    distribution (pure Python: pip and uv build it in the image), and the plan says so."""
    run = gpuenv("plan", "tensorflow==1.2.1", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    pins = {p["name"]: p for s in data["resolved"]["steps"] for p in s["packages"]}
    assert data["resolved"]["status"] == "resolved" and pins["html5lib"]["version"] == "0.9999999"
    assert pins["html5lib"]["hashes"] and pins["tensorflow-gpu"]["version"] == "1.2.1"
    assert any(r.startswith("html5lib: no wheel") for r in data["reasons"])


def test_a_fresh_shell_resolves_through_the_hosts_cas(tmp_path):
    """No SSL_CERT_FILE, PIP_CERT or REQUESTS_CA_BUNDLE (a new user's shell): the plan still resolves
    against the live index, uv trusting the host's CA bundle (this machine's TLS-inspecting proxy signs
    PyPI with a CA only the host's bundle holds). Found by running scripts/demo from `env -i`."""
    folder = tmp_path / "fresh"
    spec(folder, [], ["six"])
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GPUENV_RESOLVE_TTL": "0",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.update({k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")})
    run = subprocess.run([sys.executable, "-m", "gpuenv", "plan", "--json", "--file", str(folder / "gpuenv.toml")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    resolved = json.loads(run.stdout)["resolved"]
    assert resolved["status"] == "resolved", resolved
    assert any(p["name"] == "six" for s in resolved["steps"] for p in s["packages"])
