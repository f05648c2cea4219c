"""`gpuenv lock`, `build --locked` and `lock --check` on the real engine, with the jax-cpu example
(under a name of its own, in a folder of its own) and PyPI through this machine's TLS-inspecting proxy.

The rebuild from the lock is `--no-cache`: every step runs again, as on another day, and the image it
makes holds exactly the lock's distributions."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.lock import inside
from gpuenv.lock.lockfile import SYSTEM_STEP, read
from gpuenv.run.docker import Docker

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def gpuenv(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "gpuenv", "--json", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def answer(done: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}") from None


@pytest.fixture(scope="module")
def locked_env(module_engine) -> Iterator[tuple[Path, dict]]:
    """The example locked in a temp folder, then built: `gpuenv lock` writes the resolution with no build,
    the first build adds the image's facts; yields (its gpuenv.toml, the answer of `gpuenv lock --json` run
    again, which finds the image of exactly its pins built)."""
    name = f"lock-test-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=f"gpuenv-lock-{name}-"))
    text = (ROOT / "examples" / "jax-cpu" / "gpuenv.toml").read_text()
    (folder / "gpuenv.toml").write_text(text.replace('name = "jax-cpu"', f'name = "{name}"'))
    try:
        done = gpuenv("lock", "-f", str(folder / "gpuenv.toml"))
        first = answer(done)
        assert done.returncode == 0, done.stderr[-3000:]
        assert first["from"] == "resolution" and not first["built"] and not first["image_id"], first
        built = gpuenv("build", "-f", str(folder / "gpuenv.toml"))
        assert built.returncode == 0 and answer(built)["image"] == first["image"], built.stderr[-3000:]
        done = gpuenv("lock", "-f", str(folder / "gpuenv.toml"))
        data = answer(done)
        assert done.returncode == 0 and data["image_id"], done.stderr[-3000:]
        yield folder / "gpuenv.toml", data
    finally:
        found = module_engine.docker("images", "-q", "--filter", f"reference=gpuenv-{name}", check=False)
        for image in sorted(set(found.stdout.decode().split())):
            module_engine.docker("image", "rm", "--force", image, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_lock_records_base_image_steps_hashes_and_apt(locked_env) -> None:
    spec_file, data = locked_env
    lock = read(spec_file.parent / "gpuenv.lock")
    docker = Docker(os.environ.get("GPUENV_DOCKER", "docker"))
    image = docker.image(lock.image.tag)
    assert image and image["Id"] == lock.image.id == data["image_id"]
    assert image["Config"]["Labels"]["io.gpuenv.spec-sha256"] == lock.spec_sha256
    base = docker.image(lock.base.image)
    assert base and base["Id"] == lock.base.id
    assert [s.id for s in lock.steps][:3] == ["frameworks", "tools", "packages-1"]   # pip's upgrade: system
    frameworks = {p.name: p for p in lock.step("frameworks").packages}
    assert frameworks["jax"].version == "0.10.2" and {"jaxlib", "numpy"} <= set(frameworks)
    assert len(frameworks["jaxlib"].hashes) > 1                  # every platform's wheel, not only this one's
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for s in lock.steps for p in s.packages for h in p.hashes)
    assert all(p.hashes for s in lock.steps if s.id != SYSTEM_STEP for p in s.packages)   # PyPI has them all
    # Debian's python3-pip's, and pip as the Python step upgraded it (no resolution pins pip itself)
    assert {p.name for p in lock.step(SYSTEM_STEP).packages} == {"pip", "setuptools", "wheel"}
    assert dict(lock.apt)["python3-pip"] and dict(lock.apt)["ca-certificates"]


def test_lock_check_is_clean_after_lock(locked_env) -> None:
    spec_file, _ = locked_env
    done = gpuenv("lock", "--check", "-f", str(spec_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert answer(done)["drift"] == []


def test_a_rebuild_without_cache_from_the_lock_holds_exactly_the_lock(locked_env) -> None:
    spec_file, _ = locked_env
    lock = read(spec_file.parent / "gpuenv.lock")
    done = gpuenv("build", "--locked", "--no-cache", "-f", str(spec_file))
    data = answer(done)
    assert done.returncode == 0, done.stderr[-3000:]
    assert data["built"] and data["image"] == lock.image.tag    # built again (no cache), from the lock's pins
    docker = Docker(os.environ.get("GPUENV_DOCKER", "docker"))
    holds = inside.distributions(docker, data["image"])
    assert {d.key: d.version for d in holds.dists} == {_key(n): v for n, v in lock.distributions().items()}
    freeze = docker.run("run", "--rm", "--network", "none", "--entrypoint", "python3", data["image"], "-m", "pip",
                        "freeze", "--all").stdout.split()
    pip_pins = {f"{_key(p.name)}=={p.version}" for s in lock.steps if s.id != SYSTEM_STEP for p in s.packages}
    assert pip_pins <= {_pin(line) for line in freeze}
    dockerfile = (spec_file.parent / "Dockerfile").read_text()
    assert "--no-deps --require-hashes -r /tmp/gpuenv-lock/frameworks.txt" in dockerfile


def test_up_locked_starts_the_locked_image(locked_env) -> None:
    spec_file, _ = locked_env
    built = answer(gpuenv("build", "--locked", "-f", str(spec_file)))
    done = gpuenv("up", "--locked", "--no-wait", "-f", str(spec_file), timeout=300)
    try:
        data = answer(done)
        assert done.returncode == 0, done.stderr[-3000:]
        assert data["image"] == built["image"] and not data["built"]     # the locked image, not built again
        docker = Docker(os.environ.get("GPUENV_DOCKER", "docker"))
        running = docker.inspect("container", *data["containers"])
        assert [c["Config"]["Image"] for c in running] == [built["image"]]
    finally:
        name = re.search(r'name = "([^"]+)"', spec_file.read_text()).group(1)
        client = os.environ.get("GPUENV_DOCKER", "docker")
        ids = subprocess.run([client, "ps", "-aq", "--filter", f"name={name}-"], capture_output=True, text=True)
        for found in ids.stdout.split():
            subprocess.run([client, "rm", "-f", found], capture_output=True)
        volumes = subprocess.run([client, "volume", "ls", "-q", "--filter", f"name={name}-"], capture_output=True,
                                 text=True)
        for found in volumes.stdout.split():                  # HOME's named volume
            subprocess.run([client, "volume", "rm", "-f", found], capture_output=True)


def test_a_base_pinned_by_registry_digest_is_built_from_the_digest(locked_env, module_engine) -> None:
    """The lock of a host whose base came from a registry: FROM names REPO@sha256:..., pulled by digest
    from the local registry (this engine's tag and digest reference are removed first)."""
    spec_file, _ = locked_env
    path = spec_file.parent / "gpuenv.lock"
    original = path.read_text()
    lock = read(path)
    repo = f"{module_engine.registry}/{module_engine.unique('lock-base')}/debian"
    module_engine.docker("tag", lock.base.image, f"{repo}:bookworm")
    try:
        module_engine.docker("push", f"{repo}:bookworm")
        digests = Docker(os.environ.get("GPUENV_DOCKER", "docker")).image(f"{repo}:bookworm")["RepoDigests"]
        digest = next(d for d in digests if d.startswith(repo + "@"))
        module_engine.docker("image", "rm", f"{repo}:bookworm")          # its digest reference goes with it
        assert digest not in (Docker(os.environ.get("GPUENV_DOCKER", "docker")).image(lock.base.image)
                              .get("RepoDigests") or [])
        path.write_text(original.replace(f'[base]\nimage = "{lock.base.image}"\ndigest = ""',
                                         f'[base]\nimage = "{repo}:bookworm"\ndigest = "{digest}"'))
        assert read(path).base.digest == digest
        done = gpuenv("build", "--locked", "-f", str(spec_file))
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"FROM {digest} AS system" in (spec_file.parent / "Dockerfile").read_text()
    finally:
        path.write_text(original)
        module_engine.docker("image", "rm", f"{repo}:bookworm", check=False)


def test_an_altered_hash_stops_the_locked_build_naming_the_package(locked_env) -> None:
    spec_file, _ = locked_env
    path = spec_file.parent / "gpuenv.lock"
    original = path.read_text()
    try:
        block = re.search(r'name = "matplotlib"\nversion = "[^"]+"\nhashes = \[\n((?:    "sha256:[0-9a-f]+",\n)+)\]',
                          original)
        assert block, "matplotlib is not in the lock with hashes"
        altered = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block.group(1))
        path.write_text(original.replace(block.group(1), altered))
        done = gpuenv("build", "--locked", "-f", str(spec_file))
        assert done.returncode == 1, done.stdout
        error = answer(done)["error"]
        assert re.search(r"matplotlib==\S+ does not match the hashes in gpuenv.lock", error["message"]), error
        assert "gpuenv lock" in error["hint"]
    finally:
        path.write_text(original)


def test_lock_check_reports_a_package_added_to_the_spec_and_locked_refuses(locked_env) -> None:
    spec_file, _ = locked_env
    original = spec_file.read_text()
    try:
        spec_file.write_text(original.replace('packages = ["matplotlib"]', 'packages = ["matplotlib", "six"]'))
        done = gpuenv("lock", "--check", "-f", str(spec_file))
        assert done.returncode == 1
        drift = answer(done)["drift"]
        assert [d["kind"] for d in drift] == ["spec"], drift
        refused = gpuenv("build", "--locked", "-f", str(spec_file))
        assert refused.returncode == 2
        assert "made from another gpuenv.toml" in answer(refused)["error"]["message"]
    finally:
        spec_file.write_text(original)


def _key(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _pin(line: str) -> str:
    name, _, version = line.partition("==")
    return f"{_key(name)}=={version}"
