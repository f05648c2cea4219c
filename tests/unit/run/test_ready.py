"""The wait's watch on a container, on `docker inspect` states as the engine reports them: a restart
loop keeps State.Running true (moby's SetRestarting), so Restarting and RestartCount must be read."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import pytest

from gpuenv.run.ready import Watch, likely_cause


@dataclass
class Recorded:
    """docker as the watch uses it: `inspect` answers the recorded container, `run logs` its log."""

    container: dict
    log: str = ""
    calls: list = field(default_factory=list)

    def inspect(self, kind: str, *names: str) -> list[dict]:
        return [self.container] if self.container else []

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        self.calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", self.log)


def state(running: bool, restarting: bool = False, code: int = 0, restarts: int = 0) -> dict:
    return {"State": {"Running": running, "Restarting": restarting, "ExitCode": code}, "RestartCount": restarts}


@pytest.mark.parametrize("container, baseline, says", [
    (state(True), 0, None),
    (state(True, restarting=True, code=255, restarts=1), 0, "restart-looping"),
    (state(True, code=255, restarts=3), 0, "restart-looping"),         # between two restarts: Running, not Restarting
    (state(True, restarts=3), 3, None),                                # restarts before this wait began
    (state(False, code=1), 0, "exited with code 1"),
    ({}, 0, "was removed"),
])
def test_the_watch_sees_exits_and_restart_loops(container, baseline, says):
    found = Watch(Recorded(container), "env-ssh", baseline).trouble()
    assert found is None if says is None else says in found


@pytest.mark.parametrize("log, cause", [
    ("Missing privilege separation directory: /run/sshd", "/run/sshd"),
    ("gpuenv: /home/gpuenv/.ssh-host belongs to UID 1234, not to this container's user 4321", "another UID"),
    ("sshd: no hostkeys available -- exiting.", "host key"),
    ("ModuleNotFoundError: No module named 'jupyterlab'", "Python module"),
    ("something nobody foresaw", "fails as it starts"),
])
def test_the_likely_cause_is_read_from_the_log(log, cause):
    assert cause in likely_cause(log)
