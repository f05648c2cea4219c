"""build/bootstrap.py without an engine or a network: the release table, the names, the image's APT sources
(and that the Dockerfile's APT_MIRROR edit finds them), which tool runs, the command lines and the clean-up
script, and failures that leave nothing behind (fake mmdebstrap, debootstrap and docker on PATH)."""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from gpuenv.images import bootstrap
from gpuenv.errors import EngineError, GpuenvError
from gpuenv.kb import load_table
from gpuenv.render.recipe import os_release

ROOT = Path(__file__).resolve().parents[3]
UNANSWERED = bootstrap._unanswered
GOLDEN = ROOT / "tests" / "golden" / "generate"


def rel(os_name: str) -> bootstrap.OsRelease:
    found = bootstrap.release(os_name)
    assert found is not None, os_name
    return found


# ---- the table

def os_names_gpuenv_writes() -> set[str]:
    bases = load_table("bases")
    names = {r["os"] for r in bases["python_image"]} | {r["os"] for r in bases["os_python"]}
    return names | {r["os"] for r in load_table("cuda_images")["image"]}


def test_every_os_gpuenv_writes_has_a_row():
    missing = sorted(name for name in os_names_gpuenv_writes() if bootstrap.release(name) is None)
    assert not missing


@pytest.mark.parametrize("row", load_table("bases")["os_python"], ids=lambda r: r["os"])
def test_python_agrees_with_bases_os_python(row):
    assert rel(row["os"]).python == row["python"]


@pytest.mark.parametrize("found", bootstrap.releases(), ids=lambda r: r.os)
def test_row_is_consistent(found):
    family, version = os_release(found.os)
    assert found.family == family and found.os == f"{family}{found.version}"
    assert found.deb822 == (version >= (12,) if family == "debian" else version >= (24, 4))
    assert re.fullmatch(r"3\.\d+", found.python)
    assert found.security_suite in (f"{found.codename}-security", f"{found.codename}/updates")
    assert found.tools and set(found.tools) <= {"mmdebstrap", "debootstrap"} and "debootstrap" in found.tools
    assert found.keyrings[0] == f"/usr/share/keyrings/{family}-archive-keyring.gpg"
    assert found.keyring_package == {"debian": "debian-archive-keyring", "ubuntu": "ubuntu-keyring"}[family]
    if family == "debian":
        assert found.components == ("main",)
        archive = "http://archive.debian.org" if found.archived else "http://deb.debian.org"
        assert (found.mirror, found.security_mirror) == (f"{archive}/debian", f"{archive}/debian-security")
    else:
        assert found.components == ("main", "restricted", "universe", "multiverse")
        if found.archived:
            assert found.mirror == found.security_mirror == "http://old-releases.ubuntu.com/ubuntu"
        else:
            assert (found.mirror, found.security_mirror) == ("http://archive.ubuntu.com/ubuntu",
                                                            "http://security.ubuntu.com/ubuntu")


def test_codenames_and_tags_are_unique():
    tags = [bootstrap.local_tag(r.os) for r in bootstrap.releases()]
    assert len(set(tags)) == len(tags)


# ---- names

def test_local_tag():
    assert bootstrap.local_tag("debian12") == "gpuenv-base/debian:bookworm"
    assert bootstrap.local_tag("debian11") == "gpuenv-base/debian:bullseye"
    assert bootstrap.local_tag("ubuntu22.04") == "gpuenv-base/ubuntu:jammy"
    assert bootstrap.local_tag("ubuntu16.04") == "gpuenv-base/ubuntu:xenial"


@pytest.mark.parametrize("name", ["(unknown)", "ubi8", "rockylinux9", "debian9"])
def test_unknown_os_says_which_can_be_built(name):
    assert bootstrap.release(name) is None
    with pytest.raises(GpuenvError) as caught:
        bootstrap.local_tag(name)
    assert name in caught.value.message and "debian12" in caught.value.message and "ubuntu22.04" in caught.value.message
    with pytest.raises(GpuenvError, match="debian12"):
        bootstrap.bootstrap(["docker"], name, None, "x")


# ---- the image's APT sources

BOOKWORM = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

BULLSEYE = """\
deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian bullseye-updates main
deb http://deb.debian.org/debian-security bullseye-security main
"""

