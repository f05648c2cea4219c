"""Several servers: Docker's own contexts are the list of hosts, and one question is asked of each engine
in parallel, each with a time limit. A host that does not answer is an answer too ("no answer: why"),
never the failure of the whole command.

    hosts = chosen(client, ["gpu1", "gpu2"], every=False)      # or every=True: every context
    answers = each_host(client, hosts, lambda docker, host: environments(docker, None))

`gpuenv ls --hosts/--all-hosts` uses it; so can any verb that asks each server the same thing
(`gpuenv gpus`). The context names are the user's (`docker context create gpu1 --docker host=ssh://...`).
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Generic, Optional, Sequence, TypeVar

from gpuenv.errors import BadInput, EngineError, GpuenvError
from gpuenv.run.docker import Docker

T = TypeVar("T")


@dataclass(frozen=True)
class DockerHost:
    """One docker context: a server's engine as the user's docker CLI reaches it."""

    name: str                       # the context's name ("default": DOCKER_HOST or this host's socket)
    endpoint: str = ""              # its docker endpoint: unix://, ssh://USER@HOST, tcp://...
    current: bool = False           # the context the CLI uses now


@dataclass(frozen=True)
class HostAnswer(Generic[T]):
    host: DockerHost
    value: Optional[T] = None       # what the question returned, when the engine answered
    error: str = ""                 # why there is no answer ("" when there is one)

    @property
    def ok(self) -> bool:
        return not self.error


def parse_contexts(text: str) -> list[DockerHost]:
    """`docker context ls --format '{{json .}}'` (one JSON object a line; 20.10 and later) as hosts;
    lines that are not a context object are skipped."""
    hosts = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("Name"), str) and row["Name"]:
            endpoint = row.get("DockerEndpoint")
            hosts.append(DockerHost(row["Name"], endpoint if isinstance(endpoint, str) else "",
                                    row.get("Current") is True))
    return hosts


def contexts(client: str, timeout: float = 20) -> list[DockerHost]:
    """Every docker context of this user."""
    try:
        done = subprocess.run([client, "context", "ls", "--format", "{{json .}}"], capture_output=True, text=True,
                              errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"cannot list the docker contexts: {exc}", "check `docker context ls`") from None
    if done.returncode != 0:
        raise EngineError(f"`docker context ls` failed: {done.stderr.strip() or 'no output'}",
                          "check `docker context ls`")
    return parse_contexts(done.stdout)


def chosen(client: str, names: Sequence[str], every: bool) -> list[DockerHost]:
    """The contexts named (in that order, each once), or every one; BadInput naming the ones that exist."""
    known = contexts(client)
    if every:
        return known
    by_name = {h.name: h for h in known}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise BadInput(f"no docker context named {', '.join(missing)}",
                       f"the contexts: {', '.join(by_name) or 'none'}; add one with "
                       "`docker context create NAME --docker host=ssh://USER@HOST`")
    return [by_name[n] for n in dict.fromkeys(names)]


def each_host(client: str, hosts: Sequence[DockerHost], ask: Callable[[Docker, DockerHost], T],
              timeout: float = 30) -> list[HostAnswer[T]]:
    """Ask every host's engine in parallel (its Docker names the context); answers in the order of
    `hosts`. A host whose engine does not answer, or whose question fails or takes longer than `timeout`
    seconds (every docker command is cut off then), gets an answer with `error`."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        futures = [pool.submit(_ask, Docker(client, context=h.name, limit=timeout), h, ask) for h in hosts]
        wait(futures, timeout=timeout * 2 + 5)       # each is cut off by its own limit well before this
        return [f.result() if f.done() else HostAnswer(h, error=f"no answer within {timeout:g} s")
                for f, h in zip(futures, hosts)]


def _ask(docker: Docker, host: DockerHost, ask: Callable[[Docker, DockerHost], T]) -> HostAnswer[T]:
    try:
        reached = docker.run("version", "--format", "{{.Server.Version}}", check=False)
    except GpuenvError as exc:
        return HostAnswer(host, error=exc.message)
    if reached.returncode != 0 or not reached.stdout.strip():
        return HostAnswer(host, error=_unreachable(reached.stderr or reached.stdout))
    try:
        return HostAnswer(host, ask(docker, host))
    except GpuenvError as exc:
        return HostAnswer(host, error=exc.message)


def _unreachable(said: str) -> str:
    """Why an engine did not answer, short: over ssh, what ssh said (docker wraps it in a long sentence)."""
    text = " ".join(said.split())
    ssh = re.search(r"stderr=(.*)$", text)
    return (ssh.group(1).strip() if ssh and ssh.group(1).strip() else text)[-300:] or "no output"
