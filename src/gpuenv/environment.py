"""An environment's life, from a gpuenv.toml to running containers, in the order it happens:

    generate  the files alone: plan for the spec's target (planning.py), render, write; no engine
    prepare   plan for the host the probe saw; when the image is not built yet, get its base (there,
              pulled, or built here from the apt mirror: images/base.py); render and write the files
    build     the image under its content tag (images/image.py): an unchanged environment never rebuilds
    up        one container per service (run/container.py), GPU in the probe's mode, free ports
              (run/ports.py); wait until each answers (run/ready.py); one `up` of a folder at a time
              (folder_lock: the second waits)
    down, rm  by the labels the containers carry (run/envs.py); rm also after down, by the files
    verify    the check program in the main container (run/verify.py)

What crosses each seam, by type:

    gpuenv.toml -> Request, EnvSpec (planning.request_from_spec) -> Plan (planning.plan_whole)
    Plan, EnvSpec, Inputs -> Rendered (render.render) -> Planned (with, where an engine answers, the
        BaseChoice and the image's `docker image inspect`: run/docker.ImageInspect) -> Prepared (its files
        written; the Inputs carry the HostReport's GpuMode)
    Prepared, Docker -> BuildLog (build) ; Prepared, Docker, HostReport -> Started (up: its ports as
        ServicePort, the ways in as reach.Access)
    Env (run/envs.py), Docker -> the names removed (down, rm; Remains after down) ; -> Verdict (verify)

The CLI prints; this module decides and drives. `say` carries what the user must be told on the way.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple, Optional, TypeVar

from gpuenv import paths, planning
from gpuenv.errors import BadInput, EngineError, GpuenvError, ImpossibleRequest
from gpuenv.host import access as gpu_access
from gpuenv.host import user
from gpuenv.host.access import Devices, GpuMode
from gpuenv.host.limits import Applied, HostSize, applied
from gpuenv.host.nvidia import driver_for_planning
from gpuenv.host.probe import HostReport
from gpuenv.images import holds
from gpuenv.images.base import BaseChoice, ensure, known
from gpuenv.images.image import BuildSpec
from gpuenv.images.image import build as build_image
from gpuenv.images.image import secrets as build_secrets
from gpuenv.kb.frameworks import family_of
import gpuenv.lock as locks         # the face: the lock's modules (and pydantic) load when a lock is used
import gpuenv.spec as specs         # the face: the spec model (pydantic) loads when a gpuenv.toml is read
from gpuenv.lock import LOCK_NAME
from gpuenv.render import Rendered, render
from gpuenv.render.recipe import ACCESS_PORTS, Inputs, PortService, Published, Recipe, Tokens, mirrored
from gpuenv.render.write import check_writable, existing_tokens, write
from gpuenv.resolve import Plan, Request, Target
from gpuenv.resolve.base import Base
from gpuenv.run import container, ready
from gpuenv.run import ports as host_ports
from gpuenv.run import verify as check
from gpuenv.run.docker import ContainerInspect, Docker, ImageInspect
from gpuenv.run.ports import ServicePort
from gpuenv.run.reach import Access, reach
from gpuenv.share import take
from gpuenv.share.arbiter import alive_claims
from gpuenv.share.free import Idle

if TYPE_CHECKING:
    from rich.console import Console

    from gpuenv.images.progress import BuildLog
    from gpuenv.run.container import Launch
    from gpuenv.run.envs import Env, Remains
    from gpuenv.run.verify import HostGpu, Verdict
    from gpuenv.spec.model import EnvSpec

# The probe's answer: its report of the engine's host and the docker client of that engine, both, or
# (None, None) where no engine answers (`gpuenv generate` on a host without one).
ProbeAnswer = tuple[Optional[HostReport], Optional[Docker]]
# `prepare`'s `host`: asked for the probe's answer when the plan first needs it, so that a probe started
# beforehand runs while the spec is read and planned; asked more than once, it gives the same answer.
HostAndEngine = Callable[[], ProbeAnswer]
Say = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Planned:
    """What `prepare` holds once the engine had its say, before the files are written."""

    plan: Plan
    rendered: Rendered
    base: Optional[BaseChoice] = None           # the base the engine gave (there, pulled, or built here);
                                                # None: the planned one, unchecked (no engine, or built already)
    image_info: Optional[ImageInspect] = None     # `docker image inspect` of the image; None: not built yet
                                                  # on this engine, or no engine asked


@dataclass(frozen=True)
class Prepared:
    """An environment ready to build: its spec, the plan for this host, the files rendered and written."""

    spec_file: Path
    folder: Path                     # where the files are
    spec: EnvSpec
    plan: Plan
    rendered: Rendered
    written: tuple[str, ...]         # the paths written, relative to `folder`; (): not written yet
    private_key_file: Optional[str]  # the SSH private key's path, for `ssh -i`; None: no ssh, or the key's
                                     # private half is not known (ssh finds the user's key itself)
    base: Optional[BaseChoice] = None             # when the base was checked on the engine (Planned.base)
    image_info: Optional[ImageInspect] = None     # `docker image inspect` of the image: not None means built
                                                  # here already, so build() skips it (unless --no-cache) and up
                                                  # reads its ENV from it; None: not built yet on this engine, or
                                                  # no engine asked
    locked: bool = False             # rendered from gpuenv.lock (`--locked`)

    @property
    def image(self) -> str:
        return self.rendered.image


class Generated(NamedTuple):
    """What `generate` made."""

    rendered: Rendered
    written: list[str]               # the paths written, relative to the output folder
    private_key_file: Optional[str]  # the SSH private key's file, for `ssh -i`; None: no ssh, or not known


class InputsAndKey(NamedTuple):
    """`render_inputs`' answer: the host facts the files need, and the SSH key to log in with."""

    inputs: Inputs
    private_key_file: Optional[str]  # the private half of the key sshd accepts; None: no ssh, or not known
                                     # (ssh finds the user's key itself)


