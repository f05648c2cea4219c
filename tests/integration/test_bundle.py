"""Offline bundles on real engines: `gpuenv save` on this engine, `gpuenv load` into a second dockerd on
this machine (its own data root, exec root, pid file and socket; no bridge: it stands in for an offline
server), then `gpuenv up` and `gpuenv verify` there. Damaged, truncated and unfit bundles are refused
and leave that engine's images as they were. Everything made is removed, the second engine included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.tomlcompat import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import second_engine  # noqa: E402

pytestmark = pytest.mark.docker

SPEC = """name = "{name}"
python = "3.11"
frameworks = ["jax"]

[gpu]
devices = "none"
"""


def gpuenv(*args: str, cwd: Path, host: str = "", timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "GPUENV_DOCKER": os.environ.get("GPUENV_DOCKER", "/usr/bin/docker"), **env}
    if host:
        full["DOCKER_HOST"] = host
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpuenv-bundle-it")


def _docker0() -> str:
    return subprocess.run(["ip", "-o", "link", "show", "docker0"], capture_output=True, text=True).stdout.split(":")[0]


@pytest.fixture(scope="module")
def host_bridge() -> str:
    """The host's docker0 (its link index) before the second engine starts."""
    return _docker0()


@pytest.fixture(scope="module")
def second(host_bridge: str) -> Iterator[second_engine.SecondEngine]:
    with second_engine.running() as engine:
        yield engine


@pytest.fixture(scope="module")
def bundle(module_engine, work: Path) -> Iterator[Path]:      # type: ignore[no-untyped-def]
    """A shell-only CPU environment built on this engine and saved; its images removed afterwards."""
    name = f"bundle-it-{uuid.uuid4().hex[:8]}"
    folder = work / "env"
    folder.mkdir()
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name))
    try:
        built = gpuenv("build", "--json", cwd=folder)
        assert built.returncode == 0, built.stderr
        module_engine.track_image(json.loads(built.stdout)["image"])
        saved = gpuenv("save", "-o", str(work / "env.gpuenv"), "--json", cwd=folder)
        assert saved.returncode == 0, saved.stderr
        yield work / "env.gpuenv"
    finally:
        module_engine.docker("image", "rm", "--force", *_images(module_engine.client, f"gpuenv-{name}"), check=False)


def _images(client: str, repository: str, host: str = "") -> list[str]:
    argv = [client] + (["-H", host] if host else []) + ["images", "--format", "{{.Repository}}:{{.Tag}}", repository]
    return subprocess.run(argv, capture_output=True, text=True).stdout.split()


def _engine_images(second: second_engine.SecondEngine) -> list[str]:
    return sorted(second.docker("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout
                  .splitlines())


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and "partial" in p.name
                  or p.name.endswith(".tmp"))


def test_the_bundle_lists_as_a_tar_with_the_image_compressed(bundle: Path) -> None:
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[:2] == ["gpuenv-bundle", "gpuenv.toml"] and names[-3:] == ["image.tar.zst", "manifest.json",
                                                                          "manifest.sha256"]
    image = next(m for m in manifest["members"] if m["name"] == "image.tar.zst")
    assert image["size"] < 0.6 * manifest["image"]["size"]            # zstd: well under the plain tar
    assert manifest["requires"] == {"gpu": False, "min_driver": "", "cuda": "", "cuda_source": "none",
                                    "gpu_archs": []}
    assert manifest["user"] == {"uid": os.getuid(), "gid": os.getgid()}
    assert [b["tag"] for b in manifest["bases"]] == ["gpuenv-base/debian:bookworm"]


def test_damaged_and_truncated_bundles_reach_nothing(bundle: Path, second: second_engine.SecondEngine,
                                                     work: Path) -> None:
    before = _engine_images(second)
    with tarfile.open(bundle) as tar:
        image_at = tar.getmember("image.tar.zst").offset_data
    flipped = work / "flipped.gpuenv"
    raw = bytearray(bundle.read_bytes())
    raw[image_at + 4096] ^= 0x20
    flipped.write_bytes(bytes(raw))
    cut = work / "cut.gpuenv"
    cut.write_bytes(bytes(raw[: image_at + 1_000_000]))
    for path, said in ((flipped, "does not match its checksum"), (cut, "is truncated")):
        run = gpuenv("load", str(path), "--into", str(work / "nowhere"), cwd=work, host=second.host)
        assert run.returncode == 2, run.stderr
        assert said in run.stderr and "hint:" in run.stderr and "Traceback" not in run.stderr
    assert _engine_images(second) == before
    assert not (work / "nowhere").exists() and _leftovers(work) == []
    flipped.unlink()
    cut.unlink()


