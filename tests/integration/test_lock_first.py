"""The lock before the build, on the real engine: a plan resolved by the real resolver (uv pip compile
against PyPI, through this machine's TLS-inspecting proxy, as `gpuenv plan` resolves) is locked with no
image built; the build installs exactly the lock, step by step, with uv from its hashed stage; the image
holds exactly the resolved set; a forged hash stops the build naming the package; `gpuenv lock --check` is clean once the first build added the image's facts."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from packaging.utils import canonicalize_name

from gpuenv.lock import inside
from gpuenv.lock.lockfile import SYSTEM_STEP, read
from gpuenv.run.docker import Docker

pytestmark = pytest.mark.docker
SPEC = 'name = "{name}"\npython = "3.11"\npackages = ["requests", "six"]\n\n[gpu]\ndevices = "none"\n'


@pytest.fixture(scope="module")
def resolved_env(module_engine) -> Iterator[tuple[Path, object]]:
    """A spec folder and the real resolver's answer for it, as planning makes it; yields (gpuenv.toml, Resolved)."""
    from gpuenv import planning

    name = f"lockfirst-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=f"gpuenv-{name}-"))
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name))
    request, spec = planning.request_from_spec(folder / "gpuenv.toml")
    answer = planning.plan_whole(request, planning.target_for(planning.TargetFlags(), spec, probe=False), spec, folder).resolved
    assert answer is not None and answer.status == "resolved", answer
    assert [s.id for s in answer.steps] == ["packages-1", "packages-2"]
    try:
        yield folder / "gpuenv.toml", answer
    finally:
        found = module_engine.docker("images", "-q", "--filter", f"reference=gpuenv-{name}", check=False)
        for image in sorted(set(found.stdout.decode().split())):
            module_engine.docker("image", "rm", "--force", image, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def gpuenv(capsys: pytest.CaptureFixture, *args: str, said: "list[str] | None" = None) -> tuple[int, dict]:
    """gpuenv in this process (so the plan carries the resolution); `said` receives its stderr."""
    from gpuenv.cli.main import run

    capsys.readouterr()
    code = run(["--json", *args])
    out = capsys.readouterr()
    if said is not None:
        said.append(out.err)
    return code, json.loads(out.out)


def _images(docker: Docker) -> set[str]:
    return set(docker.run("images", "-aq", "--no-trunc").stdout.split())


def test_lock_writes_the_resolution_without_building(resolved_env, module_engine, capsys) -> None:
    spec_file, answer = resolved_env
    docker = Docker(module_engine.client)
    before = _images(docker)
    code, data = gpuenv(capsys, "lock", "-f", str(spec_file))
    assert code == 0, data
    assert data["built"] is False and data["from"] == "resolution" and data["image_id"] == ""
    assert _images(docker) == before                       # no image was built (nor any other made)
    lock = read(spec_file.parent / "gpuenv.lock")
    assert [s.id for s in lock.steps] == ["packages-1", "packages-2"]
    for step in answer.steps:
        assert [(p.name, p.version, p.hashes, p.index) for p in lock.step(step.id).packages] == \
            [(p.name, p.version, p.hashes, p.index) for p in step.pins]
    assert all(p.hashes for s in lock.steps for p in s.packages)


def test_the_build_installs_exactly_the_lock_with_uv(resolved_env, module_engine, capsys) -> None:
    spec_file, answer = resolved_env
    code, data = gpuenv(capsys, "build", "--locked", "-f", str(spec_file))
    assert code == 0, data
    dockerfile = (spec_file.parent / "Dockerfile").read_text()
    assert "FROM python AS uv" in dockerfile and "--require-hashes --target /opt/uv" in dockerfile
    assert 'sh /tmp/gpuenv-lock/uv-install.sh "$(command -v python3)" --no-deps --require-hashes' in dockerfile
    docker = Docker(module_engine.client)
    holds = inside.distributions(docker, data["image"])
    by_uv = {d.key: d.version for d in holds.dists if d.installer == "uv"}
    assert by_uv == {p.name: p.version for p in answer.pins}          # exactly the resolved set, by uv
    assert {d.key for d in holds.dists if d.installer == "pip"} <= {"pip"}   # pip at most upgraded itself
    assert not docker.run("run", "--rm", "--entrypoint", "sh", data["image"], "-c",
                          "ls /opt/uv 2>/dev/null").stdout.strip()    # uv is in no layer of the image
    lock = read(spec_file.parent / "gpuenv.lock")
    assert lock.image.id and lock.image.tag == data["image"]          # the first build added its facts
    assert "pip" in {canonicalize_name(p.name) for p in lock.step(SYSTEM_STEP).packages}
    code, check = gpuenv(capsys, "lock", "--check", "-f", str(spec_file))
    assert code == 0 and not check["drifted"], check


def test_a_build_from_the_resolution_is_the_locked_image(resolved_env, capsys) -> None:
    spec_file, _ = resolved_env
    _, locked = gpuenv(capsys, "build", "--locked", "-f", str(spec_file))
    code, data = gpuenv(capsys, "build", "-f", str(spec_file))
    assert code == 0, data
    assert data["image"] == locked["image"] and data["built"] is False   # same files, same tag: not built again


def test_a_forged_hash_stops_the_build_naming_the_package(resolved_env, capsys) -> None:
    spec_file, _ = resolved_env
    path = spec_file.parent / "gpuenv.lock"
    original = path.read_text()
    try:
        block = re.search(r'name = "six"\nversion = "[^"]+"\nhashes = (\[[^\]]*\])', original)
        assert block, "six is not in the lock with hashes"
        path.write_text(original.replace(block.group(1), re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64,
                                                                block.group(1))))
        code, data = gpuenv(capsys, "build", "--locked", "-f", str(spec_file))
        assert code == 1, data
        assert re.search(r"six==\S+ does not match the hashes in gpuenv.lock", data["error"]["message"]), data
        assert "gpuenv lock" in data["error"]["hint"]
    finally:
        path.write_text(original)