def generate(spec_file: Path, out: Optional[Path] = None, force: bool = False,
             flags: Optional[planning.TargetFlags] = None) -> Generated:
    """Plan a gpuenv.toml for its target and write its files into `out` (default: the spec's folder)."""
    request, spec = planning.request_from_spec(spec_file)
    out = (out or spec_file.parent).resolve()
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file", "give a folder (it is created when missing)")
    result = planning.plan(request, planning.target_for(flags or planning.TargetFlags(), spec))
    inputs, private_key_file = render_inputs(spec, spec_file.parent.resolve(), out)
    rendered = render(result, spec, inputs)
    return Generated(rendered, write(rendered, out, force), private_key_file)


def render_inputs(spec: EnvSpec, spec_dir: Path, out: Path) -> InputsAndKey:
    """The host facts the files need (your UID/GID, tokens kept from an earlier .env, the SSH key, the
    workspace relative to `out`), and the file of the SSH private key that goes with the key (None: not
    known, or no ssh)."""
    uid, gid = user.ids(spec.workspace.user)
    tokens = _tokens(existing_tokens(out))
    key = user.ssh_key(spec.access.ssh.authorized_key, spec_dir) if spec.access.ssh else None
    workspace = (spec_dir / Path(spec.workspace.host).expanduser()).resolve()
    relative = os.path.relpath(workspace, out)
    shown = relative if relative == "." or relative.startswith("..") else f"./{relative}"
    return InputsAndKey(Inputs(
        workspace=str(workspace) if Path(spec.workspace.host).expanduser().is_absolute() else shown,
        uid=uid, gid=gid, project=user.project_name(spec.name or out.name, out),
        ssh_key=key.public if key else "",
        ssh_key_text=(key.text or "") if key else "", tokens=tokens,
        ca_bundle=user.run_ca_bundle(spec.network.ca_certificates),
    ), key.private if key else None)


def _tokens(kept: dict[str, str]) -> Tokens:
    """Each token of .env (render/envfile.TOKENS): the one an earlier .env holds (`kept`), else a new one."""
    def token(name: str) -> str:
        return kept[name] if name in kept else secrets.token_hex(24)
    return {"JUPYTER_TOKEN": token("JUPYTER_TOKEN"), "GPUENV_GATEWAY_TOKEN": token("GPUENV_GATEWAY_TOKEN")}


def prepare(spec_file: Path, host: HostAndEngine, say: Say, *, out: Optional[Path] = None,
            force: bool = False, pull: bool = False, locked: bool = False, files_only: bool = False) -> Prepared:
    """`host()` gives the probe's answer (HostAndEngine): the probe's report and the docker client, or
    (None, None) where no engine answers; it is asked for only once the plan needs them, so a probe
    started beforehand runs while the spec is read and planned. `locked`:
    no planning; the files come from gpuenv.lock (lock/locked.py). `gpuenv generate` uses it too, so
    the files name the base and plan `up` builds; its `host()` may give (None, None) where no engine
    answers, and `files_only` writes the plan's files when no base can be had here (both said)."""
    check_writable((out or spec_file.parent).resolve())
    if locked:
        report, docker = host()
        if docker is None:
            raise EngineError("no Docker engine answers: `--locked` renders the lock's base as this engine has it",
                              "start the engine (`gpuenv doctor` says why it does not answer)")
        return _written(_render_locked(spec_file, docker, out, pin_steps=True, gpu_mode=_gpu_mode(report)), force)
    request, spec = planning.request_from_spec(spec_file)
    request = _tolerated(files_only, say, request, lambda: _base_facts(host, request, spec, say))
    folder = (out or spec_file.parent).resolve()
    report, docker = host()
    target = planning.target_for(planning.TargetFlags(), spec, seen=_seen(report))
    remembered = None
    if docker is not None and not pull:
        request, remembered = _on_known_base(docker, request, target, spec)
    plan = planning.plan_whole(request, target, spec, spec_file.parent.resolve())
    if remembered is not None and plan.python == remembered.python:
        plan = _on_base(plan, remembered)     # decided before planning: planned, resolved and rendered once
    _say_resolution(plan, say)
    inputs, private_key_file = render_inputs(spec, spec_file.parent.resolve(), folder)
    inputs = replace(inputs, gpu_mode=_gpu_mode(report))
    planned = Planned(plan, render(plan, spec, inputs))
    if docker is not None:
        planned = _tolerated(files_only, say, planned,
                             lambda: _on_engine(docker, request, target, planned, spec_file, spec, inputs, pull, say))
    if remembered is not None and planned.plan.base.image == remembered.image and not planned.image_info:
        say(f"{remembered.note}; {remembered.detail}")    # it shapes this build (as _on_engine says it)
    written = write(planned.rendered, folder, force)
    return Prepared(spec_file=spec_file, folder=folder, spec=spec, plan=planned.plan, rendered=planned.rendered,
                    written=tuple(written), private_key_file=private_key_file, base=planned.base,
                    image_info=planned.image_info)


