"""`gpuenv lock`: the resolution is the lock: every distribution, its hashes and index, by pip step,
written with no build (the first build of it adds the image's facts). When nothing could be resolved
(no index answered), it builds and records exactly what the image holds, and says so.
`gpuenv lock --check`: say what drifted from it (exit 1 when anything did)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment
from gpuenv.cli.main import global_options
from gpuenv.cli.output import Renderer, Result
from gpuenv.cli.common import engine
from gpuenv.cli.up import spec_source
from gpuenv.errors import EXIT_FAILURE
from gpuenv.lock import LOCK_NAME, drift
from gpuenv.lock.built import with_image
from gpuenv.lock.collect import collect
from gpuenv.lock.lockfile import SYSTEM_STEP, Lock, plan_from_data, read, write
from gpuenv.lock.resolution import lock_from_plan, resolved_of
from gpuenv.spec import load_spec

if TYPE_CHECKING:
    from gpuenv.environment import Prepared, Say
    from gpuenv.images.progress import BuildLog
    from gpuenv.run.docker import Docker


@click.command()
@click.option("-f", "--file", "file", type=click.Path(path_type=Path),
              help="The spec (default ./gpuenv.toml; a folder means its gpuenv.toml).")
@click.option("--check", is_flag=True, help="Report drift from gpuenv.lock (exit 1 when anything drifted).")
@click.option("--pull", is_flag=True, help="Try the registry for the base again (as `gpuenv build --pull`).")
@click.option("--force", is_flag=True, help="Replace files of the same names that gpuenv did not write.")
@global_options
@click.pass_obj
def lock(renderer: Renderer, file: Optional[Path], check: bool, pull: bool, force: bool, **_: Any) -> Result:
    """Pin the environment: base image digest, every package's exact version and hashes.

    \b
    gpuenv lock                 resolve, then write gpuenv.lock next to gpuenv.toml (no build); when no
                                index answers, build and record what the image holds
    gpuenv build --locked       build exactly the lock, on any day and any host (gpuenv up --locked too)
    gpuenv lock --check         what drifted: the spec, the image's packages, the base image
    """
    spec_file = spec_source((), file, {})
    if check:
        return _check(spec_file)
    return _lock(renderer, spec_file, pull, force)


def _lock(renderer: Renderer, spec_file: Path, pull: bool, force: bool) -> Result:
    say = renderer.say
    with ThreadPoolExecutor(max_workers=1) as pool:
        probing = pool.submit(engine)
        prepared = environment.prepare(spec_file, probing.result, say, force=force, pull=pull)
        _, docker = probing.result()
    if resolved_of(prepared.plan) is not None:
        made, log = _from_resolution(prepared, docker, say), None
    else:
        made, log = _by_building(renderer, prepared, docker, say)
    path = spec_file.parent / LOCK_NAME
    write(made, path)
    pip = [p for s in made.steps if s.id != SYSTEM_STEP for p in s.packages]
    unhashed = [p.pin() for p in pip if not p.hashes]
    data = {"lock": str(path), "image": made.image.tag, "image_id": made.image.id, "built": log is not None,
            "from": "resolution" if resolved_of(prepared.plan) is not None else "image",
            "base": made.base.image, "base_digest": made.base.digest or None, "base_id": made.base.id,
            "steps": {s.id: len(s.packages) for s in made.steps}, "distributions": len(pip),
            "unhashed": unhashed, "apt": len(made.apt)}
    return Result(data, lambda c: _show_lock(c, data))


def _from_resolution(prepared: Prepared, docker: Docker, say: Say) -> Lock:
    """The lock from the plan's resolution, no build; with the image's facts when it is built already."""
    made = lock_from_plan(prepared, docker)
    if docker is not None and prepared.image_info:
        made = with_image(made, docker, prepared.image, prepared.rendered.recipe.python.command)
    return made


def _by_building(renderer: Renderer, prepared: Prepared, docker: Docker,
                 say: Say) -> tuple[Lock, Optional[BuildLog]]:
    """No resolution (no index answered): build, then record exactly what the image holds."""
    resolved = prepared.plan.resolved
    why = resolved.why if resolved is not None and resolved.why else "the plan was not resolved"
    say(f"no resolution to lock ({why}): building the image and recording what it holds instead")
    log = environment.build(prepared, docker, renderer.stderr, renderer.live)
    return collect(prepared, docker, say), log


def _show_lock(c: Console, data: dict[str, Any]) -> None:
    c.print(f"[bold]wrote[/bold] {escape(data['lock'])} (from the {data['from']})")
    image_id = data["image_id"][:19] or "not built yet: its first build adds the image, base and apt facts"
    c.print(f"  image   {escape(data['image'])} ({escape(image_id)})")
    pin = data["base_digest"] or f"{data['base_id'][:19]} (no registry digest: a locked build checks its ID)"
    c.print(f"  base    {escape(data['base'])} {escape(pin)}")
    steps = ", ".join(f"{k} {v}" for k, v in data["steps"].items())
    c.print(f"  pip     {data['distributions']} distributions by step: {escape(steps)}")
    if data["unhashed"]:
        c.print(f"  no index hashes (pinned by version): {escape(', '.join(data['unhashed']))}")
    c.print(f"  apt     {data['apt']} OS packages the build added")


def _check(spec_file: Path) -> Result:
    path = spec_file.parent / LOCK_NAME
    lock = read(path)
    found = drift.spec_drift(lock, load_spec(spec_file))
    docker = engine()[1]
    python = "python" if plan_from_data(lock.plan).python.startswith("2") else "python3"
    notes = []
    for more, note in (drift.base_drift(lock, docker), drift.image_drift(lock, docker, python)):
        found += more
        notes += [note] if note else []
    data = {"lock": str(path), "drifted": bool(found), "drift": [d.to_dict() for d in found], "notes": notes}
    return Result(data, lambda c: _show_check(c, data), EXIT_FAILURE if found else 0)


def _show_check(c: Console, data: dict[str, Any]) -> None:
    for d in data["drift"]:
        c.print(f"[yellow]drift[/yellow] {d['kind']:<6} {escape(d['message'])}")
    for note in data["notes"]:
        c.print(f"[dim]note[/dim]  {escape(note)}")
    if not data["drifted"]:
        c.print(f"[green]no drift[/green]: the spec, the image and the base match {escape(data['lock'])}")
