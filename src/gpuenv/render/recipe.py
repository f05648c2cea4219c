"""What the files must say, decided once from a plan and a spec: the build plan every writer reads.

The Dockerfile, compose.yaml, .env and devcontainer.json writers only format a `Recipe`; every choice
(which Python, which packages in which layer, which services, which labels) is made here, in small
steps that each add one part. No I/O: the caller gives the host facts (`Inputs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Optional, Sequence, TypedDict, Union

from gpuenv import __version__
from gpuenv.errors import ImpossibleRequest
from gpuenv.kb import load_table
from gpuenv.kb.mirrors import mirrored_wheel_url
from gpuenv.render.quote import compose_text
from gpuenv.resolve import nvidia
from gpuenv.resolve.plan import Plan
from gpuenv.resolve.resolved import tools_for
from gpuenv.resolve.versions import minor_key
from gpuenv.spec.write import spec_hash

if TYPE_CHECKING:
    from gpuenv.host.access import GpuMode
    from gpuenv.spec.model import EnvSpec, Network

HOME = "/home/gpuenv"          # the environment's user is always called gpuenv; its UID/GID are the host user's
USER = "gpuenv"
SUPPORT = ".gpuenv"            # support files next to the Dockerfile (build context)
SSH_HOST_KEYS = "/var/lib/gpuenv/ssh-host"   # sshd's host keys, made at its first start (never in the image);
# outside HOME: a volume mounted inside another volume races the engine when compose creates two services
# at once (docker-compose v1: "failed to mkdir .../home/_data/.ssh-host: file exists")


# the services an environment runs, one container each (the compose service and the container's io.gpuenv.service
# label): Jupyter, the kernel gateway, sshd, or, when the spec asks for none of them, a shell that sleeps
ServiceName = Literal["jupyter", "gateway", "ssh", "shell"]

# the service of a port the spec lists in access.ports: published on the main container, whichever
# service that is (compose.yaml, `gpuenv up`, and the config hash of its containers say it so)
ACCESS_PORTS: Final = "*"

# whose a published port is: a service's, or ACCESS_PORTS for one of access.ports
PortService = Union[ServiceName, Literal["*"]]


class Published(NamedTuple):
    """A port published on the host: a service's port (jupyter, gateway, ssh) or one of access.ports."""

    service: PortService  # the service it belongs to; ACCESS_PORTS for a port of access.ports
    container: int        # the port inside the container
    host: int             # the host port it is published on


class Tokens(TypedDict, total=False):
    """The services' secrets, as .env names them (render/envfile.TOKENS): environment.render_inputs makes
    both (kept from an earlier .env); read by name where a service needs its own."""

    JUPYTER_TOKEN: str                   # Jupyter's token (auth = "token"): the URL's ?token=
    GPUENV_GATEWAY_TOKEN: str            # the kernel gateway's KG_AUTH_TOKEN


@dataclass(frozen=True)
class Inputs:
    """Host facts the files need; the CLI finds them, tests fix them."""

    workspace: str = "."                 # the workspace folder: relative to the output folder, or absolute
    uid: int = 1000                      # the UID/GID the environment's user gets (workspace.user: yours)
    gid: int = 1000
    project: str = ""                    # COMPOSE_PROJECT_NAME; "" = the environment's name
    ssh_key: str = ""                    # the public key file mounted for sshd; "" = none (no ssh)
    ssh_key_text: str = ""               # a key the spec gives inline: written to .gpuenv/authorized_keys; "" = none
    tokens: Tokens = field(default_factory=Tokens)   # the default {}: no token (tests that start no service)
    ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt"   # mounted read-only at run time; "" = none
    # `--locked` (gpuenv.lock): each pip step's requirements file (step id, text), and FROM pinned by digest
    locked: tuple[tuple[str, str], ...] = ()   # () = not `--locked`
    base_ref: str = ""                   # FROM as the lock pins it (image@digest); "" = the plan's base
    # what only a host knows about running it: the GPU mode doctor finds there (None = not probed: the
    # plan's GPU request is written), and the host ports `gpuenv up` published, written in place of the
    # spec's when a taken port moved
    gpu_mode: Optional[GpuMode] = None
    published: tuple[Published, ...] = ()