JAMMY = """\
deb http://archive.ubuntu.com/ubuntu jammy main restricted universe multiverse
deb http://archive.ubuntu.com/ubuntu jammy-updates main restricted universe multiverse
deb http://security.ubuntu.com/ubuntu jammy-security main restricted universe multiverse
"""

NOBLE = """\
Types: deb
URIs: http://archive.ubuntu.com/ubuntu
Suites: noble noble-updates
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.ubuntu.com/ubuntu
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""


@pytest.mark.parametrize("name, text, path", [
    ("debian12", BOOKWORM, "/etc/apt/sources.list.d/debian.sources"),
    ("debian11", BULLSEYE, "/etc/apt/sources.list"),
    ("ubuntu22.04", JAMMY, "/etc/apt/sources.list"),
    ("ubuntu24.04", NOBLE, "/etc/apt/sources.list.d/ubuntu.sources"),
])
def test_sources_as_the_official_image_has_them(name, text, path):
    found = rel(name)
    assert bootstrap.sources_text(found, bootstrap.apt_sources(found)) == text
    assert found.sources_path == path


def test_buster_security_suite_has_the_old_layout():
    found = rel("debian10")
    assert "deb http://archive.debian.org/debian-security buster/updates main\n" in \
        bootstrap.sources_text(found, bootstrap.apt_sources(found))


@pytest.mark.parametrize("mirror", ["http://mirrors.aliyun.com", "http://mirrors.aliyun.com/",
                                    "http://mirrors.aliyun.com/debian", "http://mirrors.aliyun.com/debian/"])
def test_a_debian_mirror_given_either_way(mirror):
    found = rel("debian12")
    assert bootstrap.archive_url(found, mirror) == "http://mirrors.aliyun.com/debian"
    text = bootstrap.sources_text(found, bootstrap.apt_sources(found, mirror))
    assert text == BOOKWORM.replace("http://deb.debian.org", "http://mirrors.aliyun.com")


def test_an_ubuntu_mirror_serves_every_suite():
    found = rel("ubuntu22.04")
    sources = bootstrap.apt_sources(found, "http://mirrors.aliyun.com")
    assert sources == (bootstrap.AptSource("http://mirrors.aliyun.com/ubuntu",
                                           ("jammy", "jammy-updates", "jammy-security"), found.components),)


def test_the_default_archive_named_as_a_mirror_is_the_default():
    found = rel("debian12")
    assert bootstrap.apt_sources(found, "http://deb.debian.org") == bootstrap.apt_sources(found)


def test_suites_the_mirror_lacks_are_left_out():
    found = rel("debian12")
    missing = frozenset({("http://deb.debian.org/debian-security", "bookworm-security"),
                         ("http://deb.debian.org/debian", "bookworm-updates")})
    text = bootstrap.sources_text(found, bootstrap.apt_sources(found, None, missing))
    assert text == ("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n"
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def golden_apt_edit(example: str) -> tuple[str, str]:
    """The file and the sed expression of the `system` stage's APT_MIRROR edit in a generated Dockerfile."""
    text = (GOLDEN / example / "Dockerfile").read_text()
    found = re.search(r'\[ ! -f (\S+) \] \|\| sed -Ei "([^"]+)"', text)
    assert found, f"no APT_MIRROR edit in the {example} golden Dockerfile"
    return found.group(1), found.group(2)


@pytest.mark.parametrize("example, name", [("jax-cpu", "debian12"), ("mxnet-cu90", "ubuntu16.04")])
def test_the_dockerfiles_apt_mirror_edit_rewrites_every_source(example, name):
    path, expression = golden_apt_edit(example)
    found = rel(name)
    assert path == found.sources_path
    text = bootstrap.sources_text(found, bootstrap.apt_sources(found))
    edited = subprocess.run(["sh", "-c", f'sed -E "{expression}"'], input=text, capture_output=True, text=True,
                            # the Dockerfile's `mirror`: APT_MIRROR without its last slash, sed's specials escaped
                            env={"mirror": "http://mirror.example", "PATH": "/usr/bin:/bin"}, check=True).stdout
    uris = re.findall(r"(?:URIs: |deb )(\S+)", edited)
    assert uris and all(u.startswith(f"http://mirror.example/{found.family}") for u in uris), edited


