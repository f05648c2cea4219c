"""bases.toml and wheel_routes.toml against the upstream text they were read from (tests/fixtures/kb/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpuenv.kb import load_table
from gpuenv.resolve.versions import matches

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb"


def _folders() -> set[str]:
    text = (FIXTURES / "bases" / "docker-library-python.md").read_text()
    return {line.split()[0].rsplit("/", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def _folder_of(image: str) -> set[str]:
    """python:3.6-slim-bullseye is built from 3.6/bullseye/slim (older layout) or 3.6/slim-bullseye."""
    python, variant = re.fullmatch(r"python:(\d\.\d+)-slim-(\w+)", image).groups()
    return {f"{python}/{variant}/slim", f"{python}/slim-{variant}"}


@pytest.mark.parametrize("row", load_table("bases")["python_image"], ids=lambda r: r["python"])
def test_every_slim_image_has_its_dockerfile_upstream(row):
    assert _folder_of(row["image"]) & _folders(), row["image"]
    assert row["image"].startswith(f"python:{row['python']}-")
    debian = {"buster": "debian10", "bullseye": "debian11", "bookworm": "debian12"}
    assert row["os"] == debian[row["image"].rsplit("-", 1)[1]]


def test_every_excerpt_folder_is_a_row():
    images = {f for row in load_table("bases")["python_image"] for f in _folder_of(row["image"])}
    assert _folders() <= images


def test_os_python_rows_agree_with_the_ubuntu_statements():
    text = (FIXTURES / "bases" / "ubuntu-python.md").read_text()
    stated = dict(re.findall(r"^(ubuntu\d+\.\d+): (\d\.\d+)$", text, re.M))
    rows = {r["os"]: r for r in load_table("bases")["os_python"]}
    assert stated and all(rows[os_]["python"] == python for os_, python in stated.items())
    unverified = {os_ for os_, r in rows.items() if os_ not in stated}
    assert all("not yet checked" in rows[os_]["note"] for os_ in unverified)


def _install_lines() -> list[tuple[str, str, str, str]]:
    """(version, cuda variant, kind, url) of every CUDA install line of the previous-versions excerpt."""
    out, version = [], None
    for line in (FIXTURES / "pytorch" / "previous-versions.md").read_text().splitlines():
        head = re.match(r"### v(\S+)", line)
        if head:
            version = head.group(1)
            continue
        pip = re.match(r"pip install torch==(\S+?)(?:\+(cu\d+))? .*?(-f|--extra-index-url|--index-url) +(\S+)", line)
        if pip and pip.group(2):
            out.append((pip.group(1), pip.group(2), pip.group(3), pip.group(4)))
        elif pip and "/cu" in pip.group(4):
            out.append((pip.group(1), pip.group(4).rstrip("/").rsplit("/", 1)[1], pip.group(3), pip.group(4)))
        wheel = re.match(r"Download and install wheel from (\S+/(cu\d+)/torch_stable\.html)", line)
        if wheel:
            out.append((version, wheel.group(2), "wheel-dir", wheel.group(1)))
    return out


LINES = _install_lines()
KINDS = {"-f": "find-links", "--extra-index-url": "extra-index-url", "--index-url": "extra-index-url",
         "wheel-dir": "wheel-url"}


def test_the_excerpt_has_install_lines_of_every_route_kind():
    assert {kind for *_, kind, _ in LINES} >= {"-f", "--extra-index-url", "--index-url", "wheel-dir"}


@pytest.mark.parametrize("version,cu,kind,url", LINES, ids=[f"{v}+{c}" for v, c, *_ in LINES])
def test_the_route_of_each_install_line(version, cu, kind, url):
    routes = [r for r in load_table("wheel_routes")["route"] if matches(r["versions"], version)]
    assert len(routes) == 1, version
    route = routes[0]
    assert route["kind"] == KINDS[kind]
    ours = route["url"].replace("{cu}", cu).replace("{version}", version)
    if kind == "wheel-dir":  # the page names the folder; the route names a wheel in it
        assert ours.rsplit("/", 1)[0] == url.rsplit("/", 1)[0]
    else:
        assert ours == url.rstrip("/")
