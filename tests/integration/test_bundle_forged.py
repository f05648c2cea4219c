"""Forged bundles against a real engine: a second dockerd (scripts/second_engine.py) holds victim images
under the tags a forger wants (gpuenv-base/debian:bookworm, python:3.11-slim-bookworm, an environment's
own tag); bundles are made by hand around hand-made `docker save` archives, with valid checksums and
seal, as anyone can. A load never moves a tag it did not create, never writes outside its folder, and a
refused load leaves the engine exactly as it was. Needs no build and no network."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "bundle"))
import second_engine  # noqa: E402
from helpers import CONTEXT, handmade_bundle, image_archive, rebuild, ssh_key  # noqa: E402

from gpuenv.bundle.write import content_tag  # noqa: E402

pytestmark = pytest.mark.docker

VICTIMS = ("gpuenv-base/debian:bookworm", "python:3.11-slim-bookworm")
UID, GID = os.getuid(), os.getgid()


def gpuenv(*args: str, cwd: Path, host: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPUENV_DOCKER": os.environ.get("GPUENV_DOCKER", "/usr/bin/docker"), "DOCKER_HOST": host}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def second() -> Iterator[second_engine.SecondEngine]:
    with second_engine.running() as engine:
        yield engine


@pytest.fixture(scope="module")
def victim(second: second_engine.SecondEngine) -> str:
    """An image made on the second engine (docker import, offline), under every victim tag: its ID."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("victim.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"victim\n"))
    made = subprocess.run(["/usr/bin/docker", "-H", second.host, "import", "-", VICTIMS[0]], input=layer.getvalue(),
                          capture_output=True, check=True)
    image_id = made.stdout.decode().strip()
    for tag in VICTIMS[1:]:
        second.docker("tag", image_id, tag)
    return image_id


def _state(second: second_engine.SecondEngine) -> list[str]:
    """Every image (ID and tag) on the second engine."""
    return sorted(second.docker("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
                  .stdout.splitlines())


def _id_of(second: second_engine.SecondEngine, ref: str) -> str:
    return second.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).stdout.strip()


def _name() -> str:
    return f"forged-{uuid.uuid4().hex[:8]}"


def _own_tag(name: str) -> str:
    return content_tag(name, UID, GID, [(p, d.decode(), m) for p, d, m in CONTEXT])