def _on_known_base(docker: Docker, request: Request, target: Target, spec: EnvSpec
                   ) -> tuple[Request, Optional[BaseChoice]]:
    """(request, base) for the base this engine will build on when that is already decided: built here
    from the apt mirror before and remembered (build/base.known). The request then asks that base's Python,
    so that the environment is planned, resolved and rendered once; unchanged (and no base) when the base
    is not known yet, is the planned image itself, or the spec names a Python or a base."""
    if request.python is not None or spec.base:
        return request, None
    first = planning.plan(request, target)
    if _no_bootstrap(first, spec) is not None:
        return request, None
    found = known(docker, mirrored(first.base.image, spec.network), first.base.os)
    if found is None or found.how != "remembered" or not found.python:
        return request, None
    if found.python == first.python:
        return request, found
    try:
        planning.plan(replace(request, python=found.python), target)
    except ImpossibleRequest:
        return request, None          # the planned Python is then built from source on it
    return replace(request, python=found.python), found


def _say_resolution(plan: Plan, say: Say) -> None:
    """What the user must know of the resolution: what moved the plan and why, or that it did not run."""
    resolved = plan.resolved
    if resolved is None:
        return
    if resolved.status != "resolved":
        say(f"packages not resolved: {resolved.why}; pip resolves them in the build")
    for note in resolved.decided:
        say(f"resolved: {note}")


def _base_facts(host: HostAndEngine, request: Request, spec: EnvSpec, say: Say) -> Request:
    """The request with what the spec's own base holds, when it names one and an engine answers."""
    docker = host()[1] if spec.base else None
    return _look_inside(docker, request, spec, say) if docker is not None else request


def _tolerated(files_only: bool, say: Say, fallback: T, attempt: Callable[[], T]) -> T:
    """`attempt()`; for `gpuenv generate` (`files_only`), a base that cannot be had here is said, and the
    files are the plan's as made (`fallback`), for a host that has it."""
    try:
        return attempt()
    except GpuenvError as exc:
        if not files_only or isinstance(exc, (BadInput, ImpossibleRequest)):
            raise
        say(f"{exc.message}: the files name the planned base, for a host that has it")
        return fallback


def _seen(report: Optional[HostReport]) -> planning.Seen:
    """The driver and GPUs to plan for: the probe's, from the engine's host (a remote engine's host is
    probed through a container there); with no engine (`generate` without one), this host's."""
    if report is None:
        return planning.Seen(driver_for_planning(), "this host")
    where = f"the engine's host ({report.engine.endpoint})" if report.engine.remote else "this host"
    return planning.Seen(report.driver, where)


def _gpu_mode(report: Optional[HostReport]) -> Optional[GpuMode]:
    """The GPU mode the files follow: the probe's (None when no probe was made: the plan's request stands)."""
    return report.mode.name if report is not None else None


def _on_engine(docker: Docker, request: Request, target: Target, planned: Planned, spec_file: Path, spec: EnvSpec,
               inputs: Inputs, pull: bool, say: Say) -> Planned:
    """`planned` as this engine builds it: the planned rendering when its image is there, else on the base
    the engine gives (there, pulled, or built here: then planned again on it)."""
    plan, rendered = planned.plan, planned.rendered
    info = docker.image(rendered.image)
    if info:
        return Planned(plan, rendered, None, info)
    base = ensure(docker, rendered.recipe.base, plan.base.os, spec.network.apt_mirror,
                  _no_bootstrap(plan, spec), pull, say)
    if base.how in ("bootstrapped", "remembered"):
        plan = _on_local_base(request, target, plan, base, spec_file, spec)
        rendered = render(plan, spec, inputs)
        info = docker.image(rendered.image)
        if not info or base.how == "bootstrapped":
            say(f"{base.note}; {base.detail}")    # said when it shapes a build, not on every `up` of a built
                                                 # image; the detail is the terminal's, not the plan's
    return Planned(plan, rendered, base, info)


def prepare_matching(spec_file: Path, docker: Docker, matches: Callable[[Prepared], bool]) -> Optional[Prepared]:
    """The rendering of the folder's gpuenv.lock that `matches` (an image that came from elsewhere: a
    bundle, a registry), written: its pinned steps (`build --locked`), else unpinned (an image built
    before it was locked). None, and nothing written, when there is no lock or neither matches."""
    if not (spec_file.parent / LOCK_NAME).is_file():
        return None
    for pin_steps in (True, False):
        try:
            candidate = _render_locked(spec_file, docker, None, pin_steps=pin_steps)
        except GpuenvError:               # e.g. the lock's base is not here: then not the image that came
            continue
        if matches(candidate):
            return _written(candidate, force=False)
    return None