# how a service's health check asks it: an HTTP GET of /api (Jupyter, the kernel gateway), or sshd's banner
HealthKind = Literal["http", "ssh"]


class Health(NamedTuple):
    """How to ask a service whether it answers (files/healthcheck.py in the container, run/ready.py from here)."""

    kind: HealthKind
    port: int                 # the port inside the container


@dataclass(frozen=True)
class Service:
    """One container of the environment: the first of Recipe.services is the main one."""

    name: ServiceName         # compose service and container name suffix
    command: tuple[str, ...]  # the main container's is the image's CMD; the others' go after `docker run IMAGE`
    port: Optional[int]       # inside the container; None: the service has no port (shell)
    host_port: Optional[int]  # the host port the spec asks for (`up` may move a taken one); None with `port`
    health: Optional[Health]  # None: nothing to wait for (shell)
    environment: tuple[tuple[str, str], ...] = ()    # (name, value) in compose.yaml; a token as ${...} of .env


# where the environment's Python comes from: the base image itself (it has pip), the OS's python3 from apt,
# or CPython built from source in a stage of its own
PythonMethod = Literal["image", "apt", "source"]
# what installs the pinned pip steps
Installer = Literal["uv", "pip"]


@dataclass(frozen=True)
class Python:
    version: str              # "3.6"
    method: PythonMethod
    release: Optional[str]    # "3.6.15" when built from source
    pip_below: Optional[str]  # the newest pip that runs on it is below this
    command: str              # python3 (python for 2.7)


@dataclass(frozen=True)
class Recipe:
    """Every choice the files make, once: the Dockerfile's steps in order (system apt, Python, frameworks,
    the spec's apt, tools, the spec's packages), the services, and what the engine is asked at run time."""

    name: str                      # the environment's name (the spec's, else "gpuenv")
    spec_hash: str                 # sha256 of the spec (spec/write.spec_hash): the io.gpuenv.spec-sha256 label
    base: str                      # FROM, through the registry mirror when there is one
    os: str                        # "ubuntu16.04", "debian12", "(unknown)"
    nvidia_base: bool              # the base is NVIDIA's CUDA image (its CUDA apt lists are dropped)
    python: Python
    system_apt: tuple[str, ...]    # the OS packages the build needs (CA certificates, the apt Python, sshd)
    frameworks: tuple[str, ...]    # the framework step's pip requirements (plan.packages), PyTorch's URLs mirrored
    pip_options: tuple[str, ...]   # that step's pip options (the frameworks' indexes: plan.pip_options), mirrored
    user_apt: tuple[str, ...]      # the spec's apt packages, as written
    tools: tuple[str, ...]         # what the access services need (jupyterlab...): the tools pip step
    user_packages: tuple[str, ...]  # the spec's other pip packages, as written: the last pip step
    cuda_from_wheels: bool         # CUDA comes from the frameworks' wheels and a GPU is wanted: their
                                   # libraries are registered with the dynamic linker
    gpu: bool                      # the plan needs a GPU (CUDA) and the spec does not turn it off
                                   # (gpu.devices = "none"); gpu_request: whether the files ask the engine for one
    env: tuple[tuple[str, str], ...]      # the image's ENV beyond HOME/GPUENV_WORKSPACE: NVIDIA_* when `gpu`
    labels: tuple[tuple[str, str], ...]   # the image's LABELs: OCI title/description/base, io.gpuenv.*
    services: tuple[Service, ...]  # one container each, the main one first; at least one (shell)
    workspace_mount: str           # where the workspace is mounted inside (the WORKDIR)
    args: tuple[tuple[str, str], ...]  # build arguments with their defaults (mirrors, indexes)
    ca_in_image: bool              # network.ca_in_image: the build's CA bundle is installed for run time too
    plan: Plan
    spec: EnvSpec
    inputs: Inputs
    summary: str                   # one line: "torch 2.4.1 on Python 3.11; CUDA 12.1 from the wheels, ..."
    # each pip step's requirements file (step id, text): the lock's (`--locked`), else the resolution's;
    # () when neither pins the steps (nothing resolved: pip resolves at build time, as the spec names them)
    pinned: tuple[tuple[str, str], ...] = ()
    installer: Installer = "pip"   # what installs the pinned steps: "uv" (Python >= UV_MIN_PYTHON) or "pip"

    @property
    def main(self) -> Service:
        return self.services[0]

    @property
    def project(self) -> str:
        """The compose project: containers, volumes and the ssh alias are named after it (unique per
        user and folder)."""
        return self.inputs.project or self.name

    @property
    def gpu_request(self) -> bool:
        """Whether the files ask the engine for a GPU: `gpu` (the plan needs one) and the host is not known
        to have none (GPU mode `none`: such a request fails with `could not select device driver`). The
        image is the same either way (`gpu`); only compose.yaml and devcontainer.json differ."""
        return self.gpu and self.inputs.gpu_mode != "none"

    def volumes(self) -> dict[str, str]:
        """The named volumes of every container, by mount point, the same for `gpuenv up`, compose and the
        Dev Containers CLI: HOME (shell history, ~/.vscode-server, ~/.ssh/known_hosts survive a
        re-created container) and sshd's host keys (the same key however it was started)."""
        found = {HOME: f"{self.project}-home"}
        if any(s.name == "ssh" for s in self.services):
            found[SSH_HOST_KEYS] = f"{self.project}-ssh-host-keys"
        return found