# ---- the clean-up script

def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for name in ("etc/resolv.conf", "etc/hostname", "etc/apt/sources.list",
                 "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "var/lib/apt/lists/lock",
                 "var/cache/apt/pkgcache.bin", "var/cache/apt/archives/bash_5.2_amd64.deb"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("host\n")
    (root / "var/lib/apt/lists/partial").mkdir()
    return root


@pytest.mark.parametrize("name", ["debian12", "debian11", "debian10"])
def test_finish_script_leaves_the_sources_file_alone_and_apt_empty(tmp_path, name):
    found = rel(name)
    root = fake_root(tmp_path)
    text = bootstrap.sources_text(found, bootstrap.apt_sources(found)) + "# 100% \\ 'quoted' $HOME\n"
    script = bootstrap.finish_script(found, text)
    assert "\n" not in script
    subprocess.run(["sh", "-c", script, "sh", str(root)], check=True)
    assert (root / found.sources_path.lstrip("/")).read_text() == text
    assert sorted(p.name for p in (root / "etc/apt").rglob("*") if p.is_file()) == \
        sorted([Path(found.sources_path).name] + (["99gpuenv-archived"] if found.archived else []))
    assert not (root / "etc/resolv.conf").exists() and not (root / "etc/hostname").exists()
    assert sorted(p.name for p in (root / "var/lib/apt/lists").iterdir()) == ["lock", "partial"]
    assert [p.name for p in (root / "var/cache/apt").rglob("*")] == ["archives"]
    if found.archived:
        assert (root / "etc/apt/apt.conf.d/99gpuenv-archived").read_text() == 'Acquire::Check-Valid-Until "false";\n'


# ---- which tool

def fake_tools(folder: Path, *names: str, unshare_rc: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        script = folder / name
        script.write_text(f'#!/bin/sh\n[ "$1" = --unshare-helper ] && exit {unshare_rc}\nexit 0\n')
        script.chmod(0o755)


def as_user(monkeypatch, uid: int) -> None:
    monkeypatch.setattr(bootstrap.os, "geteuid", lambda: uid)


def test_no_tool_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 0)
    assert bootstrap.tool() is None and bootstrap.tool("debian12") is None
    assert "`apt-get install mmdebstrap`" in bootstrap.missing_tool_hint()
    as_user(monkeypatch, 1000)
    hint = bootstrap.missing_tool_hint()
    assert "`sudo apt-get install mmdebstrap`" in hint and "/etc/subuid" in hint and "uidmap" in hint


def test_no_tool_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap(["docker"], "debian12", None, "x")
    assert "mmdebstrap or debootstrap" in caught.value.message and "apt-get install" in caught.value.hint


def test_root_prefers_mmdebstrap(tmp_path, monkeypatch):
    fake_tools(tmp_path, "mmdebstrap", "debootstrap")
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 0)
    assert bootstrap.tool() == bootstrap.Tool("mmdebstrap", str(tmp_path / "mmdebstrap"), "root")
    assert bootstrap.tool("debian12").name == "mmdebstrap"


def test_a_release_mmdebstrap_cannot_build_takes_debootstrap(tmp_path, monkeypatch):
    fake_tools(tmp_path, "mmdebstrap", "debootstrap")
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 0)
    assert bootstrap.tool("ubuntu16.04") == bootstrap.Tool("debootstrap", str(tmp_path / "debootstrap"), "root")
    (tmp_path / "debootstrap").unlink()
    assert bootstrap.tool("ubuntu16.04") is None
    assert "debootstrap, as root" in bootstrap.missing_tool_hint("ubuntu16.04")


def test_root_with_debootstrap_only(tmp_path, monkeypatch):
    fake_tools(tmp_path, "debootstrap")
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 0)
    assert bootstrap.tool() == bootstrap.Tool("debootstrap", str(tmp_path / "debootstrap"), "root")


def test_a_user_gets_mmdebstrap_in_a_user_namespace(tmp_path, monkeypatch):
    fake_tools(tmp_path, "mmdebstrap", "debootstrap", unshare_rc=0)
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 1000)
    assert bootstrap.tool() == bootstrap.Tool("mmdebstrap", str(tmp_path / "mmdebstrap"), "unshare")


