"""Remote engines, pure parts: docker contexts as docker prints them, the ssh target and tunnel command
docker's own connhelper would use, port choice by what another host's engine publishes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gpuenv.run import ports, tunnel
from gpuenv.run.hosts import DockerHost, parse_contexts
from gpuenv.run.tunnel import Forward, SshTarget

# `docker context ls --format '{{json .}}'` of the 20.10 CLI (Debian's) and of a 28.x CLI, recorded here
CLI_20 = ('{"Current":true,"Description":"Current DOCKER_HOST based configuration","DockerEndpoint":'
          '"unix:///var/run/docker.sock","KubernetesEndpoint":"","Name":"default","StackOrchestrator":"swarm"}\n'
          '{"Current":false,"Description":"","DockerEndpoint":"ssh://nobody@127.0.0.1:1","KubernetesEndpoint":"",'
          '"Name":"gone","StackOrchestrator":""}\n')
CLI_28 = ('{"Current":false,"Description":"","DockerEndpoint":"ssh://me@gpu1","Error":"","Name":"gpu1"}\n'
          'WARNING: something the CLI says\n[1, 2]\n{"Name": 5}\n{"Name": "odd", "DockerEndpoint": null}\n')


def test_contexts_of_both_clis_and_garbage_lines() -> None:
    assert parse_contexts(CLI_20) == [DockerHost("default", "unix:///var/run/docker.sock", True),
                                      DockerHost("gone", "ssh://nobody@127.0.0.1:1", False)]
    assert parse_contexts(CLI_28) == [DockerHost("gpu1", "ssh://me@gpu1"), DockerHost("odd", "")]


def test_ssh_target_as_docker_reads_the_endpoint() -> None:
    assert tunnel.ssh_target("ssh://me@gpu1:2222") == SshTarget("gpu1", "me", 2222)
    assert tunnel.ssh_target("ssh://gpu1") == SshTarget("gpu1")
    for other in ("unix:///var/run/docker.sock", "tcp://gpu1:2376", "", "ssh://", "ssh://h:notaport"):
        assert tunnel.ssh_target(other) is None


def test_tunnel_command_names_the_target_last_as_docker_does() -> None:
    argv = tunnel.command(SshTarget("gpu1", "me", 2222), [Forward("jupyter", 8888, 8890, 8888),
                                                         Forward("ssh", 2222, 2222)])
    assert argv[:2] == ["ssh", "-N"] and "ExitOnForwardFailure=yes" in argv
    assert argv[-6:] == ["-l", "me", "-p", "2222", "--", "gpu1"]
    assert "127.0.0.1:8890:127.0.0.1:8888" in argv and "127.0.0.1:2222:127.0.0.1:2222" in argv
    assert tunnel.shown(["ssh", "-L", "a b"]) == "ssh -L 'a b'"


def test_a_recorded_tunnel_whose_process_is_gone_or_another_is_forgotten(tmp_path: Path) -> None:
    state = tmp_path / "p.json"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        record = {"pid": sleeper.pid, "argv": ["ssh", "-N", "--", "h"], "forwards": [], "endpoint": "ssh://h"}
        state.write_text(json.dumps(record))
        assert tunnel.recorded(state) is None              # that pid runs sleep, not the recorded ssh
        assert tunnel.close(state) is None and not state.exists()
        assert sleeper.poll() is None                      # never killed
        state.write_text("{not json")
        assert tunnel.recorded(state) is None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert tunnel.recorded(tmp_path / "missing.json") is None


def test_ports_on_another_hosts_engine_are_taken_only_by_its_containers() -> None:
    there = {8888: "someone-jupyter"}
    picked = ports.choose("127.0.0.1", [8888, 8889], lambda: there, free=lambda _a, p: p not in there)
    assert [(p.wanted, p.got, p.taken_by) for p in picked] == [(8888, 8889, "container someone-jupyter"),
                                                               (8889, 8890, "another port of this environment")]
