"""gpuenv's own base image, built for real on the engine here from the Debian archive, with each tool.

Debian 12 (bookworm) is bootstrapped from $GPUENV_DEBIAN_MIRROR (default http://deb.debian.org/debian)
once with mmdebstrap and once with debootstrap (scripts/setup.sh installs both; about 25 and 35 s), and
the image is checked as gpuenv's Dockerfile meets it: the release, its APT sources in the one file the
`system` stage's APT_MIRROR edit rewrites (taken from a golden Dockerfile and run inside), apt working
through them with the planned python3, the config of an official image, no host file or apt list in its
layer. Failures: a mirror that does not answer, and a mirror that answers with an archive whose Release
file is not signed (each tool fails for real); neither leaves an image, a tag or a temporary folder.
Ubuntu is not built here: this machine reaches Debian's archive only (tests/unit/build covers its sources).
"""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Iterator

import pytest

from gpuenv.images import bootstrap
from gpuenv.errors import GpuenvError

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("GPUENV_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")
TOOLS = ("mmdebstrap", "debootstrap")


def the_tool(name: str) -> bootstrap.Tool:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/setup.sh installs it (apt-get install {name})")
    if os.geteuid() != 0:
        pytest.fail("building a base with either tool runs as root here (run the tests through scripts/test)")
    return bootstrap.Tool(name, path, "root")


@pytest.fixture(scope="module", params=TOOLS)
def built(request, module_engine) -> Iterator[tuple[bootstrap.BaseImage, object]]:
    tag = module_engine.track_image(f"{module_engine.unique('bootstrap-' + request.param)}:bookworm")
    lines: list[str] = []
    made = bootstrap.bootstrap([module_engine.client], "debian12", MIRROR, tag, lines.append,
                               using=the_tool(request.param))
    print(f"\n{made.tool}: {made.os} in {made.seconds} s, {made.size / 1e6:.1f} MB")
    yield made, module_engine


def run(engine, tag: str, script: str, *options: str) -> str:
    return engine.docker("run", "--rm", *options, tag, "sh", "-c", script).stdout.decode()


def test_it_is_bookworm(built):
    made, engine = built
    assert (made.os, made.mirror) == ("debian12", MIRROR)
    assert "VERSION_CODENAME=bookworm" in run(engine, made.tag, "cat /etc/os-release")


def test_apt_sources_are_the_official_images_file(built):
    made, engine = built
    files = run(engine, made.tag, "ls /etc/apt/sources.list.d; [ ! -e /etc/apt/sources.list ] || echo sources.list")
    assert files.split() == ["debian.sources"]
    text = run(engine, made.tag, "cat /etc/apt/sources.list.d/debian.sources")
    assert f"URIs: {MIRROR}\nSuites: bookworm bookworm-updates\n" in text
    assert "Suites: bookworm-security\n" in text
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" in text


def test_apt_works_inside_and_offers_the_planned_python(built):
    made, engine = built
    out = run(engine, made.tag, "apt-get update -qq && apt-cache policy python3 | sed -n 's/ *Candidate: //p'")
    assert out.strip().startswith(bootstrap.release("debian12").python + "."), out


def test_the_dockerfiles_apt_mirror_edit_rewrites_it(built):
    made, engine = built
    golden = (ROOT / "tests/golden/generate/jax-cpu/Dockerfile").read_text()
    edit = re.search(r'RUN (if \[ -n "\$APT_MIRROR" \]; then .*?; fi)', golden)
    assert edit, "no APT_MIRROR edit in the jax-cpu golden Dockerfile"
    text = run(engine, made.tag, f"{edit.group(1)} && cat /etc/apt/sources.list.d/debian.sources",
               "-e", "APT_MIRROR=http://mirror.example")
    uris = re.findall(r"URIs: (\S+)", text)
    if MIRROR == "http://deb.debian.org/debian":
        assert uris == ["http://mirror.example/debian", "http://mirror.example/debian-security"]
    else:   # a mirror of the user's own is written as such, and the edit leaves it
        assert uris[0] == MIRROR