def test_a_user_without_user_namespaces_gets_none(tmp_path, monkeypatch):
    fake_tools(tmp_path, "mmdebstrap", "debootstrap", unshare_rc=25)   # no /etc/subuid range: mmdebstrap's 25
    monkeypatch.setenv("PATH", str(tmp_path))
    as_user(monkeypatch, 1000)
    assert bootstrap.tool() is None                                      # debootstrap needs root


def test_missing_keyring_names_the_package():
    found = replace(rel("ubuntu22.04"), keyrings=("/nonexistent/ubuntu-archive-keyring.gpg",))
    with pytest.raises(GpuenvError) as caught:
        bootstrap.host_keyrings(found)
    assert "/nonexistent/ubuntu-archive-keyring.gpg" in caught.value.message
    assert "apt-get install ubuntu-keyring" in caught.value.hint and "bookworm-backports" in caught.value.hint


def test_only_keyrings_the_host_has(tmp_path):
    present = tmp_path / "a.gpg"
    present.write_bytes(b"")
    found = replace(rel("debian10"), keyrings=(str(tmp_path / "missing.gpg"), str(present)))
    assert bootstrap.host_keyrings(found) == (str(present),)


# ---- command lines

MM = bootstrap.Tool("mmdebstrap", "/usr/bin/mmdebstrap", "unshare")
DB = bootstrap.Tool("debootstrap", "/usr/sbin/debootstrap", "root")


def test_mmdebstrap_streams_a_minbase_tarball_of_every_suite():
    found = rel("debian12")
    argv = bootstrap.mmdebstrap_argv(MM, found, bootstrap.apt_sources(found), [found.keyrings[0]], "true")
    assert argv[0] == MM.path and {"--variant=minbase", "--include=apt", "--format=tar", "--mode=unshare",
                                   "--customize-hook=true"} <= set(argv)
    signed = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    assert argv[argv.index("bookworm"):] == [
        "bookworm", "-",
        f"deb {signed} http://deb.debian.org/debian bookworm main",
        f"deb {signed} http://deb.debian.org/debian bookworm-updates main",
        f"deb {signed} http://deb.debian.org/debian-security bookworm-security main",
    ]
    assert not any(a.startswith("--aptopt") for a in argv)


def test_mmdebstrap_of_an_archived_release_ignores_valid_until():
    found = rel("debian10")
    argv = bootstrap.mmdebstrap_argv(MM, found, bootstrap.apt_sources(found), list(found.keyrings), "true")
    assert '--aptopt=Acquire::Check-Valid-Until "false";' in argv
    assert any(a.startswith("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg,") for a in argv)


def test_mmdebstrap_leaves_ubuntu_to_merge_usr_itself():
    found = rel("ubuntu24.04")
    argv = bootstrap.mmdebstrap_argv(MM, found, bootstrap.apt_sources(found), [found.keyrings[0]], "true")
    assert not any(a.startswith("--hook-dir") for a in argv)


def test_debootstrap_takes_the_family_script_for_a_codename_it_lacks(tmp_path, monkeypatch):
    (tmp_path / "bookworm").write_text("")
    monkeypatch.setattr(bootstrap, "_DEBOOTSTRAP_SCRIPTS", tmp_path)
    found = rel("debian12")
    assert bootstrap.debootstrap_argv(DB, found, found.mirror, found.keyrings[0], "/t") == [
        DB.path, "--variant=minbase", f"--keyring={found.keyrings[0]}", "--components=main",
        "bookworm", "/t", "http://deb.debian.org/debian"]
    argv = bootstrap.debootstrap_argv(DB, rel("ubuntu26.04"), "http://archive.ubuntu.com/ubuntu", "/k.gpg", "/t")
    assert argv[-4:] == ["resolute", "/t", "http://archive.ubuntu.com/ubuntu", str(tmp_path / "gutsy")]
    assert argv[3] == "--components=main,restricted,universe,multiverse"