def _render_locked(spec_file: Path, docker: Docker, out: Optional[Path], *, pin_steps: bool,
                   gpu_mode: Optional[GpuMode] = None) -> Prepared:
    """The lock's rendering, not yet written (`written` empty)."""
    spec = specs.load_spec(spec_file)
    lock = locks.locked.lock_for(spec_file, spec)
    plan = locks.lockfile.plan_from_data(lock.plan)
    folder = (out or spec_file.parent).resolve()
    inputs, private_key_file = render_inputs(spec, spec_file.parent.resolve(), folder)
    inputs = replace(inputs, gpu_mode=gpu_mode)
    if pin_steps:
        inputs = replace(inputs, locked=locks.locked.requirement_files(lock),
                         base_ref=locks.locked.pinned_base(lock, docker))
    rendered = render(plan, spec, inputs)
    return Prepared(spec_file=spec_file, folder=folder, spec=spec, plan=plan, rendered=rendered, written=(),
                    private_key_file=private_key_file, image_info=docker.image(rendered.image), locked=pin_steps)


def _written(prepared: Prepared, force: bool) -> Prepared:
    return replace(prepared, written=tuple(write(prepared.rendered, prepared.folder, force)))


def _look_inside(docker: Docker, request: Request, spec: EnvSpec, say: Say) -> Request:
    """The spec's own base, pulled when missing, and what its Python already holds (images/holds.py)."""
    assert spec.base is not None                      # _base_facts asks only when the spec names a base
    image = mirrored(spec.base, spec.network)
    if not docker.image(image):
        say(f"pulling {image} (gpuenv.toml's base)")
        done = docker.run("pull", image, check=False, timeout=3600)
        if done.returncode != 0:
            raise EngineError(f"the base image {image} that gpuenv.toml names is not on this engine and cannot be "
                              f"pulled: {(done.stderr or done.stdout).strip()[-300:]}",
                              "load it (docker load / gpuenv load), or name another `base`")
    facts = holds.inspect(docker, image)
    if not facts:
        return request
    families = {family for family in map(family_of, (w.project for w in request.wants)) if family is not None}
    found = holds.held(image, facts, families)
    for p in found:
        say(f"{image} already holds {p.family} {p.version} in Python {p.python}: it is used, not installed again")
    return replace(request, base_holds=found, python=request.python or facts.get("python"))


def _no_bootstrap(plan: Plan, spec: EnvSpec) -> Optional[str]:
    """Why a base built from the apt mirror cannot stand in for the planned one (None: it can)."""
    if spec.base:
        return f"gpuenv.toml names its own base ({spec.base})"
    if plan.cuda_source == "base-image":
        return (f"the plan needs the system CUDA {plan.cuda} of {plan.base.image}, which a base built from the "
                "OS's apt mirror cannot hold (NVIDIA's CUDA repository is not an OS mirror)")
    return None


def _on_local_base(request: Request, target: Target, plan: Plan, base: BaseChoice, spec_file: Path,
                   spec: EnvSpec) -> Plan:
    """The plan again on a base built here: the OS's python3 unless the spec names a Python (or the whole
    environment needs another: then the planned Python is built from source on it)."""
    again = plan
    if request.python is None and base.python and base.python != plan.python:
        try:
            again = planning.plan_whole(replace(request, python=base.python), target, spec, spec_file.parent.resolve())
        except ImpossibleRequest:
            again = plan                  # the planned Python is then built from source on it
    return _on_base(again, base)


def _on_base(plan: Plan, base: BaseChoice) -> Plan:
    """The plan with FROM the base built here (once: a plan already on it is kept)."""
    if plan.base.image == base.image:
        return plan
    local = Base(base.image, base.os, base.python, reasons=(base.note,))
    return replace(plan, base=local, reasons=tuple(plan.reasons) + (base.note,))


@contextmanager
def folder_lock(spec_file: Path, say: Say) -> Iterator[None]:
    """Hold this spec folder's lock while it runs: a second `up` (or `build`) of the same folder waits for
    the first (then finds it running and reuses it, or its image built). An flock on a file of the user's
    state folder, keyed by the folder: the kernel releases it when the process ends, however it ends."""
    folder = str(spec_file.parent.resolve())
    path = paths.state_dir() / "locks" / f"{hashlib.sha256(folder.encode()).hexdigest()[:16]}.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            say(f"waiting for another gpuenv up or build of this folder (pid {holder}) to finish: {folder}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def build(prepared: Prepared, docker: Docker, console: Console, live: bool,
          no_cache: bool = False) -> Optional[BuildLog]:
    """Build the image unless it is there (content tag); the BuildLog, or None when nothing was built."""
    if not no_cache and prepared.image_info:
        _lock_facts(prepared, docker)
        return None
    r = prepared.rendered.recipe
    args: tuple[tuple[str, str], ...] = (("USER_UID", str(r.inputs.uid)), ("USER_GID", str(r.inputs.gid)))
    args += tuple(_proxy_args(prepared.spec))
    spec = BuildSpec(prepared.folder, prepared.image, args, build_secrets(prepared.spec.network.ca_certificates),
                     no_cache=no_cache, network="" if docker.has_bridge() else "host")
    log = paths.build_logs() / f"{r.project}-build.log"
    try:
        built = build_image(docker, spec, console, live, log)
    except GpuenvError as exc:
        if not r.pinned:
            raise

        source = "gpuenv.lock" if prepared.locked else "the resolution's pins (gpuenv plan --json: resolved)"
        raise locks.locked.explain(exc, log.read_text(errors="replace") if log.is_file() else "", source) from None
    _lock_facts(prepared, docker)
    return built