def test_a_bundle_this_host_cannot_run_is_refused(bundle: Path, second: second_engine.SecondEngine,
                                                  work: Path) -> None:
    """The bundle's manifest says CUDA 12 from wheels (driver >= 525.60.13, sm_90): this host has no driver."""
    from gpuenv.bundle.manifest import seal

    cuda = work / "cuda.gpuenv"
    with tarfile.open(bundle) as src, tarfile.open(cuda, "w", format=tarfile.GNU_FORMAT) as out:
        data = json.loads(src.extractfile("manifest.json").read())
        data["requires"] = {"gpu": True, "min_driver": "525.60.13", "cuda": "12.4", "cuda_source": "wheels",
                            "gpu_archs": ["sm_90"]}
        text = json.dumps(data).encode()
        for m in src.getmembers():
            body = src.extractfile(m)
            if m.name in ("manifest.json", "manifest.sha256"):
                content = text if m.name == "manifest.json" else seal(text)
                m.size = len(content)
                import io
                body = io.BytesIO(content)
            out.addfile(m, body)
    before = _engine_images(second)
    run = gpuenv("load", str(cuda), "--into", str(work / "cuda"), cwd=work, host=second.host)
    assert run.returncode == 1, run.stderr
    assert "this host cannot run" in run.stderr and "needs driver >= 525.60.13" in run.stderr
    assert "what would work" in run.stderr and "--force" in run.stderr
    assert _engine_images(second) == before and not (work / "cuda").exists()
    cuda.unlink()


def test_save_load_up_verify_on_the_second_engine(bundle: Path, second: second_engine.SecondEngine,
                                                  work: Path) -> None:
    manifest = json.loads(tarfile.open(bundle).extractfile("manifest.json").read())
    assert manifest["image"]["tag"] not in " ".join(_engine_images(second))
    into = work / "loaded"
    run = gpuenv("load", str(bundle), "--into", str(into), "--up", "--json", cwd=work, host=second.host)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["loaded"] is True and data["retargeted"] is None and data["kept_tags"] == []
    assert data["image"] == manifest["image"]["tag"] and data["image_id"] == manifest["image"]["id"]
    for base in manifest["bases"]:                  # free on the fresh engine: tagged onto the sealed ID
        assert second.docker("image", "inspect", "--format", "{{.Id}}", base["tag"]).stdout.strip() == base["id"]
    assert second.docker("image", "inspect", "--format", "{{.Id}}", data["image"]).stdout.strip() == data["image_id"]
    assert (into / "gpuenv.toml").read_bytes() == tarfile.open(bundle).extractfile("gpuenv.toml").read()
    assert "pulling" not in run.stderr and "building" not in run.stderr    # nothing fetched, nothing built
    verified = gpuenv("verify", "--json", cwd=into, host=second.host)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    assert gpuenv("down", cwd=into, host=second.host).returncode == 0


def test_another_uid_gets_a_derived_image_that_up_finds(bundle: Path, second: second_engine.SecondEngine,
                                                        work: Path) -> None:
    """SUDO_UID/SUDO_GID make gpuenv act for that user (host/user.ids): the image is renumbered, offline."""
    as_user = {"SUDO_UID": "4321", "SUDO_GID": "4322"}
    into = work / "other-user"
    run = gpuenv("load", str(bundle), "--into", str(into), "--up", "--json", cwd=work, host=second.host, **as_user)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["retargeted"] == [4321, 4322] and data["image"] != data["bundle_image"]
    assert "building" not in run.stderr
    ids = gpuenv("exec", "--", "id", "-u", cwd=into, host=second.host, **as_user)
    assert ids.returncode == 0 and ids.stdout.strip() == "4321", ids.stderr
    home = gpuenv("exec", "--", "stat", "-c", "%u:%g", "/home/gpuenv", cwd=into, host=second.host, **as_user)
    assert home.stdout.strip() == "4321:4322"
    verified = gpuenv("verify", cwd=into, host=second.host, **as_user)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert gpuenv("down", cwd=into, host=second.host, **as_user).returncode == 0