# ---- bootstrap() with fake tools: what it runs, and what it leaves behind

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$FAKE_STATE/docker.log"
case "$1" in
  import) cat > "$FAKE_STATE/imported.tar"; [ -n "$FAKE_IMPORT_FAILS" ] && { echo "no space" >&2; exit 1; }
          echo sha256:feedface ;;
  image) case "$*" in *Size*) echo 116238520 ;; *) exit 1 ;; esac ;;
  images) echo sha256:feedface ;;
esac
exit 0
"""

FAKE_MMDEBSTRAP = """#!/bin/sh
echo "I: running apt-get update..." >&2
[ -n "$FAKE_TOOL_FAILS" ] && { echo "E: Release file not signed" >&2; echo "E: mmdebstrap failed to run" >&2; exit 25; }
mkdir -p "$FAKE_STATE/tree/etc" && echo bookworm > "$FAKE_STATE/tree/etc/debian_version"
tar -C "$FAKE_STATE/tree" -cf - .
"""

FAKE_DEBOOTSTRAP = """#!/bin/sh
for arg; do case "$arg" in *gpuenv-rootfs-*) target="$arg" ;; esac; done
mkdir -p "$target/debootstrap" "$target/etc"
echo "$target" > "$FAKE_STATE/target"
echo "I: Retrieving Packages" && echo "I: Validating bash" && echo "I: Base system installed successfully."
[ -n "$FAKE_TOOL_FAILS" ] && { echo "dpkg: error processing package systemd" > "$target/debootstrap/debootstrap.log";
  echo "W: Failure while configuring base packages." >&2; exit 1; }