def _lock_facts(prepared: Prepared, docker: Docker) -> None:
    """A gpuenv.lock made before the build (from the resolution) gets the image's facts from its first
    build (lock/built.py); nothing happens when there is no lock or it has them."""

    if prepared.rendered.recipe.pinned:
        locks.built.record(prepared, docker, lambda _: None)


def _proxy_args(spec: EnvSpec) -> list[tuple[str, str]]:
    """Proxies reach a build as Docker's predefined arguments (not kept in the image's history)."""
    net = spec.network
    args: list[tuple[str, str]] = []
    for name, value in (("http_proxy", net.http_proxy), ("https_proxy", net.https_proxy),
                        ("no_proxy", ",".join(net.no_proxy))):
        if value:
            args += [(name, value), (name.upper(), value)]
    return args


@dataclass(frozen=True)
class Started:
    """A running environment, as `up` left it: what `gpuenv up` shows (`--json` too)."""

    project: str                     # the compose project its containers, volumes and ssh alias are named by
    containers: tuple[str, ...]      # one per service, the main one first
    ports: tuple[ServicePort, ...]   # the host port each published port got (moved when the spec's was taken)
    gpu_mode: GpuMode                # the mode its containers got: the probe's, or "none" when it needs no GPU
    reused: bool                     # it already ran exactly so: nothing was started
    waited: float                    # seconds spent waiting until every service answered (0 with wait=False)
    access: Access                   # how to reach it (run/reach.py)
    limits: Applied                  # what each container may use (host/limits.py)
    gpus: str = ""                   # the GPUs its containers got, as their io.gpuenv.gpus label says them


def limits(spec: EnvSpec, report: HostReport) -> Applied:
    """The limits each container of the environment gets on the probed engine's host (host/limits.py);
    ImpossibleRequest (exit 3) for more CPUs than it has: `up` asks before it builds."""
    return applied(spec.run, host_size(report))


def host_size(report: HostReport) -> HostSize:
    return HostSize(report.engine.cpus, report.engine.memory)


# A way to this host from the ports an engine over ssh published on its own host's 127.0.0.1: given
# (service, port there), it opens the tunnel (run/tunnel.py) and answers {port there: port here}.
Forwarder = Callable[[list[tuple[str, int]]], dict[int, int]]


