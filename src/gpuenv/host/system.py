"""The host's system, as far as GPU containers care: distribution, cgroups, SELinux, WSL, NVIDIA PCI
devices, the NVIDIA Container Toolkit, CDI specs and the engine's daemon.json."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from gpuenv.host.observe import Observations

DEBIAN_LIKE = {"debian", "ubuntu", "linuxmint", "pop", "raspbian", "kali", "neon", "elementary"}
RHEL_LIKE = {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "scientific", "cloudlinux"}


@dataclass(frozen=True)
class Distro:
    id: str = ""
    version: str = ""
    name: str = ""
    family: str = "other"       # "debian" (Debian, Ubuntu), "rhel" (RHEL, CentOS, Fedora, Rocky...), "other"


@dataclass(frozen=True)
class CdiSpec:
    path: str
    kind: str
    devices: tuple[str, ...]
    driver: Optional[str]       # the driver version its library paths name


@dataclass(frozen=True)
class Toolkit:
    hook: Optional[str] = None          # nvidia-container-runtime-hook / nvidia-container-toolkit
    ctk: Optional[str] = None
    runtime: Optional[str] = None       # nvidia-container-runtime
    cli: Optional[str] = None
    cli_version: Optional[str] = None   # libnvidia-container's version ("1.17.8")

    @property
    def installed(self) -> bool:
        return bool(self.hook or self.runtime)


@dataclass(frozen=True)
class System:
    distro: Distro = field(default_factory=Distro)
    kernel: str = ""
    cgroup: str = ""                    # "v2", "v1" or ""
    selinux: str = ""                   # "enforcing", "permissive" or "" (not present)
    wsl: bool = False                   # /dev/dxg exists (WSL 2 GPU paravirtualisation)
    wsl_libcuda: bool = False
    nvidia_pci: tuple[str, ...] = ()    # PCI addresses of NVIDIA display/3D controllers
    toolkit: Toolkit = field(default_factory=Toolkit)
    cdi_specs: tuple[CdiSpec, ...] = ()
    daemon_json: dict[str, Any] = field(default_factory=dict)
    daemon_json_error: Optional[str] = None
    services: dict[str, str] = field(default_factory=dict)
    docker_root_free_bytes: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_os_release(text: str) -> Distro:
    values = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, re.M))
    ids = {values.get("ID", "").lower(), *values.get("ID_LIKE", "").lower().split()}
    family = "debian" if ids & DEBIAN_LIKE else "rhel" if ids & RHEL_LIKE else "other"
    return Distro(values.get("ID", ""), values.get("VERSION_ID", ""), values.get("PRETTY_NAME", ""), family)


def parse_pci(text: str) -> tuple[str, ...]:
    """`<sysfs path> <class>` lines: keep display (0x0300xx) and 3D (0x0302xx) controllers."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lower().startswith(("0x0300", "0x0302")):
            found.append(parts[0].rsplit("/", 1)[-1])
    return tuple(found)


def parse_toolkit(text: str) -> Toolkit:
    paths = [line.strip() for line in text.splitlines() if line.strip().startswith("/")]

    def named(*names: str) -> Optional[str]:
        return next((p for p in paths if p.rsplit("/", 1)[-1] in names), None)

    version = re.search(r"cli-version:\s*(\S+)|version:?\s*(\d+\.\d+\.\d+)", text)
    return Toolkit(named("nvidia-container-runtime-hook", "nvidia-container-toolkit"), named("nvidia-ctk"),
                   named("nvidia-container-runtime"), named("nvidia-container-cli"),
                   (version.group(1) or version.group(2)) if version else None)


def parse_cdi_specs(text: str) -> tuple[CdiSpec, ...]:
    """`### PATH` then the file (YAML or JSON), for each file in /etc/cdi and /var/run/cdi."""
    specs = []
    for chunk in re.split(r"^### ", text, flags=re.M)[1:]:
        path, _, body = chunk.partition("\n")
        data = _yaml_or_json(body)
        if not isinstance(data, dict):
            continue
        devices = tuple(str(d.get("name")) for d in data.get("devices") or () if isinstance(d, dict))
        driver = re.search(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)", body)
        specs.append(CdiSpec(path.strip(), str(data.get("kind", "")), devices, driver.group(1) if driver else None))
    return tuple(specs)


def _yaml_or_json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(body)
    except yaml.YAMLError:
        return None


def parse_daemon_json(obs: Observations) -> tuple[dict[str, Any], Optional[str]]:
    text = obs.text("daemon-json.txt")
    if text is None or not text.strip():
        return {}, None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"/etc/docker/daemon.json is not valid JSON: {exc}"
    return (data, None) if isinstance(data, dict) else ({}, "/etc/docker/daemon.json is not a JSON object")


def parse_df(text: str) -> Optional[int]:
    """`df -Pk PATH`: the available 1K blocks of its last line."""
    lines = [line.split() for line in text.strip().splitlines()[1:]]
    return int(lines[-1][3]) * 1024 if lines and len(lines[-1]) >= 4 and lines[-1][3].isdigit() else None


def system(obs: Observations) -> System:
    cgroup = (obs.text("cgroup-fs.txt") or "").strip()
    enforce = (obs.text("selinux.txt") or "").strip()
    wsl = obs.raw("wsl.txt")
    daemon, daemon_error = parse_daemon_json(obs)
    services = dict(line.split(" ", 1) for line in (obs.text("services.txt") or "").splitlines() if " " in line)
    return System(
        distro=parse_os_release(obs.text("os-release.txt") or ""),
        kernel=(obs.text("uname.txt") or "").strip(),
        cgroup={"cgroup2fs": "v2", "tmpfs": "v1"}.get(cgroup, ""),
        selinux={"1": "enforcing", "0": "permissive"}.get(enforce, ""),
        wsl=bool(re.search(r"^/dev/dxg$", wsl, re.M)),
        wsl_libcuda="libcuda.so" in wsl,
        nvidia_pci=parse_pci(obs.text("pci-nvidia.txt") or ""),
        toolkit=parse_toolkit(obs.raw("toolkit.txt")),
        cdi_specs=parse_cdi_specs(obs.text("cdi-specs.txt") or ""),
        daemon_json=daemon,
        daemon_json_error=daemon_error,
        services={k: v.strip() for k, v in services.items()},
        docker_root_free_bytes=parse_df(obs.text("docker-root-df.txt") or ""),
    )