def test_lock_of_an_image_already_built_has_its_facts_at_once(resolved_env, module_engine, capsys) -> None:
    spec_file, answer = resolved_env
    path = spec_file.parent / "gpuenv.lock"
    original = path.read_text()
    try:
        path.unlink()
        docker = Docker(module_engine.client)
        before = _images(docker)
        code, data = gpuenv(capsys, "lock", "-f", str(spec_file))
        assert code == 0 and data["built"] is False and data["image_id"], data
        assert _images(docker) == before
        lock = read(path)
        assert lock.step(SYSTEM_STEP) is not None and lock.image.id == docker.image(data["image"])["Id"]
        assert {p.name: p.version for s in lock.steps if s.id != SYSTEM_STEP for p in s.packages} == \
            {p.name: p.version for p in answer.pins}
    finally:
        path.write_text(original)


def test_pip_installs_the_same_pinned_files_where_uv_does_not_run(resolved_env, module_engine) -> None:
    """The pip path (a Python below uv's floor) from the same pinned files: the environment's Dockerfile
    rendered with pip as the installer, built for real, holds the same resolved set, installed by pip."""
    from gpuenv import environment
    from gpuenv.images.image import secrets
    from gpuenv.cli.common import engine
    from gpuenv.render.dockerfile import dockerfile

    spec_file, answer = resolved_env
    prepared = environment.prepare(spec_file, engine, lambda _: None, locked=True)
    text = dockerfile(dataclasses.replace(prepared.rendered.recipe, installer="pip"))
    assert "/opt/uv" not in text and "python3 -m pip install --no-deps --require-hashes -r" in text
    (spec_file.parent / "Dockerfile.pip").write_text(text)
    tag = module_engine.track_image(f"{prepared.image.split(':')[0]}:pip")
    ca = [f"--secret=id={name},src={src}" for name, src in secrets("auto")]
    module_engine.docker("build", *ca, "-t", tag, "-f", str(spec_file.parent / "Dockerfile.pip"),
                         str(spec_file.parent), timeout=900)
    holds = inside.distributions(Docker(module_engine.client), tag)
    assert {d.key: d.version for d in holds.dists if d.installer == "pip" and d.key != "pip"} == \
        {p.name: p.version for p in answer.pins}