def up(prepared: Prepared, docker: Docker, report: HostReport, say: Say, wait: bool = True,
       gpus: Optional[Devices] = None, forward: Optional[Forwarder] = None) -> Started:
    """Start (or keep) one container per service of a built environment and wait until each answers.
    `gpus` (`up --gpus`) replaces the spec's gpu.devices. With `forward` (an engine reached over ssh), its
    ports are that host's: a port is taken there when a container of that engine publishes it, and the
    wait and the access go through the tunnel it opens."""
    r = prepared.rendered.recipe
    given = limits(prepared.spec, report)
    for warning in given.warnings:
        say(warning)
    mode: GpuMode = report.mode.name if r.gpu else "none"
    if r.gpu and mode == "none":
        say("no GPU reaches containers on this host (GPU mode none): the environment runs on the CPU; "
            "`gpuenv doctor` says why")
    image = prepared.image_info or docker.image(prepared.image)
    project = r.project
    old = docker.containers(f"{container.LABEL}.project={project}")
    want = _wanted(prepared, gpus, old, report, mode, docker, say)
    gpu = gpu_access.run_args(mode, report.driver, report.files, want.devices)
    # the spec's ports (Published.host: the one wanted), then the ones they got
    wanted = [Published(s.name, s.port, s.host_port) for s in r.services if s.port and s.host_port]
    wanted += [Published(ACCESS_PORTS, p.container, p.host) for p in prepared.spec.access.ports]
    network = "" if docker.has_bridge() else "none"
    if network and wanted:
        raise GpuenvError("this engine has no bridge network (dockerd --bridge=none), so no port can be published",
                          "start dockerd with its default bridge, or use an environment without ports "
                          "(no [access.jupyter], [access.gateway], [access.ssh]) and `gpuenv shell`")
    host = container.Host(files=prepared.folder, image=prepared.image, image_env=container.image_env(image),
                          gpu=gpu, gpu_mode=mode, gpus=container.gpus_text(want.devices, mode),
                          ports=(), owner=invoker(), selinux=report.system.selinux == "enforcing",
                          network=network, remote=report.engine.remote, limits=given.limits,
                          size=host_size(report))
    if report.engine.remote and container.run_ca(r):
        say("the engine is remote: this host's CA bundle is not mounted into its containers (pip there trusts "
            "the image's roots only; network.ca_in_image = true puts the CA in the image)")
    container.ready_workspace(r, host)
    plans = container.launches(r, host)
    reused = _reusable(old, plans)
    if reused:
        chosen = _published(old, wanted)
    else:
        _remove(docker, old)
        address = r.spec.access.bind
        others = _published_by_others(docker, project)
        there = others() if forward is not None else {}     # the engine's host: what its containers publish
        picked = host_ports.choose(address, [w.host for w in wanted], others,
                                   free=(lambda _a, p: p not in there) if forward is not None else host_ports.free)
        chosen = [ServicePort(w.service, p) for w, p in zip(wanted, picked)]
        for (svc, port) in chosen:
            if port.moved:
                say(f"port {port.wanted} on {address} is taken (by {port.taken_by}): {_what(svc)} is on "
                    f"{port.got} instead")
        host = replace(host, ports=tuple(w._replace(host=p.got) for w, p in zip(wanted, picked)))
        plans = container.launches(r, host)
        _repair_volumes(docker, r, prepared.image, say)
        try:
            if want.choosing:              # the main container, created with the GPUs it took, claims them
                host, plans = _take_free(docker, r, report, host, want, say)
            for launch in plans[1:] if want.choosing else plans:
                container.start(docker, launch)
        except BaseException:
            _remove(docker, docker.containers(f"{container.LABEL}.project={project}"))
            raise
    _record_ports(prepared, wanted, chosen)
    here = _forwarded(forward, chosen, docker, [] if reused else [p.name for p in plans], say)
    start = time.monotonic()
    if wait:
        _wait_all(docker, r, chosen, [] if reused else [p.name for p in plans], say, here)
    service_ports = {svc: here.get(p.got, p.got) for svc, p in chosen if svc != ACCESS_PORTS}
    return Started(project=project, containers=tuple(p.name for p in plans), ports=tuple(chosen), gpu_mode=mode,
                   reused=reused, waited=time.monotonic() - start,
                   access=reach(r, service_ports, prepared.private_key_file), limits=given, gpus=host.gpus)


def _wanted(prepared: Prepared, gpus: Optional[Devices], old: list[ContainerInspect], report: HostReport,
            mode: GpuMode, docker: Docker, say: Say) -> take.Wanted:
    """The GPUs the containers get (share/take.py); GPUs given by hand that others hold are said."""
    spec = prepared.spec.gpu
    idle = Idle(spec.idle_memory_mib, spec.idle_utilization)
    devices: Devices = gpus if gpus is not None else spec.devices
    want = take.wanted(devices, spec.count, idle, old, report.driver.gpus, mode != "none")
    if isinstance(want.devices, list) and not old and mode != "none":
        others = [c for c in alive_claims(docker) if c.project != prepared.rendered.recipe.project]
        for text in take.warnings(want.devices, report.driver.gpus, others, idle):
            say(f"warning: {text}")
    return want


def _take_free(docker: Docker, r: Recipe, report: HostReport, host: container.Host, want: take.Wanted,
               say: Say) -> tuple[container.Host, list[Launch]]:
    """Take free GPUs: the main container is created (not started) with them as its claim, and started once
    the claim holds (share/arbiter.py); the host and launches with those GPUs."""
    made: dict[tuple[str, ...], tuple[container.Host, list[Launch]]] = {}

    def create(uuids: tuple[str, ...]) -> str:
        given = replace(host, gpu=gpu_access.run_args(host.gpu_mode, report.driver, report.files, list(uuids)),
                        gpus=container.gpus_text(list(uuids), host.gpu_mode))
        made[uuids] = (given, container.launches(r, given))
        return container.create(docker, made[uuids][1][0])
    won = take.take(docker, r.project, report, want, create)
    given, plans = made[won.uuids]
    docker.run("start", plans[0].name, timeout=300)
    say(take.taken(report.driver.gpus, won))
    return given, plans


def invoker() -> int:
    """Whose environment it is: the user who runs gpuenv (under sudo, the one who ran sudo), whatever
    UID its containers run as (workspace.user). The `owner` label says so; ls/status/down look for it."""
    return user.ids("host")[0]


def _forwarded(forward: Optional[Forwarder], chosen: list[ServicePort], docker: Docker, started: list[str],
               say: Say) -> dict[int, int]:
    """{port on the engine's host: port here} through the tunnel `forward` opens ({} without one); when it
    cannot be opened, the containers started now are stopped, as when they do not answer."""
    if forward is None:
        return {}
    try:
        return forward([(svc, p.got) for svc, p in chosen])
    except BaseException:
        _stop(docker, started, say)
        raise


