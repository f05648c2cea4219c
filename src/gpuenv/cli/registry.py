"""`gpuenv push [ENV] REF` and `gpuenv pull [REF]`: an environment's image to a private registry and back,
pinned by digest in gpuenv.lock."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv.cli.main import F, global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.host.engine import probe_engine
from gpuenv.host.user import ids
from gpuenv.registry import ref as refs
from gpuenv.registry import source, transfer
from gpuenv.registry.lockfile import LOCK_FILE, add_repo_digest, read_image
from gpuenv.registry.login import Login, from_options
from gpuenv.registry.pulling import by_lock, by_ref, renumber, user_mismatch
from gpuenv.registry.transfer import Pushed
from gpuenv.run.docker import Docker


def login_options(fn: F) -> F:
    fn = click.option("--password-stdin", is_flag=True,
                      help="Read the password from stdin (else from GPUENV_REGISTRY_PASSWORD).")(fn)
    return click.option("--username", "-u", metavar="NAME",
                        help="Log in as NAME for this command only (default: your `docker login`).")(fn)


def _login(username: Optional[str], password_stdin: bool) -> Optional[Login]:
    return from_options(username, password_stdin, sys.stdin.read, os.environ)


def _docker() -> Docker:
    return Docker.connect(probe_engine(compose=False))


@click.command()
@click.argument("first", metavar="[ENV] REF")
@click.argument("second", required=False, metavar="")
@login_options
@global_options
def push(first: str, second: Optional[str], username: Optional[str], password_stdin: bool, **_: Any) -> Result:
    """Push an environment's image to a registry; print its digest and pin it in gpuenv.lock.

    \b
    gpuenv push 127.0.0.1:5000/vision            ./gpuenv.toml's image, tagged with its content tag
    gpuenv push vision registry.lab:5000/group/vision:v1
    printf '%s' "$PW" | gpuenv push REF --username me --password-stdin
    The password is used for this command only: never stored, never on a command line.
    """
    env, ref_text = (None, first) if second is None else (first, second)
    ref = refs.parse(ref_text, digest_allowed=False)
    login = _login(username, password_stdin)
    docker = _docker()
    found = source.image_to_push(docker, env, Path.cwd(), ids("host"))
    pushed = transfer.push(docker, found.image, ref, login)
    lock = _record(found.lock, pushed, found.image)
    data = {"image": pushed.image, "image_id": pushed.image_id, "reference": pushed.target,
            "digest": pushed.digest, "pinned": pushed.pinned, "lock": lock}
    return Result(data, lambda c: _show_push(c, data))


def _record(lock: Optional[Path], pushed: Pushed, image: str) -> Optional[dict[str, str]]:
    """Add the digest to the lock next to the spec when that lock describes the pushed image."""
    locked = read_image(lock) if lock else None
    if lock is None or locked is None:
        return None
    if locked.id != pushed.image_id and (locked.id or locked.tag != image):
        note = f"{lock} locks another image ({locked.tag or locked.id}): not changed; gpuenv lock makes it again"
        return {"file": str(lock), "state": "another image", "note": note}
    added = add_repo_digest(lock, pushed.pinned)
    return {"file": str(lock), "state": "added" if added else "already there"}


def _show_push(console: Console, data: dict[str, Any]) -> None:
    console.print(f"pushed [bold]{escape(data['image'])}[/bold] as {escape(data['reference'])}")
    console.print(escape(data["pinned"]))
    lock = data["lock"]
    if lock and lock["state"] == "another image":
        console.print(f"[yellow]note:[/yellow] {escape(lock['note'])}")
    elif lock:
        console.print(f"[dim]{escape(lock['file'])}: [image] repo_digests {escape(lock['state'])}[/dim]")


@click.command()
@click.argument("ref", required=False)
@login_options
@global_options
@click.pass_obj
def pull(renderer: Renderer, ref: Optional[str], username: Optional[str], password_stdin: bool, **_: Any) -> Result:
    """Pull an environment's image, check its digest, and tag it so `gpuenv up` uses it.

    \b
    gpuenv pull                                   the image ./gpuenv.lock pins (its repo_digests, by digest)
    gpuenv pull 127.0.0.1:5000/vision:3f2a9c0d1e2b
    gpuenv pull 127.0.0.1:5000/vision@sha256:...  --username me --password-stdin
    """
    login = _login(username, password_stdin)
    locked = read_image(Path.cwd() / LOCK_FILE)
    docker = _docker()
    pulled = by_ref(docker, ref, login, locked) if ref else by_lock(docker, login, locked, Path.cwd() / LOCK_FILE)
    mismatch = user_mismatch(pulled.info, ids("host"))
    renumbered = None
    if mismatch:
        renumbered = renumber(docker, Path.cwd() / "gpuenv.toml", pulled, mismatch)
        renderer.stderr.print("[yellow]note:[/yellow] ", end="")
        if renumbered:
            renderer.stderr.print(f"the image was built for UID:GID {mismatch.to_dict()['built_for']}: {renumbered} is "
                                  f"its copy for you ({mismatch.to_dict()['you']}), made here; gpuenv up uses it",
                                  markup=False, emoji=False)
        else:
            renderer.stderr.print(mismatch.message + " (pull in the environment's folder, with its gpuenv.toml and "
                                  "gpuenv.lock, and gpuenv makes your copy)", markup=False, emoji=False)
    data = {"source": pulled.source, "pinned": pulled.pinned, "digest": pulled.digest, "image_id": pulled.image_id,
            "tag": pulled.tag, "user_mismatch": mismatch.to_dict() if mismatch else None, "renumbered": renumbered}
    return Result(data, lambda c: _show_pull(c, data))


def _show_pull(console: Console, data: dict[str, Any]) -> None:
    console.print(f"pulled {escape(data['source'])}")
    console.print(escape(data["pinned"]))
    if data["tag"]:
        console.print(f"[bold]image[/bold]  {escape(data['tag'])}  (gpuenv up in its folder uses it, no build)")
    else:
        console.print("[yellow]note:[/yellow] not tagged as an environment: its tag is not a gpuenv content tag "
                      "and no gpuenv.lock here names it (pull the tag gpuenv push gave, or pull in the "
                      "environment's folder)")
