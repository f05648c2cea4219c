"""Credentials for one push or pull.

Without --username the docker CLI uses what the user already set up (`docker login`, credential
helpers). With --username, the password comes from stdin (--password-stdin) or GPUENV_REGISTRY_PASSWORD
and reaches the docker CLI through a temporary DOCKER_CONFIG folder (mode 0700, its config.json 0600)
that exists only while the command runs: never on a command line, never in a child's environment,
never in ~/.docker. The folder keeps the user's other settings (proxies, the current context).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

from gpuenv.errors import BadInput

PASSWORD_VARIABLE = "GPUENV_REGISTRY_PASSWORD"
_PRIVATE_KEYS = ("auths", "credsStore", "credHelpers")   # the user's own logins stay out of the copy


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)


def from_options(username: Optional[str], password_stdin: bool, read_stdin: Callable[[], str],
                 environ: Mapping[str, str]) -> Optional[Login]:
    """The login the flags give, or None for the engine's own `docker login`."""
    if not username:
        if password_stdin:
            raise BadInput("--password-stdin needs --username", "gpuenv push REF --username NAME --password-stdin")
        return None
    if ":" in username:
        raise BadInput(f"the user name '{username}' holds ':', which basic auth cannot carry", "give the name alone")
    password = read_stdin().rstrip("\r\n") if password_stdin else environ.get(PASSWORD_VARIABLE, "")
    if not password:
        where = "stdin was empty" if password_stdin else f"neither --password-stdin nor {PASSWORD_VARIABLE} gave one"
        raise BadInput(f"--username {username} needs a password: {where}",
                       f"printf '%s' \"$PASSWORD\" | gpuenv push REF --username {username} --password-stdin, "
                       f"or export {PASSWORD_VARIABLE}")
    return Login(username, password)


@contextmanager
def docker_environment(login: Optional[Login], host: str) -> Iterator[dict[str, str]]:
    """The environment for the docker CLI: without the password variable; with a login, DOCKER_CONFIG
    points at a temporary folder holding it, removed when the block ends (also on errors)."""
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}
    if login is None:
        yield env
        return
    folder = Path(tempfile.mkdtemp(prefix="gpuenv-registry-auth-"))   # mkdtemp makes it 0700
    try:
        _write_config(folder, login, host)
        yield {**env, "DOCKER_CONFIG": str(folder)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def user_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _write_config(folder: Path, login: Login, host: str) -> None:
    own = user_config_dir()
    config = {k: v for k, v in _read_json(own / "config.json").items() if k not in _PRIVATE_KEYS}
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    config["auths"] = {host: {"auth": token}}     # auths present: the CLI looks for no credential helper
    descriptor = os.open(folder / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(config, out)
    if (own / "contexts").is_dir():
        os.symlink(own / "contexts", folder / "contexts")   # `docker context use` keeps working


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