def _wait_all(docker: Docker, r: Recipe, chosen: list[ServicePort], started: list[str],
              say: Say, here: Optional[dict[int, int]] = None) -> None:
    """Wait until every service answers (through the tunnel's ports `here`, when it has one). When one
    exits, restart-loops, never answers or the wait is interrupted, the containers started now are
    stopped (their logs kept for `gpuenv logs`)."""
    bind = "127.0.0.1" if here else r.spec.access.bind
    try:
        for s in r.services:
            port = next(((here or {}).get(p.got, p.got) for svc, p in chosen if svc == s.name), None)
            if s.health and port:
                name = container.container_name(r, s.name)
                watch = ready.Watch(docker, name, 0 if name in started else _restarts(docker, name))
                token = r.inputs.tokens.get("GPUENV_GATEWAY_TOKEN", "") if s.name == "gateway" else ""
                ready.wait(s.health.kind, "127.0.0.1" if bind in ("0.0.0.0", "::") else bind, port, watch, token=token)
    except BaseException:
        _stop(docker, started, say)
        raise


def _restarts(docker: Docker, name: str) -> int:
    found = docker.inspect("container", name)
    return int(found[0].get("RestartCount") or 0) if found else 0


def _stop(docker: Docker, names: list[str], say: Say) -> None:
    """Stop (not remove: their logs stay) the containers `up` started, so that none restart-loops."""
    if not names:
        return
    docker.run("update", "--restart", "no", *names, check=False, timeout=60)
    docker.run("stop", "--time", "3", *names, check=False, timeout=120)
    say(f"stopped {', '.join(names)} so that nothing is left restarting; `gpuenv logs` shows its log, "
        "`gpuenv down` removes it")


def _repair_volumes(docker: Docker, r: Recipe, image: str, say: Say) -> None:
    """The named volumes (HOME, sshd's host keys) of containers that ran as another UID (workspace.user
    changed) are given to this one's user, as root in a one-off container of the environment's image;
    a volume already this user's is left as it is (HOME may be large)."""
    owner = f"{r.inputs.uid}:{r.inputs.gid}"
    there = [(mount, name) for mount, name in r.volumes().items() if docker.inspect("volume", name)]
    if not there:
        return
    mounts = [w for mount, name in there for w in ("--volume", f"{name}:{mount}")]
    script = 'o=$1; shift; for d; do [ "$(stat -c %u:%g "$d")" = "$o" ] || chown -R "$o" "$d" || exit 1; done'
    done = docker.run("run", "--rm", "--network", "none", "--user", "0:0", "--entrypoint", "sh", *mounts, image,
                      "-c", script, "sh", owner, *(mount for mount, _ in there), check=False, timeout=300)
    if done.returncode != 0:
        names = ", ".join(name for _, name in there)
        say(f"could not give the volumes {names} to {owner}: {(done.stderr or done.stdout).strip()[-300:]}")


def _record_ports(prepared: Prepared, wanted: list[Published], chosen: list[ServicePort]) -> None:
    """When a taken port moved, the written files say the port `up` published (compose.yaml, which
    devcontainer.json starts), so that compose and the Dev Containers CLI start it where gpuenv did."""
    got = {(svc, port.wanted): port.got for svc, port in chosen}
    used = tuple(w._replace(host=got.get((w.service, w.host), w.host)) for w in wanted)
    if used == tuple(wanted):
        return                            # prepare wrote the spec's ports: they are the ones used
    inputs = replace(prepared.rendered.recipe.inputs, published=used)
    write(render(prepared.plan, prepared.spec, inputs), prepared.folder)


def _what(service: PortService) -> str:
    names = {"jupyter": "Jupyter", "gateway": "the kernel gateway", "ssh": "sshd", ACCESS_PORTS: "that port"}
    return names.get(service, service)


def _reusable(old: list[ContainerInspect], plans: list[Launch]) -> bool:
    """The environment already runs exactly as it would be started now."""
    if len(old) != len(plans):
        return False
    by_name = {c.get("Name", "").lstrip("/"): c for c in old}
    for launch in plans:
        c = by_name.get(launch.name)
        state = (c or {}).get("State") or {}
        if c is None or not state.get("Running") or state.get("Restarting"):
            return False
        if ((c.get("Config") or {}).get("Labels") or {}).get(f"{container.LABEL}.config") != launch.config:
            return False
    return True


def _published(old: list[ContainerInspect], wanted: list[Published]) -> list[ServicePort]:
    """The host ports running containers publish for the `wanted` ones (Port: wanted, got)."""
    found: list[ServicePort] = []
    for w in wanted:
        for c in old:
            labels = (c.get("Config") or {}).get("Labels") or {}
            if w.service not in (labels.get(f"{container.LABEL}.service"),
                                 ACCESS_PORTS if labels.get(f"{container.LABEL}.main") == "true" else None):
                continue
            bindings = ((c.get("HostConfig") or {}).get("PortBindings") or {}).get(f"{w.container}/tcp") or []
            if bindings:
                found.append(ServicePort(w.service, host_ports.Port(w.host, int(bindings[0].get("HostPort") or w.host))))
    return found


def _published_by_others(docker: Docker, project: str) -> Callable[[], dict[int, str]]:
    def lookup() -> dict[int, str]:
        ids = docker.run("ps", "-q", "--no-trunc").stdout.split()
        return host_ports.published_ports(c for c in docker.inspect("container", *ids))
    return lookup