def test_a_forged_name_writes_nothing_outside_and_loads_nothing(second, victim, tmp_path: Path) -> None:
    """A manifest named `../escaped-...`: a plain `gpuenv load` (no --into) would make ../escaped-... its
    folder. Refused (exit 2) before the engine: no folder anywhere, the engine as it was."""
    name = _name()
    archive, image_id = image_archive([_own_tag(name)], f"{UID}:{GID}", name)
    good = handmade_bundle(tmp_path / "made", name, archive, image_id, (), UID, GID)
    forged = tmp_path / "forged.gpuenv"
    rebuild(good, forged, lambda d: d.update(name=f"../escaped-{name}"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _state(second)
    run = gpuenv("load", str(forged), cwd=cwd, host=second.host)
    assert run.returncode == 2, run.stderr
    assert "is not an environment name" in run.stderr and "hint:" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / f"escaped-{name}").exists() and list(cwd.iterdir()) == []
    assert _state(second) == before


def test_tags_in_the_image_archive_never_move_a_tag(second, victim, tmp_path: Path) -> None:
    """The archive's RepoTags and repositories name the victims: docker load would move them to the forged
    image. Refused as it streams (the archive is cut, docker load loads nothing): every victim tag on its
    image, no image new."""
    name = _name()
    archive, image_id = image_archive([_own_tag(name), *VICTIMS], f"{UID}:{GID}", name)
    forged = handmade_bundle(tmp_path, name, archive, image_id, ((VICTIMS[0], image_id),), UID, GID)
    before = _state(second)
    run = gpuenv("load", str(forged), "--into", str(tmp_path / "into"), cwd=tmp_path, host=second.host)
    assert run.returncode == 2, run.stderr
    assert "would load tags" in run.stderr and "python:3.11-slim-bookworm" in run.stderr, run.stderr
    assert all(_id_of(second, tag) == victim for tag in VICTIMS)
    assert _state(second) == before and not _id_of(second, image_id)
    assert not (tmp_path / "into").exists()


def test_a_base_tag_on_another_image_stays_where_it_is(second, victim, tmp_path: Path) -> None:
    """The manifest's base list names gpuenv-base/debian:bookworm on the bundle's own image (its archive
    tags it so too, as a real save would): the engine's gpuenv-base/debian:bookworm is another image, so the
    tag stays there (said in the output); the bundle's image loads under its own tag only."""
    name = _name()
    own = _own_tag(name)
    archive, image_id = image_archive([own, VICTIMS[0]], f"{UID}:{GID}", name)
    forged = handmade_bundle(tmp_path, name, archive, image_id, ((VICTIMS[0], image_id),), UID, GID)
    before = _state(second)
    try:
        run = gpuenv("load", str(forged), "--into", str(tmp_path / "into"), "--json", cwd=tmp_path, host=second.host)
        assert run.returncode == 0, run.stderr
        data = json.loads(run.stdout)
        assert data["kept_tags"] == [{"tag": VICTIMS[0], "image_id": victim, "bundle_image_id": image_id}]
        assert all(_id_of(second, tag) == victim for tag in VICTIMS)
        assert _id_of(second, own) == image_id
        assert _state(second) == sorted(before + [f"{image_id} {own}"])
    finally:
        second.docker("rmi", own, check=False)


def test_the_image_tag_on_another_image_is_refused_before_loading(second, victim, tmp_path: Path) -> None:
    """The environment's own tag already names another image here: loading would take it. Refused (exit 1,
    the engine is fine, the bundle too) before anything is loaded."""
    name = _name()
    own = _own_tag(name)
    archive, image_id = image_archive([own], f"{UID}:{GID}", name)
    forged = handmade_bundle(tmp_path, name, archive, image_id, (), UID, GID)
    second.docker("tag", victim, own)
    try:
        before = _state(second)
        run = gpuenv("load", str(forged), "--into", str(tmp_path / "into"), cwd=tmp_path, host=second.host)
        assert run.returncode == 1, run.stderr
        assert f"{own} names image" in run.stderr and f"docker rmi {own}" in run.stderr
        assert _id_of(second, own) == victim and _state(second) == before and not _id_of(second, image_id)
    finally:
        second.docker("rmi", own, check=False)


def test_a_signed_bundle_loads_and_a_resealed_one_does_not(second, victim, tmp_path: Path) -> None:
    """Signed with a real ed25519 key: loads with --allowed-signers and says who signed it. Its spec
    changed and the manifest resealed: refused before the engine."""
    from gpuenv.bundle.signature import signer

    key, allowed = ssh_key(tmp_path)
    name = _name()
    own = _own_tag(name)
    archive, image_id = image_archive([own], f"{UID}:{GID}", name)
    signed = handmade_bundle(tmp_path / "made", name, archive, image_id, (), UID, GID, sign=signer(key))
    resealed = rebuild(signed, tmp_path / "resealed.gpuenv",
                       members={"gpuenv.toml": f'name = "{name}"\n\n[gpu]\ndevices = "all"\n'.encode()})
    before = _state(second)
    run = gpuenv("load", str(resealed), "--allowed-signers", str(allowed), "--into", str(tmp_path / "bad"),
                 cwd=tmp_path, host=second.host)
    assert run.returncode == 2 and "signature does not verify" in run.stderr, run.stderr
    assert _state(second) == before and not (tmp_path / "bad").exists()
    try:
        run = gpuenv("load", str(signed), "--allowed-signers", str(allowed), "--into", str(tmp_path / "good"),
                     "--json", cwd=tmp_path, host=second.host)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["signer"] == "alice@example" and _id_of(second, own) == image_id
    finally:
        second.docker("rmi", own, check=False)


def test_a_load_that_fails_after_loading_takes_away_what_it_put_there(second, victim, tmp_path: Path) -> None:
    """Loaded and tagged, then refused: for another user (SUDO_UID) the derived image's tag already names
    another image. The load is undone: the image it loaded and the tag it made are gone, the victim kept."""
    name = _name()
    own = _own_tag(name)
    derived = content_tag(name, 4321, 4322, [(p, d.decode(), m) for p, d, m in CONTEXT])
    archive, image_id = image_archive([own], f"{UID}:{GID}", name)
    bundle = handmade_bundle(tmp_path, name, archive, image_id, (), UID, GID)
    second.docker("tag", victim, derived)
    try:
        before = _state(second)
        env = {**os.environ, "GPUENV_DOCKER": os.environ.get("GPUENV_DOCKER", "/usr/bin/docker"),
               "DOCKER_HOST": second.host, "SUDO_UID": "4321", "SUDO_GID": "4322"}
        run = subprocess.run([sys.executable, "-m", "gpuenv", "load", str(bundle), "--into", str(tmp_path / "into")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 1 and f"{derived} (the tag of this environment" in run.stderr, run.stderr
        assert _state(second) == before and not _id_of(second, image_id) and not _id_of(second, own)
        assert _id_of(second, derived) == victim and not (tmp_path / "into").exists()
    finally:
        second.docker("rmi", derived, check=False)