def recipe(plan: Plan, spec: EnvSpec, inputs: Inputs) -> Recipe:
    python = _python(plan)
    gpu = plan.cuda_source != "none" and spec.gpu.devices != "none"
    services = tuple(_services(spec))
    digest, summary = spec_hash(spec), _summary(plan)
    return Recipe(
        name=spec.name or "gpuenv", spec_hash=digest, base=inputs.base_ref or mirrored(plan.base.image, spec.network),
        os=plan.base.os, nvidia_base=_nvidia_base(plan),
        python=python, system_apt=_system_apt(python, spec, bool(plan.packages or plan.user_packages)
                                              or spec.access.jupyter is not None or spec.access.gateway is not None),
        frameworks=_wheels(plan.packages, spec.network),
        pip_options=_wheels(plan.pip_options, spec.network), user_apt=tuple(spec.apt), tools=tools_for(spec),
        user_packages=plan.user_packages, cuda_from_wheels=plan.cuda_source == "wheels" and gpu, gpu=gpu,
        env=tuple(_env(plan, gpu)), labels=tuple(_labels(plan, spec, digest, summary)), services=services,
        workspace_mount=spec.workspace.mount, args=tuple(_args(spec.network)),
        ca_in_image=spec.network.ca_in_image, plan=plan, spec=spec, inputs=inputs, summary=summary,
        pinned=pinned_steps(plan, inputs), installer=installer_for(python.version),
    )


# uv's documented floor: "uv does not work with Python versions prior to 3.6" (Tier 2 support: 3.6-3.9),
# https://docs.astral.sh/uv/reference/policies/python/ (retrieved 2026-12-07)
UV_MIN_PYTHON = (3, 6)


def installer_for(python: str) -> Installer:
    """uv installs the pinned steps where it runs on the target Python; pip below (Python 2.7)."""
    return "uv" if minor_key(python)[:2] >= UV_MIN_PYTHON else "pip"


def pinned_steps(plan: Plan, inputs: Inputs) -> tuple[tuple[str, str], ...]:
    """What each pip step installs exactly: the lock's files (`--locked`), else the resolution's; ()
    when the plan was not resolved (the steps then name the spec's packages and pip resolves them)."""
    if inputs.locked:
        return inputs.locked
    resolved = plan.resolved
    if resolved is None or resolved.status != "resolved":
        return ()
    main = resolved.indexes[0] if resolved.indexes else ""
    return tuple((s.id, step_file(s.id, resolved.requirements_text(s.id), [p.index for p in s.pins], main,
                                  resolved.find_links)) for s in resolved.steps)


INDEX_URL = re.compile(r"https?://[^\s\"'\\]+")


def step_file(step_id: str, pins: str, indexes: Sequence[str] = (), main: str = "",
              links: Sequence[str] = ()) -> str:
    """A pinned step's requirements file, the same whether the pins are the resolver's or gpuenv.lock's:
    a lock made from the resolution renders the same files, hence the same image tag. An index its pins
    come from other than the main one (which the build's PIP_INDEX_URL names) is named in it, so pip and
    uv both find them there; a find-links page (`links`: the PyTorch ecosystem's wheel pages) as one."""
    extra = [i for i in dict.fromkeys(indexes) if i and i != main and INDEX_URL.fullmatch(i)]
    pins = "".join(f"--{'find-links' if i in links else 'extra-index-url'} {i}\n" for i in extra) + pins
    return f"# step {step_id}: exactly these, installed with --no-deps\n{pins}"