def test_a_locked_environment_travels_with_its_lock_and_up_renders_from_it(module_engine, second, work):
    """lock (the resolution, no build), build --locked, save; load --up on the second engine finds the locked
    image through the lock's plan and pinned steps, with no index (a fresh plan there would resolve again)."""
    name = f"bundle-lk-{uuid.uuid4().hex[:8]}"
    folder = work / "locked-env"
    folder.mkdir()
    (folder / "gpuenv.toml").write_text(SPEC.format(name=name))
    try:
        locked = gpuenv("lock", "--json", cwd=folder)
        assert locked.returncode == 0, locked.stderr
        unlocked = tomllib.loads((folder / "gpuenv.lock").read_text())["image"]["tag"]
        built = gpuenv("build", "--locked", "--json", cwd=folder)
        assert built.returncode == 0, built.stderr
        image = json.loads(built.stdout)["image"]
        assert image == unlocked      # the lock is the resolution: build --locked builds the tag it names
        saved = gpuenv("save", "-o", str(work / "locked.gpuenv"), "--json", cwd=folder)
        assert saved.returncode == 0, saved.stderr
        assert json.loads(saved.stdout)["image"] == image
        assert "gpuenv.lock" in tarfile.open(work / "locked.gpuenv").getnames()

        into = work / "locked-loaded"
        run = gpuenv("load", str(work / "locked.gpuenv"), "--into", str(into), "--up", "--json", cwd=work,
                     host=second.host)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["image"] == image and "building" not in run.stderr
        assert (into / "gpuenv.lock").read_bytes() == (folder / "gpuenv.lock").read_bytes()
        assert _images(module_engine.client, f"gpuenv-{name}", second.host) == [image]
        verified = gpuenv("verify", "--json", cwd=into, host=second.host)
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True, verified.stdout
        assert gpuenv("down", cwd=into, host=second.host).returncode == 0
    finally:
        module_engine.docker("image", "rm", "--force", *_images(module_engine.client, f"gpuenv-{name}"), check=False)


def test_a_signed_save_loads_with_allowed_signers(bundle: Path, second: second_engine.SecondEngine,
                                                  work: Path) -> None:
    """`gpuenv save --sign KEY` with a real ed25519 key; `gpuenv load --allowed-signers FILE` on the other
    engine says who signed it; the same bundle with a key that is not listed is refused before the engine."""
    key, allowed = work / "id_ed25519", work / "allowed_signers"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "maker", "-f", str(key)], check=True)
    allowed.write_text("maker@lab " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")
    saved = gpuenv("save", "-o", str(work / "signed.gpuenv"), "--sign", str(key), "--json", cwd=work / "env")
    assert saved.returncode == 0, saved.stderr
    assert tarfile.open(work / "signed.gpuenv").getnames()[-1] == "manifest.sig"
    run = gpuenv("load", str(work / "signed.gpuenv"), "--allowed-signers", str(allowed), "--into",
                 str(work / "signed-loaded"), "--json", cwd=work, host=second.host)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["signer"] == "maker@lab"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "someone")], check=True)
    other = work / "other_allowed"
    other.write_text("someone@else " + " ".join((work / "someone.pub").read_text().split()[:2]) + "\n")
    before = _engine_images(second)
    refused = gpuenv("load", str(work / "signed.gpuenv"), "--allowed-signers", str(other), "--into",
                     str(work / "signed-refused"), cwd=work, host=second.host)
    assert refused.returncode == 2 and "does not list" in refused.stderr, refused.stderr
    assert _engine_images(second) == before and not (work / "signed-refused").exists()
    (work / "signed.gpuenv").unlink()


def test_an_interrupted_save_leaves_nothing(bundle: Path, work: Path) -> None:
    folder = work / "env"
    out = work / "interrupted.gpuenv"
    env = {**os.environ, "GPUENV_DOCKER": os.environ.get("GPUENV_DOCKER", "/usr/bin/docker")}
    # Ctrl-C as from a terminal: a test run started in the background (`cmd &`) hands its children SIGINT
    # ignored, and Python then never raises KeyboardInterrupt; a terminal's foreground job has it default.
    proc = subprocess.Popen([sys.executable, "-m", "gpuenv", "save", "-o", str(out)], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.name.startswith(".interrupted") for p in work.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not out.exists() and _leftovers(work) == []


def test_the_second_engine_left_the_hosts_bridge_alone(second: second_engine.SecondEngine, host_bridge: str) -> None:
    """dockerd --bridge=none deletes docker0 where it starts: in its own network namespace it must not be the
    host's (other engines' containers need it)."""
    assert _docker0() == host_bridge


def test_a_full_disk_leaves_nothing(bundle: Path, work: Path) -> None:
    """`gpuenv save` onto a 32 MB tmpfs (the bundle is ~0.2 GB): a clear error, no temporary file left."""
    small = work / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "gpuenv-bundle-full", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        run = gpuenv("save", "-o", str(small / "env.gpuenv"), cwd=work / "env")
        assert run.returncode == 1, run.stderr
        assert f"cannot write {small / 'env.gpuenv'}: no space left on the device" in run.stderr, run.stderr
        assert f"hint: free space on that file system (df -h {small})" in run.stderr, run.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
