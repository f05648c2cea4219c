"""The remote probe's script and its splitting give back exactly what the observations print when run
here: the script is run on this host (root "/", no chroot) and compared with observe_local."""

from __future__ import annotations

import subprocess

from gpuenv.host.observe import commands, observe_local
from gpuenv.host.remote import script, split

SAME_EVERY_TIME = ["os-release.txt", "ldconfig-p.txt", "ldconfig-resolved.txt", "uname.txt", "cgroup-fs.txt",
                   "daemon-json.txt", "nvidia-smi-q.xml", "wsl.txt", "cdi-specs.txt"]


def test_the_script_round_trips_every_observation(tmp_path):
    cmds = commands(SAME_EVERY_TIME)
    done = subprocess.run(["/bin/sh", "-c", script(cmds, root="/", scratch=str(tmp_path))], capture_output=True,
                          text=True, timeout=60, check=True)
    remote = split(done.stdout, "here, through the script")
    local = observe_local(SAME_EVERY_TIME)
    assert sorted(remote.outputs) == sorted(SAME_EVERY_TIME)
    for name in SAME_EVERY_TIME:
        assert remote.outputs[name].ok == local.outputs[name].ok, name
        if local.outputs[name].ok:
            assert remote.outputs[name].stdout == local.outputs[name].stdout, name
    resolved = remote.text("ldconfig-resolved.txt").splitlines()
    assert len(resolved) == remote.text("ldconfig-p.txt").count(" => "), "one real path per cache entry"


def test_an_output_without_a_final_newline_and_a_failure(tmp_path):
    cmds = {"a.txt": "printf abc", "b.txt": "echo out; echo err >&2; exit 3"}
    text = script(cmds, root="/", scratch=str(tmp_path))
    done = subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True,
                          check=True)
    found = split(done.stdout, "here")
    assert found.outputs["a.txt"].stdout == "abc" and found.outputs["a.txt"].ok
    assert found.outputs["b.txt"].returncode == 3 and found.outputs["b.txt"].stdout == "out\nerr\n"