def _remove(docker: Docker, containers: list[ContainerInspect]) -> None:
    names = [c.get("Name", "").lstrip("/") for c in containers]
    if names:
        docker.run("rm", "-f", *names, timeout=120)


def down(docker: Docker, env: Env, volumes: bool = False) -> list[str]:
    """Remove an environment's containers (and with `volumes` its named volumes: sshd's host keys)."""
    names = [c.get("Name", "").lstrip("/") for c in env.containers]
    found = sorted({m["Name"] for c in env.containers for m in c.get("Mounts") or () if m.get("Type") == "volume"})
    if names:
        docker.run("rm", "-f", *names, timeout=120)
    if volumes and found:
        docker.run("volume", "rm", "-f", *found)
    return names + (found if volumes else [])


def rm(docker: Docker, env: Optional[Env], remains: Remains, state: Path) -> list[str]:
    """Remove an environment entirely: its containers (`env`, None after `down`) and volumes, its
    images, its build log, and its files folder when that is a request's in the state folder `state`
    (a folder of the user's own gpuenv.toml stays: the files there are theirs)."""
    removed = down(docker, env, volumes=True) if env is not None else []
    removed += _remove_volumes(docker, remains.project, removed)
    removed += remove_images(docker, remains.repository, remains.user, remains.image)
    return removed + _remove_files(remains, state)


def _remove_volumes(docker: Docker, project: str, gone: list[str]) -> list[str]:
    """HOME and the ssh host keys volumes as gpuenv and compose.yaml name them (PROJECT-...), and as compose
    named them before compose.yaml gave the name (PROJECT_...)."""
    names = [f"{project}{sep}{volume}" for volume in ("home", "ssh-host-keys") for sep in ("-", "_")]
    volumes = [v for v in names if v not in gone and docker.inspect("volume", v)]
    if volumes:
        docker.run("volume", "rm", "-f", *volumes)
    return volumes


def _remove_files(remains: Remains, state: Path) -> list[str]:
    """The build log, and the files folder when it is one of the state folder's (a short request's)."""
    removed = []
    log = paths.build_logs() / f"{remains.project}-build.log"
    if log.is_file():
        log.unlink()
        removed.append(str(log))
    folder = remains.folder
    if folder is not None and folder.is_dir() and folder.resolve().parent == state.resolve():
        shutil.rmtree(folder)
        removed.append(str(folder))
    return removed


def remove_images(docker: Docker, repository: str, user: str, image: str) -> list[str]:
    """The images of this environment's name (gpuenv-NAME:*) built for its user ("UID:GID", their USER)
    that no container uses: on a shared server another user's environment of the same name keeps its
    images. With the user unknown, only `image` itself."""
    tags = [t for t in docker.run("images", "--format", "{{.Repository}}:{{.Tag}}", repository).stdout.split()
            if not t.endswith(":<none>")]
    found = docker.inspect("image", *tags) if user else []               # one inspect for every tag
    users = {tag: str((i.get("Config") or {}).get("User") or "") for i in found for tag in i.get("RepoTags") or ()}
    tags = [t for t in tags if t == image or (user and users.get(t) == user)]
    removed = []
    for tag in tags:
        try:
            docker.run("rmi", tag)
            removed.append(tag)
        except EngineError:
            pass                              # in use by another container: kept
    return removed


def verify(docker: Docker, env: Env, report: HostReport) -> tuple[Verdict, dict[str, Any]]:
    """Run the check program inside the environment's main container; (Verdict, its data)."""
    if not env.running:
        raise GpuenvError(f"{env.name} is not running ({env.state})", f"start it: gpuenv up (in {env.label('files')})")
    labels = ((docker.image(env.image) or {}).get("Config") or {}).get("Labels") or {}
    families = [f for f in labels.get("io.gpuenv.families", "").split(",") if f]
    archs = [a for a in labels.get("io.gpuenv.gpu-archs", "").split(",") if a]
    gpus = _given_gpus(report, env.label("gpu-mode"), env.label("gpus"))
    python = env.label("python-command") or "python3"
    done = docker.run("exec", "-i", env.main_name, python, "-", *families, "--expect-gpus", str(len(gpus)),
                      check=False, timeout=600, stdin=check.program_text())
    if done.returncode not in (0, 1) and check.MARK not in done.stdout:
        raise GpuenvError(f"the check could not run in {env.main_name}: {(done.stderr or done.stdout).strip()[-800:]}")
    result = check.parse_output(done.stdout)
    verdict = check.evaluate(result, families, gpus, archs)
    data = {"name": env.name, "image": env.image, "gpu_mode": env.label("gpu-mode"), **verdict.to_dict(),
            "result": result}
    return verdict, data


def _given_gpus(report: HostReport, mode: str, chosen: str) -> list[HostGpu]:
    """(index, name, compute capability) of the host GPUs the environment was given."""
    if mode in ("", "none") or not report.driver.ok:
        return []
    wanted = None if chosen in ("", "all") else set(chosen.split(","))
    return [(g.index, g.name, g.cc or "") for g in report.driver.gpus
            if wanted is None or str(g.index) in wanted or g.uuid in wanted]
