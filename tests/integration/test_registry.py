"""`gpuenv push` / `gpuenv pull` through real registries on this machine (Debian's docker-registry):
127.0.0.1:5000 without auth and 127.0.0.1:5001 with basic auth (scripts/setup.sh ensure_auth_registry),
plus a plain-HTTP server on the engine's bridge standing for a registry the engine will only speak TLS to.

Most tests push a tiny image (FROM scratch, one file unique to the run) carrying gpuenv's labels and
USER line; the last module builds the jax-cpu example with `gpuenv build` through a registry mirror
(the base exists only in the local registry), pushes it, removes it, pulls it, and builds again: nothing
to build.
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.lock import lockfile
from gpuenv.tomlcompat import tomllib

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
UID = 4321


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A home and a temp folder of the test's own: what gpuenv leaves in them is checked."""
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    return {"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "SUDO_UID": str(UID), "SUDO_GID": str(UID)}


def gpuenv(*args: str, cwd: Path, env: dict) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k != "GPUENV_REGISTRY_PASSWORD"}
    return subprocess.Popen([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env={**full, **env}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, stdin: str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    out, err = process.communicate(stdin, timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run(*args: str, cwd: Path, env: dict, stdin: str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return finish(gpuenv(*args, cwd=cwd, env=env), stdin, timeout)


@pytest.fixture
def tiny(engine, tmp_path: Path) -> dict[str, str]:
    """A gpuenv-labelled image of a few bytes, unique to this test: gpuenv-NAME:CONTENTTAG."""
    name = f"registry-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:12]
    context = tmp_path / "context"
    context.mkdir()
    (context / "payload").write_text(f"{name} {tag}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n"
                                        f"LABEL org.opencontainers.image.title={name} io.gpuenv.spec-sha256={tag}\n"
                                        f"USER {UID}:{UID}\n")
    image = engine.track_image(f"gpuenv-{name}:{tag}")
    engine.docker("build", "-q", "-t", image, str(context))
    return {"name": name, "tag": tag, "image": image, "id": image_id(engine, image)}


def image_id(engine, ref: str) -> str:
    found = engine.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return found.stdout.decode().strip() if found.returncode == 0 else ""


@pytest.fixture
def repo(engine) -> Iterator:
    """A repository of the test's own in a registry; every local reference to it is removed afterwards."""
    made: list[str] = []

    def named(registry: str, name: str) -> str:
        made.append(f"{registry}/gpuenv-registry-test/{name}")
        return made[-1]
    yield named
    for repository in made:
        drop_repository(engine, repository)


def references(engine, repository: str) -> list[str]:
    listed = engine.docker("images", "--digests", "--format", "{{.Repository}}:{{.Tag}}@{{.Digest}}", repository)
    return listed.stdout.decode().split()


def forget(engine, *refs: str) -> None:
    """Remove local references (so that a pull must really fetch)."""
    for ref in refs:
        engine.docker("image", "rm", ref, check=False)


def drop_repository(engine, repository: str) -> None:
    for line in references(engine, repository):
        name, _, digest = line.partition("@")
        forget(engine, name, f"{repository}@{digest}")


@pytest.fixture
def auth() -> dict[str, str]:
    password_file = os.environ.get("GPUENV_TEST_AUTH_REGISTRY_PASSWORD_FILE",
                                   "/var/lib/gpuenv-test/auth-registry/password")
    if not Path(password_file).is_file():
        pytest.fail("no registry with basic auth: run the tests through scripts/test (ensure_auth_registry)")
    return {"registry": os.environ.get("GPUENV_TEST_AUTH_REGISTRY", "127.0.0.1:5001"),
            "user": os.environ.get("GPUENV_TEST_AUTH_REGISTRY_USER", "gpuenv-test"),
            "password": Path(password_file).read_text().strip()}


def test_push_then_pull_after_removing_the_image_gives_the_same_image_and_content_tag(engine, repo, tiny, home,
                                                                                      tmp_path):
    target = repo(engine.registry, tiny["name"])
    pushed = run("push", tiny["image"], target, "--json", cwd=tmp_path, env=home)
    assert pushed.returncode == 0, pushed.stderr
    data = json.loads(pushed.stdout)
    assert data["reference"] == f"{target}:{tiny['tag']}"             # default tag: the content tag
    assert data["pinned"] == f"{target}@{data['digest']}" and data["digest"].startswith("sha256:")
    forget(engine, tiny["image"], data["reference"], data["pinned"])
    assert image_id(engine, tiny["id"]) == "", "the image must be gone before the pull"

    pulled = run("pull", data["reference"], "--json", cwd=tmp_path, env=home)
    assert pulled.returncode == 0, pulled.stderr
    back = json.loads(pulled.stdout)
    assert back["digest"] == data["digest"] and back["image_id"] == tiny["id"]
    assert back["tag"] == tiny["image"] and image_id(engine, tiny["image"]) == tiny["id"]
    assert back["user_mismatch"] is None
    human = run("pull", data["pinned"], cwd=tmp_path, env=home)       # by digest, said for a person
    assert human.returncode == 0 and data["pinned"] in human.stdout and tiny["image"] in human.stdout


LOCK = """# gpuenv.lock, as `gpuenv lock` writes it (the tables push and pull read)
version = 1
spec_sha256 = "{tag}"
made = "2026-01-01"
gpuenv = "0.0.0"

[plan]
python = "3.11"

[base]
image = "python:3.11-slim-bookworm"

[image]
tag = "{image}"
id = "{id}"
repo_digests = []

[[step]]
id = "frameworks"
requires = ["jax"]

[[step.package]]
name = "jax"
version = "0.4.30"
hashes = ["sha256:00"]
"""


def test_push_records_the_digest_in_the_lock_and_pull_without_ref_uses_it(engine, repo, tiny, home, tmp_path):
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "gpuenv.toml").write_text((ROOT / "examples/jax-cpu/gpuenv.toml").read_text())
    before = LOCK.format(**tiny)
    (folder / "gpuenv.lock").write_text(before)
    target = repo(engine.registry, tiny["name"])

    pushed = run("push", target, "--json", cwd=folder, env=home)      # no ENV: ./gpuenv.toml's, found by its lock
    assert pushed.returncode == 0, pushed.stderr
    data = json.loads(pushed.stdout)
    assert data["image"] == tiny["image"] and data["lock"]["state"] == "added"
    after = (folder / "gpuenv.lock").read_text()
    was, now = lockfile.from_data(tomllib.loads(before)), lockfile.read(folder / "gpuenv.lock")
    assert now.image.repo_digests == (data["pinned"],)        # that, and nothing else, changed
    assert dataclasses.replace(now, image=dataclasses.replace(now.image, repo_digests=())) == was
    again = run("push", target, "--json", cwd=folder, env=home)
    assert json.loads(again.stdout)["lock"]["state"] == "already there"
    assert (folder / "gpuenv.lock").read_text() == after

    forget(engine, tiny["image"], data["reference"], data["pinned"])
    pulled = run("pull", "--json", cwd=folder, env=home)              # no REF: the lock's digest
    assert pulled.returncode == 0, pulled.stderr
    back = json.loads(pulled.stdout)
    assert back["source"] == data["pinned"] and back["tag"] == tiny["image"]
    assert image_id(engine, tiny["image"]) == tiny["id"]


def test_a_lock_for_another_image_is_refused_on_pull_and_nothing_stays(engine, repo, tiny, home, tmp_path):
    target = repo(engine.registry, tiny["name"])
    data = json.loads(run("push", tiny["image"], target, "--json", cwd=tmp_path, env=home).stdout)
    forget(engine, tiny["image"], data["reference"], data["pinned"])
    lock = LOCK.format(**{**tiny, "id": "sha256:" + "0" * 64}).replace("repo_digests = []",
                                                                       f'repo_digests = ["{data["pinned"]}"]')
    (tmp_path / "gpuenv.lock").write_text(lock)
    pulled = run("pull", cwd=tmp_path, env=home)
    assert pulled.returncode == 1 and "gpuenv.lock expects sha256:000" in pulled.stderr
    assert image_id(engine, tiny["id"]) == "" and references(engine, target) == []


def test_an_image_built_for_another_uid_is_pulled_with_a_clear_note(engine, repo, tiny, home, tmp_path):
    target = repo(engine.registry, tiny["name"])
    data = json.loads(run("push", tiny["image"], target, "--json", cwd=tmp_path, env=home).stdout)
    stranger = {**home, "SUDO_UID": "1234", "SUDO_GID": "1234"}
    pulled = run("pull", data["reference"], "--json", cwd=tmp_path, env=stranger)
    assert pulled.returncode == 0
    assert json.loads(pulled.stdout)["user_mismatch"] == {"built_for": f"{UID}:{UID}", "you": "1234:1234"}
    assert f"built for UID:GID {UID}:{UID} and you are 1234:1234" in pulled.stderr


def test_a_pull_by_another_user_in_the_folder_makes_their_copy_and_up_builds_nothing(engine, repo, home, tmp_path):
    """The lock travels with the spec; a colleague with another UID pulls in that folder: gpuenv derives
    the image for them, offline, under the tag their `gpuenv build` / `up` plans, so nothing is built."""
    name = f"registry-rn-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "env"
    folder.mkdir()
    spec = (ROOT / "examples/jax-cpu/gpuenv.toml").read_text().replace('name = "jax-cpu"', f'name = "{name}"')
    (folder / "gpuenv.toml").write_text(spec)
    try:
        locked = run("lock", "--json", cwd=folder, env=home, timeout=1800)
        assert locked.returncode == 0, locked.stderr
        first = run("build", "--json", cwd=folder, env=home, timeout=1800)   # the lock is the resolution:
        assert first.returncode == 0, first.stderr                           # its first build adds the image
        image = tomllib.loads((folder / "gpuenv.lock").read_text())["image"]["tag"]
        assert json.loads(first.stdout)["image"] == image
        target = repo(engine.registry, name)
        pushed = run("push", target, "--json", cwd=folder, env=home)
        assert pushed.returncode == 0, pushed.stderr
        data = json.loads(pushed.stdout)
        forget(engine, image, data["reference"], data["pinned"])

        colleague = {**home, "SUDO_UID": "1234", "SUDO_GID": "1235"}
        pulled = run("pull", "--json", cwd=folder, env=colleague)       # by the lock's digest
        assert pulled.returncode == 0, pulled.stderr
        back = json.loads(pulled.stdout)
        assert back["user_mismatch"] == {"built_for": f"{UID}:{UID}", "you": "1234:1235"}
        mine = back["renumbered"]
        assert mine and mine.startswith(f"gpuenv-{name}:") and mine != image, pulled.stderr
        made = engine.docker("image", "inspect", mine).stdout.decode()
        info = json.loads(made)[0]
        assert info["Config"]["User"] == "1234:1235"
        assert info["Config"]["Labels"]["io.gpuenv.retargeted-from"] == back["image_id"]
        built = run("build", "--json", cwd=folder, env=colleague)
        assert built.returncode == 0, built.stderr
        assert json.loads(built.stdout)["built"] is False and json.loads(built.stdout)["image"] == mine
    finally:
        listed = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", f"gpuenv-{name}", check=False)
        tags = listed.stdout.decode().split()
        if tags:
            engine.docker("image", "rm", "--force", *tags, check=False)


def watch_process_list(needle: str, stop: threading.Event, seen: list[str]) -> None:
    """Every command line on this machine, read again and again while gpuenv runs."""
    while not stop.is_set():
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if needle.encode() in cmdline.read_bytes():
                    seen.append(str(cmdline))
            except OSError:
                pass
        time.sleep(0.01)


def test_with_auth_the_right_password_works_and_no_credential_stays_anywhere(engine, repo, tiny, home, auth, tmp_path):
    target = repo(auth["registry"], tiny["name"])
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_process_list, args=(auth["password"], stop, seen), daemon=True)
    watcher.start()
    try:
        process = gpuenv("push", tiny["image"], target, "--json", "--username", auth["user"], "--password-stdin",
                         cwd=tmp_path, env=home)
        pushed = finish(process, auth["password"] + "\n")
    finally:
        stop.set()
        watcher.join()
    assert pushed.returncode == 0, pushed.stderr
    data = json.loads(pushed.stdout)
    assert not seen, f"the password was on a command line: {seen}"

    token = base64.b64encode(f"{auth['user']}:{auth['password']}".encode())
    assert list(Path(home["TMPDIR"]).iterdir()) == [], "the temporary DOCKER_CONFIG must be gone"
    for place in (Path(home["HOME"]), Path.home() / ".docker"):
        for path in place.rglob("*") if place.exists() else ():
            if path.is_file():
                text = path.read_bytes()
                assert auth["password"].encode() not in text and token not in text, path
    saved = engine.docker("save", tiny["image"]).stdout
    assert tiny["tag"].encode() in saved and auth["password"].encode() not in saved and token not in saved

    forget(engine, tiny["image"], data["reference"], data["pinned"])
    pulled = run("pull", data["reference"], "--json", "-u", auth["user"], cwd=tmp_path,
                 env={**home, "GPUENV_REGISTRY_PASSWORD": auth["password"]})
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["image_id"] == tiny["id"] and image_id(engine, tiny["image"]) == tiny["id"]
    assert list(Path(home["TMPDIR"]).iterdir()) == []


def test_with_auth_a_wrong_or_missing_password_is_refused_and_leaves_nothing(engine, repo, tiny, home, auth, tmp_path):
    target = repo(auth["registry"], tiny["name"])
    wrong = run("push", tiny["image"], target, "-u", auth["user"], "--password-stdin", cwd=tmp_path, env=home,
                stdin="not-the-password")
    assert wrong.returncode == 1
    assert f"the registry {auth['registry']} refused the password of the user {auth['user']}" in wrong.stderr
    assert "not-the-password" not in wrong.stderr + wrong.stdout and "Traceback" not in wrong.stderr
    none = run("push", tiny["image"], target, cwd=tmp_path, env=home)
    assert none.returncode == 1 and f"the registry {auth['registry']} needs a login" in none.stderr
    assert "--password-stdin" in none.stderr
    pull = run("pull", f"{target}:{tiny['tag']}", "-u", auth["user"], cwd=tmp_path,
               env={**home, "GPUENV_REGISTRY_PASSWORD": "not-the-password"})
    assert pull.returncode == 1 and "refused the password" in pull.stderr
    assert references(engine, target) == [], "a failed push or pull leaves no tag"
    assert list(Path(home["TMPDIR"]).iterdir()) == []
    no_password = run("push", tiny["image"], target, "-u", auth["user"], cwd=tmp_path, env=home)
    assert no_password.returncode == 2 and "needs a password" in no_password.stderr


def test_no_such_tag_and_an_unknown_registry_are_said_clearly(engine, repo, home, tmp_path):
    missing = f"{engine.registry}/gpuenv-registry-test/none-{uuid.uuid4().hex[:8]}:0123456789ab"
    absent = run("pull", missing, cwd=tmp_path, env=home)
    assert absent.returncode == 1 and f"{missing} is not in the registry" in absent.stderr
    unknown = run("pull", "registry.gpuenv-test.invalid:5000/vision:1", cwd=tmp_path, env=home, timeout=300)
    assert unknown.returncode == 1 and "cannot reach the registry registry.gpuenv-test.invalid:5000" in unknown.stderr
    bad = run("pull", "vision:1", cwd=tmp_path, env=home)
    assert bad.returncode == 2 and "must start with the registry's host" in bad.stderr


class _PlainHttp(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def plain_http_registry(engine) -> Iterator[str]:
    """A server answering the registry API in plain HTTP on this host's own address: not loopback, so the
    engine (no insecure-registries entry for it) insists on TLS."""
    found = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    addresses = [line.split()[3].split("/")[0] for line in found.stdout.splitlines()]
    if not addresses:
        pytest.fail("this host has no IPv4 address besides loopback (ip -4 addr)")
    server = http.server.ThreadingHTTPServer((addresses[0], 0), _PlainHttp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{addresses[0]}:{server.server_address[1]}"
    server.shutdown()


def test_a_registry_the_engine_must_reach_over_tls_is_said_so_and_no_tag_stays(engine, repo, tiny, home,
                                                                                plain_http_registry, tmp_path):
    target = repo(plain_http_registry, tiny["name"])
    pushed = run("push", tiny["image"], target, cwd=tmp_path, env=home)
    assert pushed.returncode == 1, pushed.stdout
    assert f"the registry {plain_http_registry} answers plain HTTP" in pushed.stderr
    assert "insecure-registries" in pushed.stderr and references(engine, target) == []


def test_gpuenv_build_takes_its_base_from_the_registry_mirror_and_a_pulled_image_is_not_built_again(
        engine, repo, home, tmp_path):
    """The base jax-cpu plans (python:3.11-slim-bookworm) exists only in the local registry, under the
    name the mirror gives it; `gpuenv build` pulls it from there. The built image then goes to a
    registry and comes back: `gpuenv build` in the folder finds it and builds nothing."""
    from test_generate_build import DEBIAN_SOURCES, STANDIN_PYTHON, push_standin   # its stand-in base

    mirror = f"{engine.registry}/{engine.unique('registry-mirror')}"
    push_standin(engine, mirror, "library/python:3.11-slim-bookworm", STANDIN_PYTHON.format(base=engine.base_image),
                 {"debian.sources": DEBIAN_SOURCES})
    folder = tmp_path / "jax"
    folder.mkdir()
    spec = (ROOT / "examples/jax-cpu/gpuenv.toml").read_text().replace('name = "jax-cpu"', 'name = "registry-jax"')
    (folder / "gpuenv.toml").write_text(spec + f'\n[network]\nregistry_mirror = "{mirror}"\n')

    built = run("build", "--json", cwd=folder, env=home, timeout=1800)
    data = json.loads(built.stdout) if built.stdout.startswith("{") else {}
    if data.get("image"):
        engine.track_image(data["image"])
    assert built.returncode == 0, built.stderr[-3000:]
    assert data["built"] is True and data["base"] == f"{mirror}/library/python:3.11-slim-bookworm"
    assert f"pulling {mirror}/library/python:3.11-slim-bookworm" in built.stderr

    target = repo(engine.registry, "registry-jax")
    pushed = run("push", target, "--json", cwd=folder, env=home)      # ./gpuenv.toml's image (its .env names it)
    assert pushed.returncode == 0, pushed.stderr
    sent = json.loads(pushed.stdout)
    assert sent["image"] == data["image"]
    image = image_id(engine, data["image"])
    forget(engine, data["image"], sent["reference"], sent["pinned"])
    assert image_id(engine, data["image"]) == ""
    pulled = run("pull", sent["reference"], "--json", cwd=folder, env=home)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["tag"] == data["image"] and image_id(engine, data["image"]) == image
    again = run("build", "--json", cwd=folder, env=home, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["built"] is False and json.loads(again.stdout)["image"] == data["image"]