exit 0
"""


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """Fake docker and bootstrappers on PATH, a mirror that answers, temporary folders under tmp_path."""
    bin_dir, state, scratch = tmp_path / "bin", tmp_path / "state", tmp_path / "tmp"
    for folder in (bin_dir, state, scratch):
        folder.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("mmdebstrap", FAKE_MMDEBSTRAP), ("debootstrap", FAKE_DEBOOTSTRAP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setattr(bootstrap, "_unanswered", lambda uri, suite: None)
    monkeypatch.setattr(bootstrap, "host_keyrings", lambda found: found.keyrings[:1])
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return {"docker": [str(bin_dir / "docker")], "state": state, "scratch": scratch,
            "mm": bootstrap.Tool("mmdebstrap", str(bin_dir / "mmdebstrap"), "root"),
            "db": bootstrap.Tool("debootstrap", str(bin_dir / "debootstrap"), "root")}


def docker_calls(fakes) -> list[str]:
    log = fakes["state"] / "docker.log"
    return log.read_text().splitlines() if log.exists() else []


def test_mmdebstrap_streams_into_docker_import(fakes):
    lines: list[str] = []
    made = bootstrap.bootstrap(fakes["docker"], "debian12", None, "gpuenv-base/debian:bookworm", lines.append,
                               using=fakes["mm"])
    assert (made.tag, made.os, made.mirror, made.size, made.tool, made.image_id) == (
        "gpuenv-base/debian:bookworm", "debian12", "http://deb.debian.org/debian", 116238520, "mmdebstrap",
        "sha256:feedface")
    calls = docker_calls(fakes)
    imported = next(c for c in calls if c.startswith("import"))
    for change in ("--change=ENV LANG=C.UTF-8", '--change=CMD ["bash"]', 'io.gpuenv.base-os="debian12"',
                   'io.gpuenv.base-mirror="http://deb.debian.org/debian"', 'io.gpuenv.base-tool="mmdebstrap"'):
        assert change in imported
    assert re.search(r'io\.gpuenv\.base-built="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', imported)
    assert "tag sha256:feedface gpuenv-base/debian:bookworm" in calls
    with tarfile.open(fakes["state"] / "imported.tar") as tar:
        assert "./etc/debian_version" in tar.getnames()
    assert "I: running apt-get update..." in lines


def test_a_failing_tool_says_its_last_lines_and_leaves_no_image(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_TOOL_FAILS", "1")
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap(fakes["docker"], "debian12", None, "gpuenv-base/debian:bookworm", using=fakes["mm"])
    assert "mmdebstrap failed (exit 25)" in caught.value.message
    assert "E: Release file not signed" in caught.value.message and "network.apt_mirror" in caught.value.hint
    calls = docker_calls(fakes)
    assert not any(c.startswith("tag") for c in calls)
    assert any(c.startswith("images --quiet --no-trunc --filter label=io.gpuenv.base-os=debian12 --filter "
                            "label=io.gpuenv.base-built=") for c in calls)
    assert "image rm --force sha256:feedface" in calls


def test_a_failing_import_is_an_engine_error(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_IMPORT_FAILS", "1")
    with pytest.raises(EngineError, match="no space"):
        bootstrap.bootstrap(fakes["docker"], "debian12", None, "t", using=fakes["mm"])
    assert not any(c.startswith("tag") for c in docker_calls(fakes))


def test_debootstrap_builds_in_a_temporary_folder_it_removes(fakes):
    made = bootstrap.bootstrap(fakes["docker"], "debian12", None, "t", using=fakes["db"])
    assert made.tool == "debootstrap"
    target = Path((fakes["state"] / "target").read_text().strip())
    assert target.parent == fakes["scratch"] and not target.exists()
    with tarfile.open(fakes["state"] / "imported.tar") as tar:
        assert "./etc/apt/sources.list.d/debian.sources" in tar.getnames()


def test_a_failing_debootstrap_shows_its_log_and_removes_the_folder(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_TOOL_FAILS", "1")
    lines: list[str] = []
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap(fakes["docker"], "debian12", None, "t", lines.append, using=fakes["db"])
    assert "W: Failure while configuring base packages." in caught.value.message
    assert "dpkg: error processing package systemd" in caught.value.message   # from debootstrap.log
    assert "I: Base system installed successfully." in lines and "I: Validating bash" not in lines
    assert list(fakes["scratch"].iterdir()) == []
    assert not any(c.startswith(("import", "tag")) for c in docker_calls(fakes))


def test_ctrl_c_removes_the_temporary_folder_and_the_image(fakes, monkeypatch):
    def interrupted(argv, log, name, noise=None):
        Path(next(a for a in argv if "gpuenv-rootfs-" in a), "etc").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(bootstrap, "_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bootstrap.bootstrap(fakes["docker"], "debian12", None, "t", using=fakes["db"])
    assert list(fakes["scratch"].iterdir()) == []
    assert any(c.startswith("images --quiet") for c in docker_calls(fakes))


def test_a_mirror_that_does_not_answer_fails_before_anything_runs(fakes, monkeypatch):
    monkeypatch.setattr(bootstrap, "_unanswered", UNANSWERED)   # the real check: nothing listens on port 9
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap(fakes["docker"], "debian12", "http://127.0.0.1:9/debian", "t", using=fakes["mm"])
    assert "http://127.0.0.1:9/debian does not serve debian12 (bookworm)" in caught.value.message
    assert "network.apt_mirror" in caught.value.hint
    assert docker_calls(fakes) == []


def test_an_archived_release_says_where_it_went(monkeypatch):
    monkeypatch.setattr(bootstrap, "_unanswered", lambda uri, suite: f"HTTP 404 for {uri}/dists/{suite}/InRelease")
    monkeypatch.setattr(bootstrap, "host_keyrings", lambda found: found.keyrings[:1])
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap(["docker"], "debian10", "http://mirrors.aliyun.com", "t", using=MM)
    assert "http://mirrors.aliyun.com/debian does not serve debian10 (buster): HTTP 404" in caught.value.message
    assert "archived" in caught.value.hint and "http://archive.debian.org/debian" in caught.value.hint


def test_missing_optional_suites_are_logged_and_left_out(fakes, monkeypatch):
    monkeypatch.setattr(bootstrap, "_unanswered",
                        lambda uri, suite: "HTTP 404" if suite.endswith("-security") else None)
    lines: list[str] = []
    bootstrap.bootstrap(fakes["docker"], "debian12", "http://mirror.example", "t", lines.append, using=fakes["db"])
    assert "http://mirror.example/debian-security does not serve bookworm-security: left out of the image's APT " \
           "sources" in lines
    with tarfile.open(fakes["state"] / "imported.tar") as tar:
        text = tar.extractfile("./etc/apt/sources.list.d/debian.sources").read().decode()
    assert "security" not in text and "URIs: http://mirror.example/debian\n" in text