def mirrored(image: str, network: Network) -> str:
    """A Docker Hub image through the registry mirror (pull-through cache layout: library/ for
    official images); images of other registries stay as they are."""
    mirror = network.registry_mirror
    if not mirror or _registry_of(image):
        return image
    host = mirror.split("://", 1)[-1].rstrip("/")
    path = image if "/" in image.split(":", 1)[0] else f"library/{image}"
    return f"{host}/{path}"


def _registry_of(image: str) -> Optional[str]:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _wheels(words: tuple[str, ...], network: Network) -> tuple[str, ...]:
    """PyTorch's download.pytorch.org URLs (index, find-links page, wheel) through network.pytorch_wheels,
    and the other wheel servers' through network.wheel_mirrors."""
    others = tuple((str(k), str(v)) for k, v in network.wheel_mirrors.items())
    return tuple(mirrored_wheel_url(w, network.pytorch_wheels or "", others) for w in words)


def _nvidia_base(plan: Plan) -> bool:
    return plan.base.cuda is not None or _repository(plan.base.image).endswith("nvidia/cuda")


@lru_cache(maxsize=None)
def _releases() -> dict[str, dict]:
    return {r["python"]: r for r in load_table("bases")["python_release"]}


def _python(plan: Plan) -> Python:
    """Where the planned Python comes from: the image itself (python:* images, a framework's own
    image), the OS's python3 (nvidia/cuda images carry none), or a build from source."""
    version, base = plan.python, plan.base
    command = "python" if version.startswith("2") else "python3"
    row = _releases().get(version, {})
    method: PythonMethod
    if base.python_in_base == version:
        own = _repository(base.image).endswith("python") or base.os == "(from the image)"
        method = "image" if own else "apt"
    elif base.os in ("(unknown)", "(from the image)"):
        method = "apt" if _nvidia_base(plan) else "image"
    elif row:
        return Python(version, "source", row["version"], row.get("pip_below"), command)
    else:
        raise ImpossibleRequest(f"gpuenv does not know how to build Python {version} for {base.image}",
                                code="python-conflict", hint="set `python` to one that the base ships")
    return Python(version, method, None, row.get("pip_below"), command)


def _repository(image: str) -> str:
    return image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def _system_apt(python: Python, spec: EnvSpec, downloads: bool) -> tuple[str, ...]:
    """The OS packages the build needs: none at all on a base that already holds everything (an image
    made from a server's own Python and framework builds offline, with no apt in it)."""
    packages = ["ca-certificates"] if downloads or python.method != "image" else []
    if python.method == "apt":
        packages += ["python3", "python3-pip"] if python.command == "python3" else ["python", "python-pip"]
    if spec.access.ssh is not None:
        packages += ["openssh-server", *REMOTE_SSH_TOOLS]
    return tuple(packages)


# What VS Code's Remote-SSH (and other IDEs' remote helpers) need to install their server over ssh: a
# downloader (curl), tar, ps (procps: the install script checks for a running server) and libstdc++
# (the server is a Node.js binary). tar, bash and coreutils are essential in every Debian/Ubuntu base.
REMOTE_SSH_TOOLS = ("curl", "procps", "libstdc++6")


def _services(spec: EnvSpec) -> list[Service]:
    access, services = spec.access, []
    if access.jupyter is not None:
        env = [("JUPYTER_TOKEN", "${JUPYTER_TOKEN:?run gpuenv generate to write .env}")]
        if access.jupyter.auth == "password":
            assert access.jupyter.password_hash is not None    # spec/rules.py: auth = "password" needs a hash
            env = [("GPUENV_JUPYTER_PASSWORD_HASH", compose_text(access.jupyter.password_hash))]
        services.append(Service("jupyter", ("jupyter", access.jupyter.mode), 8888, access.jupyter.port,
                                Health("http", 8888), tuple(env)))
    if access.gateway is not None:
        token = (("KG_AUTH_TOKEN", "${GPUENV_GATEWAY_TOKEN:?run gpuenv generate to write .env}"),)
        services.append(Service("gateway", ("jupyter", "kernelgateway"), 8889, access.gateway.port,
                                Health("http", 8889), token))
    if access.ssh is not None:
        services.append(Service("ssh", ("/usr/local/lib/gpuenv/start-sshd.sh",), 2222, access.ssh.port,
                                Health("ssh", 2222)))
    if not services:
        services.append(Service("shell", ("sleep", "infinity"), None, None, None))
    return services