def test_lock_without_a_resolution_builds_and_says_so(module_engine, capsys) -> None:
    from gpuenv import planning
    from gpuenv.resolve.resolved import unresolved

    name = f"lockfirst-u-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=f"gpuenv-{name}-"))
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name))
    why = "no index answered: https://pypi.org/simple (test)"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(planning, "plan_whole", lambda request, target, *a, **k:
                          dataclasses.replace(planning.plan(request, target), resolved=unresolved(why)))
            said: list[str] = []
            code, data = gpuenv(capsys, "lock", "-f", str(folder / "gpuenv.toml"), said=said)
        assert code == 0, data
        assert f"no resolution to lock ({why}): building the image" in " ".join(said[0].split()), said
        assert data["from"] == "image" and data["built"] is True and data["image_id"]
        lock = read(folder / "gpuenv.lock")
        assert {p.name.lower() for p in lock.step("packages-2").packages} == {"six"}
        assert "/opt/uv" not in (folder / "Dockerfile").read_text()      # unresolved: pip, as before
    finally:
        found = module_engine.docker("images", "-q", "--filter", f"reference=gpuenv-{name}", check=False)
        for image in sorted(set(found.stdout.decode().split())):
            module_engine.docker("image", "rm", "--force", image, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_downloaded_wheels_are_kept_for_the_next_build_only_when_asked_or_slow(resolved_env, module_engine) -> None:
    """.gpuenv/uv-install.sh on the real engine: each pinned step downloads into a cache on the image's own
    file system and hardlinks from it; with GPUENV_KEEP_WHEELS=always the wheels are also kept in the cache
    mount, and the next build of the same steps takes them from there; auto on a fast index (this one,
    under a second for a few hundred kB) keeps nothing; a bad value stops the build naming the three."""
    from gpuenv import environment
    from gpuenv.images.image import secrets
    from gpuenv.cli.common import engine

    spec_file, answer = resolved_env
    prepared = environment.prepare(spec_file, engine, lambda _: None)
    folder = spec_file.parent
    text = (folder / "Dockerfile").read_text()
    assert "sh /tmp/gpuenv-lock/uv-install.sh" in text and "ARG GPUENV_KEEP_WHEELS=auto" in text
    ca = [f"--secret=id={name},src={src}" for name, src in secrets("auto")]
    pins = {p.name: p.version for p in answer.pins}

    def build(mount: str, keep: str, check: bool = True) -> tuple[str, str, int]:
        dockerfile = folder / f"Dockerfile.{mount}"
        dockerfile.write_text(text.replace("--mount=type=cache,target=/root/.cache/uv,",
                                           f"--mount=type=cache,id={mount},target=/root/.cache/uv,"))
        tag = module_engine.track_image(f"{prepared.image.split(':')[0]}:{mount}")
        # not --no-cache: Docker 20.10 then gives the step an empty cache mount (seen here); the mount id and
        # GPUENV_KEEP_WHEELS differ between these builds, so no step of the environment comes from the cache
        run = module_engine.docker("build", "--progress=plain", *ca, "--build-arg",
                                   f"GPUENV_KEEP_WHEELS={keep}", "-t", tag, "-f", str(dockerfile), str(folder),
                                   check=check, timeout=900)
        return tag, run.stderr.decode(), run.returncode

    def holds(tag: str) -> dict[str, str]:
        found = inside.distributions(Docker(module_engine.client), tag).dists
        return {d.key: d.version for d in found if d.installer == "uv"}

    steps = len(answer.steps)
    kept_mount, fresh_mount = (f"gpuenv-test-uv-{uuid.uuid4().hex[:8]}" for _ in range(2))
    tag, log, _ = build(kept_mount, "always")
    assert log.count("keeping them in the cache mount") == steps and "from the cache mount" not in log, log[-3000:]
    assert holds(tag) == pins
    tag, log, _ = build(kept_mount, "auto")
    assert log.count("this step's wheels from the cache mount") == steps and "keeping them" not in log, log[-3000:]
    assert holds(tag) == pins
    tag, log, _ = build(fresh_mount, "auto")
    assert "keeping them" not in log and "from the cache mount" not in log, log[-3000:]
    assert holds(tag) == pins
    _, log, code = build(fresh_mount, "sometimes", check=False)
    assert code != 0 and "GPUENV_KEEP_WHEELS is auto, always or never, not 'sometimes'" in log, log[-3000:]
