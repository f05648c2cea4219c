"""The workspace is mounted read-write, so it must not be the host's root or a system folder unless the
spec says so (`workspace.allow_system_folder`); a missing one is made as its user; a root container and
ports open to every address are warned about. The real engine's side: tests/integration/test_run_security.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.errors import BadInput, SpecError
from gpuenv.spec import parse_spec
from gpuenv.spec.workspace import refusal

REFUSED = ["/", "/etc", "/etc/ssl", "/usr", "/usr/local/lib", "/var", "/var/lib/docker", "/boot", "/proc", "/sys",
           "/dev", "/dev/shm", "/root", "/root/project", "/run", "/run/user/1000", "/bin", "/lib", "/home", "/tmp",
           "/etc/../usr/./share"]


@pytest.mark.parametrize("folder", REFUSED)
def test_the_root_and_system_folders_are_refused(folder, tmp_path):
    assert refusal(Path(folder), home=tmp_path / "home")


@pytest.mark.parametrize("folder", ["/data/project", "/srv/lab", "/mnt/scratch/me", "/tmp/project", "/opt/work"])
def test_project_folders_are_fine(folder, tmp_path):
    assert refusal(Path(folder), home=tmp_path / "home") is None


def test_the_home_folder_and_what_holds_it_are_refused_and_what_is_inside_it_is_fine(tmp_path):
    home = tmp_path / "group" / "me"
    assert "is your home folder" in refusal(home, home=home)
    assert "holds your home folder" in refusal(tmp_path / "group", home=home)
    assert refusal(home / "project", home=home) is None
    assert refusal(Path("/var/lib/jenkins/job"), home=Path("/var/lib/jenkins")) is None


def test_links_and_dots_are_followed_before_deciding(tmp_path):
    (tmp_path / "etc-link").symlink_to("/etc")
    assert refusal(tmp_path / "etc-link" / "ssl", home=tmp_path) == "/etc/ssl is inside the system folder /etc"
    assert "home folder" in refusal(tmp_path / "project" / "..", home=tmp_path)


def test_a_folder_holding_the_engines_socket_is_refused(tmp_path, monkeypatch):
    (tmp_path / "engine").mkdir()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/engine/docker.sock")
    assert "holds the Docker engine's socket" in refusal(tmp_path / "engine", home=tmp_path / "home")
    desktop = tmp_path / "home" / ".docker" / "desktop"
    desktop.mkdir(parents=True)
    (desktop / "docker.sock").write_text("")
    assert "holds the Docker engine's socket" in refusal(tmp_path / "home" / ".docker", home=tmp_path / "home")


def _spec(tmp_path: Path, workspace: str):
    return parse_spec(f'name = "n"\n[workspace]\n{workspace}\n', source="gpuenv.toml", base_dir=tmp_path)


@pytest.mark.parametrize("host", ["/", "/etc", "../../../../../../../../../etc", "~", "/var/run"])
def test_spec_check_places_the_refusal_on_workspace_host(host, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SpecError) as caught:
        _spec(tmp_path, f'host = "{host}"\nuser = "0:0"')
    [problem] = caught.value.problems
    assert problem.field == "workspace.host" and problem.line == 3
    assert "workspace.allow_system_folder = true" in problem.message


def test_the_spec_may_allow_a_system_folder_by_name_and_keeps_its_hash_otherwise(tmp_path):
    from gpuenv.spec.write import spec_hash

    allowed = _spec(tmp_path, 'host = "/etc"\nallow_system_folder = true')
    assert allowed.workspace.allow_system_folder is True
    assert allowed.workspace.model_dump()["allow_system_folder"] is True
    plain = _spec(tmp_path, 'host = "."')
    assert "allow_system_folder" not in plain.workspace.model_dump()
    assert spec_hash(plain) == spec_hash(parse_spec('name = "n"\n', base_dir=tmp_path))


def test_spec_check_on_the_command_line(tmp_path):
    (tmp_path / "gpuenv.toml").write_text('[workspace]\nhost = "/"\nuser = "0:0"\n')
    run = subprocess.run([sys.executable, "-m", "gpuenv", "spec", "check", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{tmp_path / 'gpuenv.toml'}:2: workspace.host: / is the filesystem root" in run.stderr
    assert "hint:" in run.stderr


def test_up_checks_the_mount_path_again(tmp_path):
    from gpuenv.run import workspace

    with pytest.raises(BadInput, match="/etc is a system folder") as caught:
        workspace.check(Path("/etc"), allowed=False)
    assert "workspace.allow_system_folder = true" in caught.value.hint
    workspace.check(Path("/etc"), allowed=True)
    workspace.check(tmp_path, allowed=False)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root, as gpuenv under sudo has")
def test_a_missing_workspace_and_its_missing_parents_are_made_for_their_user(tmp_path):
    from gpuenv.run import workspace

    made = workspace.create(tmp_path / "a" / "b", 4321, 4322)
    assert made == [tmp_path / "a", tmp_path / "a" / "b"]
    assert all((p.stat().st_uid, p.stat().st_gid) == (4321, 4322) for p in made)
    assert (tmp_path.stat().st_uid, tmp_path.stat().st_gid) == (0, 0)
    assert workspace.owner(0, 0, (1000, 1001)) == (1000, 1001) and workspace.owner(5, 6, (1000, 1001)) == (5, 6)


def test_a_workspace_that_cannot_be_made_is_a_clear_error(tmp_path):
    from gpuenv.errors import GpuenvError
    from gpuenv.run import workspace

    (tmp_path / "file").write_text("")
    with pytest.raises(GpuenvError, match="cannot create the workspace folder") as raised:
        workspace.create(tmp_path / "file" / "sub", 0, 0)
    assert getattr(raised.value, "cause", None) == "not-a-folder"     # said by its cause, as every write is
    assert "a part of its path is a file" in raised.value.message


def _access(bind: str = "127.0.0.1", user: str = "host", jupyter: bool = True):
    return parse_spec(f'name = "n"\n[access]\nbind = "{bind}"\njupyter = {str(jupyter).lower()}\n'
                      f'[workspace]\nuser = "{user}"\n')


def test_up_warns_for_a_root_container():
    from gpuenv.run.exposure import warnings

    [said] = warnings(_access(user="0:0"), 0, [])
    assert 'workspace.user = "0:0" runs the container as root' in said
    [said] = warnings(_access(), 0, [])
    assert "gpuenv runs as root here" in said and "sudo" in said
    assert warnings(_access(), 1000, ["192.0.2.2"]) == []


def test_up_warns_for_ports_open_to_every_address_and_says_which():
    from gpuenv.run.exposure import warnings

    [said] = warnings(_access("0.0.0.0"), 1000, ["192.0.2.2", "10.1.2.3", "fd00::2"])
    assert "at 192.0.2.2, 10.1.2.3 (" in said and "fd00::2" not in said and "127.0.0.1" in said
    [said] = warnings(_access("::"), 1000, ["192.0.2.2", "fd00::2"])
    assert "at 192.0.2.2, fd00::2 (" in said
    assert warnings(_access("0.0.0.0", jupyter=False), 1000, ["192.0.2.2"]) == []


def test_this_hosts_addresses_leave_out_loopback_and_the_engines_bridges():
    import ipaddress

    from gpuenv.host.addresses import reachable

    for address in reachable():
        ip = ipaddress.ip_address(address)
        assert not ip.is_loopback and not ip.is_link_local
        assert not (ip.version == 4 and ip in ipaddress.ip_network("172.17.0.0/16"))   # docker0 here


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root, as gpuenv under sudo has")
def test_up_makes_the_target_of_a_link_to_a_missing_folder_not_the_engine(tmp_path):
    from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
    from gpuenv.host.access import RunArgs
    from gpuenv.render import render
    from gpuenv.render.recipe import Inputs
    from gpuenv.run.container import Host, ready_workspace

    (tmp_path / "gpuenv.toml").write_text('name = "n"\nframeworks = ["jax"]\n[gpu]\ndevices = "none"\n')
    (tmp_path / "link").symlink_to(tmp_path / "data" / "project")
    request, spec = request_from_spec(tmp_path / "gpuenv.toml")
    recipe = render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec,
                    Inputs(workspace="./link", uid=4321, gid=4322)).recipe
    ready_workspace(recipe, Host(tmp_path, "img:tag", (), RunArgs(()), "none", "none", (), 4321))
    made = tmp_path / "data" / "project"
    assert made.is_dir() and (made.stat().st_uid, made.stat().st_gid) == (4321, 4322)
    assert (made.parent.stat().st_uid, made.parent.stat().st_gid) == (4321, 4322)