def test_config_as_an_official_image_with_gpuenv_labels(built):
    made, engine = built
    config = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config}}", made.tag).stdout)
    assert config["Cmd"] == ["bash"] and "LANG=C.UTF-8" in config["Env"]
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in config["Env"])
    labels = config["Labels"]
    assert labels["io.gpuenv.base-os"] == "debian12" and labels["io.gpuenv.base-mirror"] == MIRROR
    assert labels["io.gpuenv.base-tool"] == made.tool
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["io.gpuenv.base-built"])
    assert run(engine, made.tag, "echo $LANG").strip() == "C.UTF-8"


def layer_names(engine, tag: str) -> set[str]:
    """Every path in the image's one layer, read from `docker save` as it streams."""
    save = subprocess.Popen([engine.client, "save", tag], stdout=subprocess.PIPE)
    names: set[str] = set()
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
        for member in outer:
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as layer:
                    names |= {m.name.lstrip("./") for m in layer}
    save.wait()
    return names


def test_small_and_without_host_files_or_apt_lists(built):
    made, engine = built
    assert 60e6 < made.size < 140e6, made.size      # minbase bookworm: about 117 MB, as debian:bookworm
    names = layer_names(engine, made.tag)
    assert "usr/bin/apt-get" in names and "etc/apt/sources.list.d/debian.sources" in names
    assert not {"etc/hostname", "etc/resolv.conf", "etc/apt/sources.list"} & names
    assert not [n for n in names if n.startswith("var/lib/apt/lists/") and "_" in n]
    assert not [n for n in names if n.startswith("var/cache/apt/") and n.endswith((".bin", ".deb"))]
    assert "var/lib/dpkg/info/usr-is-merged.list" in names    # not usrmerge, which brings all of perl
    assert "var/lib/dpkg/info/usrmerge.list" not in names


# ---- failures leave nothing behind

def nothing_left(engine, tag: str, mirror: str, before: set[str]) -> None:
    assert engine.docker("image", "inspect", tag, check=False).returncode != 0
    listed = engine.docker("images", "--quiet", "--filter", f"label=io.gpuenv.base-mirror={mirror}").stdout
    assert listed.decode().split() == []
    assert leftovers() <= before


def leftovers() -> set[str]:
    return set(glob.glob("/tmp/gpuenv-rootfs-*") + glob.glob("/tmp/mmdebstrap.*"))


@pytest.mark.parametrize("name", TOOLS)
def test_a_mirror_that_does_not_answer(engine, name):
    tag, before = engine.track_image(f"{engine.unique('bootstrap-bad')}:bookworm"), leftovers()
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap([engine.client], "debian12", "http://127.0.0.1:9/debian", tag, using=the_tool(name))
    assert "http://127.0.0.1:9/debian does not serve debian12 (bookworm)" in caught.value.message
    nothing_left(engine, tag, "http://127.0.0.1:9/debian", before)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def unsigned_archive(tmp_path) -> Iterator[str]:
    """An archive that answers, with a bookworm Release file no key signed."""
    dists = tmp_path / "debian" / "dists" / "bookworm"
    dists.mkdir(parents=True)
    (dists / "InRelease").write_text("Origin: Debian\nSuite: stable\nCodename: bookworm\nComponents: main\n")
    (dists / "Release").write_text("Origin: Debian\nSuite: stable\nCodename: bookworm\nComponents: main\n")
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", TOOLS)
def test_a_tool_that_fails_says_why_and_leaves_nothing(engine, unsigned_archive, name):
    tag, before = engine.track_image(f"{engine.unique('bootstrap-unsigned')}:bookworm"), leftovers()
    lines: list[str] = []
    with pytest.raises(GpuenvError) as caught:
        bootstrap.bootstrap([engine.client], "debian12", unsigned_archive, tag, lines.append, using=the_tool(name))
    message = caught.value.message
    assert f"{name} failed" in message and "last lines" in message
    assert re.search(r"sign|Release|GPG|gpgv", message), message
    assert any("bookworm-updates: left out" in line for line in lines)
    nothing_left(engine, tag, unsigned_archive, before)