def _args(network: Network) -> list[tuple[str, str]]:
    return [
        ("APT_MIRROR", network.apt_mirror or ""),
        ("PIP_INDEX_URL", network.pip_index or "https://pypi.org/simple"),
        ("PIP_EXTRA_INDEX_URL", " ".join(network.pip_extra_indexes)),
        ("PIP_TRUSTED_HOST", " ".join(network.pip_trusted_hosts)),
    ]


def _env(plan: Plan, gpu: bool) -> list[tuple[str, str]]:
    if not gpu:
        return []
    env = [("NVIDIA_VISIBLE_DEVICES", "all"), ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")]
    cuda = _required_cuda(plan)
    if cuda:
        env.append(("NVIDIA_REQUIRE_CUDA", f"cuda>={cuda}"))
    if plan.min_driver:
        env.append(("NVIDIA_REQUIRE_DRIVER", f"driver>={plan.min_driver}"))
    return env


def _required_cuda(plan: Plan) -> Optional[str]:
    """The CUDA the driver must run: the base's, or for wheels what the minimum driver runs (12.0 for
    525.60.13: CUDA minor-version compatibility lets any 12.x wheel run there)."""
    if plan.cuda_source == "base-image" and plan.base.cuda:
        return plan.base.cuda
    runs = nvidia.max_cuda(plan.min_driver) if plan.min_driver else None
    if runs is None:
        return None
    return f"{runs[:-2]}.0" if runs.endswith(".x") else runs


def _labels(plan: Plan, spec: EnvSpec, digest: str, summary: str) -> list[tuple[str, str]]:
    frameworks = ",".join(f"{b.project}=={b.version}" for b in plan.builds if b.family != "base")
    return [
        ("org.opencontainers.image.title", spec.name or "gpuenv"),
        ("org.opencontainers.image.description", summary),
        ("org.opencontainers.image.base.name", plan.base.image),
        ("io.gpuenv.version", __version__),
        ("io.gpuenv.spec-sha256", digest),
        ("io.gpuenv.frameworks", frameworks),
        ("io.gpuenv.families", ",".join(dict.fromkeys(b.family for b in plan.builds if b.family != "base"))),
        ("io.gpuenv.python", plan.python),
        ("io.gpuenv.cuda", plan.cuda or ""),
        ("io.gpuenv.cuda-source", plan.cuda_source),
        ("io.gpuenv.cudnn", plan.cudnn or ""),
        ("io.gpuenv.min-driver", plan.min_driver or ""),
        ("io.gpuenv.gpu-archs", ",".join(plan.gpu_archs)),
    ]


def _summary(plan: Plan) -> str:
    names = ", ".join(b.label for b in plan.builds if b.family != "base") or "no framework"
    if plan.cuda:
        where = "the base image" if plan.cuda_source == "base-image" else "the wheels"
        cuda = f"CUDA {plan.cuda} from {where}" + (f", cuDNN {plan.cudnn}" if plan.cudnn else "")
    else:
        cuda = "CPU only"
    driver = f", driver >= {plan.min_driver}" if plan.min_driver else ""
    archs = f", {plan.gpu_archs[0]}..{plan.gpu_archs[-1]}" if plan.gpu_archs else ""
    return f"{names} on Python {plan.python}; {cuda}{driver}{archs}"


def os_release(os_name: str) -> tuple[str, tuple[int, ...]]:
    """("ubuntu", (16, 4)) from "ubuntu16.04"; ("debian", (12,)) from "debian12"."""
    for family in ("ubuntu", "debian"):
        if os_name.startswith(family):
            return family, minor_key(os_name[len(family):])
    return "", ()
