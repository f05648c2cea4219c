"""The environment spec (`gpuenv.toml`) as a typed model.

The model says what the user asked for and decides no versions: an absent Python or "auto" driver
is resolved later. Each field carries one valid example, shown to the user when the field is wrong.
Field checks live in `values.py`; rules that tie fields together live in `rules.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr,
                      SerializerFunctionWrapHandler, model_serializer, model_validator)

from gpuenv.kb.mirrors import preset
from gpuenv.spec import values as v


class _Table(BaseModel):
    """A TOML table: unknown keys are errors, types are taken as TOML gives them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Port = Annotated[int, AfterValidator(v.port)]
HttpUrl = Annotated[str, AfterValidator(v.url("http", "https", login=False))]
ProxyUrl = Annotated[str, AfterValidator(v.url("http", "https", "socks5", "socks5h"))]
Framework = Annotated[str, AfterValidator(v.framework_requirement)]
Package = Annotated[str, AfterValidator(v.package_requirement)]
T = TypeVar("T")
Added = Union[str, list[str]]      # a network setting a requirements file added: an index URL, or URLs and hosts
Requirements = Annotated[list[T], AfterValidator(v.unique_projects)]


def _on_off(value: Any) -> Any:
    """`jupyter = true` (or gateway, ssh) is the table with its defaults; `false` is no table."""
    if value is True:
        return {}
    return None if value is False else value


_SWITCHED = ("jupyter", "gateway", "ssh")


class PortMapping(_Table):
    """A port published on the host: `6006`, or `"16006:6006"` (HOST:CONTAINER)."""

    host: Port
    container: Port

    @model_validator(mode="before")
    @classmethod
    def _from_toml(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"host": value, "container": value}
        if isinstance(value, str) and re.fullmatch(r"\d{1,5}(:\d{1,5})?", value):
            host, _, container = value.partition(":")
            return {"host": int(host), "container": int(container or host)}
        if isinstance(value, dict):
            return value
        raise ValueError("must be a port number such as 6006, or \"HOST:CONTAINER\" such as \"16006:6006\"")

    @model_serializer
    def _to_toml(self) -> Union[int, str]:
        return self.host if self.host == self.container else f"{self.host}:{self.container}"


class Gpu(_Table):
    devices: Annotated[Union[str, list[Union[int, str]]], PlainValidator(v.gpu_devices)] = Field(
        default="all", examples=[[0, 1]],
        description='"all", "none" (CPU only), "free" (`count` GPUs no one uses, chosen at `up`), or GPU indexes '
                    'and UUIDs'
    )
    count: Optional[Annotated[int, Field(ge=1, le=64)]] = Field(
        default=None, examples=[2], description='with devices = "free": how many GPUs to take (default 1)'
    )
    idle_memory_mib: Annotated[int, Field(ge=0)] = Field(
        default=1024, examples=[1024], description='with devices = "free": a GPU using this much memory or more is busy'
    )
    idle_utilization: Annotated[int, Field(ge=0, le=100)] = Field(
        default=10, examples=[10], description='with devices = "free": a GPU this busy (percent) or more is busy'
    )
    driver: Annotated[str, AfterValidator(v.driver_version)] = Field(
        default="auto", examples=["384.90"], description='driver to plan for; "auto" = this host\'s'
    )
    model: str = Field(
        default="auto", min_length=1, examples=["Tesla V100-SXM2-16GB"], description="GPU model to plan for"
    )
    compute_capability: Annotated[Union[str, list[str]], PlainValidator(v.compute_capabilities)] = Field(
        default="auto", examples=[["6.1", "7.0"]], description="GPU compute capabilities to plan for"
    )
    cuda: Annotated[str, AfterValidator(v.cuda_version)] = Field(
        default="auto", examples=["9.0"],
        description='CUDA to build for; "auto" = newest that driver and frameworks allow'
    )
    toolkit: Literal["auto", "runtime", "devel"] = Field(
        default="auto", examples=["devel"],
        description='"devel": a compiler of the CUDA the frameworks use (nvcc, headers, gcc); "runtime": none; '
                    '"auto" = devel when a package is compiled from source'
    )


class Jupyter(_Table):
    mode: Literal["lab", "notebook"] = Field(
        default="lab", examples=["lab"], description="JupyterLab or the classic notebook"
    )
    port: Port = Field(default=8888, examples=[8888], description="port on the host")
    auth: Literal["token", "password"] = Field(
        default="token", examples=["token"], description="a random token, or a password"
    )
    password_hash: Optional[Annotated[str, AfterValidator(v.password_hash)]] = Field(
        default=None, examples=["argon2:$argon2id$v=19$m=10240,t=10,p=8$c2FsdA$aGFzaA"],
        description="with auth = password"
    )


class Gateway(_Table):
    """A Jupyter Kernel Gateway, for remote-kernel clients such as Atom Hydrogen; token auth only."""

    port: Port = Field(default=8889, examples=[8889], description="port on the host")


class Ssh(_Table):
    port: Port = Field(default=2222, examples=[8822], description="port on the host")
    authorized_key: Annotated[str, AfterValidator(v.authorized_key)] = Field(
        default="auto", examples=["~/.ssh/id_ed25519.pub"], description='public key allowed to log in; "auto" = yours'
    )


class Access(_Table):
    bind: Annotated[str, AfterValidator(v.ip_address)] = Field(
        default="127.0.0.1", examples=["127.0.0.1"], description="host address the ports listen on"
    )
    jupyter: Optional[Jupyter] = Field(default=None, examples=[{"mode": "lab"}])
    gateway: Optional[Gateway] = Field(default=None, examples=[{"port": 8889}])
    ssh: Optional[Ssh] = Field(default=None, examples=[{"port": 8822}])
    ports: list[PortMapping] = Field(
        default_factory=list, examples=[[6006]], description="more ports, e.g. TensorBoard"
    )

    @model_validator(mode="before")
    @classmethod
    def _switches(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, **{k: _on_off(data[k]) for k in _SWITCHED if k in data}}
        return data


class Workspace(_Table):
    host: Annotated[str, AfterValidator(v.host_path)] = Field(
        default=".", examples=["."], description="host folder, relative to the spec's folder"
    )
    mount: Annotated[str, AfterValidator(v.container_path)] = Field(
        default="/workspace", examples=["/workspace"], description="where it appears in the container"
    )
    user: Annotated[str, AfterValidator(v.run_as)] = Field(
        default="host", examples=["host"], description='"host" runs as your UID/GID'
    )
    allow_system_folder: bool = Field(
        default=False, examples=[True], description="true lets `host` be /, a system folder (/etc, /usr, /var...), "
        "/home, /tmp, or your home folder itself: the container can then change this host (spec/workspace.py)"
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """allow_system_folder appears only when set: a spec that does not use it keeps its hash."""
        data = handler(self)
        if not data.get("allow_system_folder"):
            data.pop("allow_system_folder", None)
        return data


class Network(_Table):
    """One network policy for builds and the running containers alike. A `preset` (kb/data/mirrors.toml)
    fills the mirrors this table leaves unset; `filled` says which it filled."""

    preset: Optional[Annotated[str, AfterValidator(v.network_preset)]] = Field(
        default=None, examples=["cn"], description="region preset of mirrors; explicit settings win"
    )
    pip_index: Optional[HttpUrl] = Field(default=None, examples=["https://pypi.tuna.tsinghua.edu.cn/simple"])
    pip_extra_indexes: list[HttpUrl] = Field(
        default_factory=list, examples=[["https://download.pytorch.org/whl/cu121"]]
    )
    pip_trusted_hosts: list[Annotated[str, AfterValidator(v.hostname)]] = Field(
        default_factory=list, examples=[["pypi.douban.com"]]
    )
    apt_mirror: Optional[HttpUrl] = Field(default=None, examples=["http://mirrors.aliyun.com"])
    pytorch_wheels: Optional[HttpUrl] = Field(
        default=None, examples=["https://mirrors.nju.edu.cn/pytorch/whl"],
        description="a copy of https://download.pytorch.org/whl (same layout) that PyTorch's wheels come from",
    )
    wheel_mirrors: dict[HttpUrl, HttpUrl] = Field(
        default_factory=dict, examples=[{"https://data.pyg.org/whl": "https://mirror.example.org/pyg/whl"}],
        description="copies of other wheel servers (the PyTorch ecosystem's, kb/data/companions.toml), by URL prefix",
    )
    registry_mirror: Optional[Annotated[str, AfterValidator(v.registry_mirror)]] = Field(
        default=None, examples=["registry.example.com:5000"]
    )
    http_proxy: Optional[ProxyUrl] = Field(default=None, examples=["http://proxy.example.com:3128"])
    https_proxy: Optional[ProxyUrl] = Field(default=None, examples=["http://proxy.example.com:3128"])
    no_proxy: list[Annotated[str, AfterValidator(v.no_proxy_entry)]] = Field(
        default_factory=list, examples=[["localhost", "127.0.0.1", ".corp.example.com"]]
    )
    ca_certificates: Annotated[Union[str, list[str]], PlainValidator(v.ca_certificates)] = Field(
        default="auto", examples=[["/usr/local/share/ca-certificates/corp.crt"]],
        description='"auto" = the host\'s extra CAs'
    )
    ca_in_image: bool = Field(
        default=False, examples=[True],
        description="also install the CAs into the image's trust store, for pip at run time"
    )
    _filled: tuple[str, ...] = PrivateAttr(default=())
    _from_requirements: dict[str, Added] = PrivateAttr(default_factory=dict)   # spec/rules.py sets it

    @model_validator(mode="after")
    def _apply_preset(self) -> "Network":
        if self.preset is None:
            return self
        filled = []
        for setting, url in preset(self.preset).fills().items():
            if setting not in self.model_fields_set:
                object.__setattr__(self, setting, url)
                filled.append(setting)
        self._filled = tuple(filled)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The keys added in issue 7 appear only when set: a spec that does not use them keeps its hash."""
        data = handler(self)
        for key in ("preset", "pytorch_wheels", "wheel_mirrors"):
            if data.get(key) in (None, {}):
                data.pop(key, None)
        return data

    @property
    def from_requirements(self) -> dict[str, Added]:
        """What the requirements file's --index-url, --extra-index-url and --trusted-host added here."""
        return dict(self._from_requirements)

    @property
    def filled(self) -> dict[str, str]:
        """The settings the preset filled, with their values (explicit settings are never among them)."""
        return {name: getattr(self, name) for name in self._filled}


class Run(_Table):
    """How the container runs: shared memory for DataLoader workers, restart policy, the compose GPU form, and
    the limits that keep one environment from taking the whole server (host/limits.py)."""

    shm_size: Annotated[str, AfterValidator(v.size)] = Field(
        default="8g", examples=["16g"], description="size of /dev/shm (PyTorch DataLoader workers share tensors there)"
    )
    ipc: Literal["private", "host"] = Field(
        default="private", examples=["host"], description='"host" shares the host\'s /dev/shm instead of shm_size'
    )
    restart: Literal["no", "unless-stopped", "always", "on-failure"] = Field(
        default="unless-stopped", examples=["no"], description="restart policy"
    )
    compose_gpu: Literal["deploy", "runtime"] = Field(
        default="deploy", examples=["runtime"],
        description='"deploy" (deploy.resources.reservations.devices) or "runtime" (runtime: nvidia, old compose)',
    )
    cpus: Annotated[str, PlainValidator(v.cpus)] = Field(
        default="auto", examples=[8],
        description='CPUs each container may use (7.5 works); "auto" = all but one of the engine\'s host\'s when it '
                    'has more than 2; "none" (or 0) = no limit',
    )
    memory: Annotated[str, PlainValidator(v.memory)] = Field(
        default="auto", examples=["32g"],
        description='memory each container may use, swap included; past it the kernel kills a process. "auto" = the '
                    'engine\'s host\'s memory less max(2 GiB, 10%); "none" (or 0) = no limit',
    )
    pids: Annotated[Union[str, int], PlainValidator(v.pids)] = Field(
        default="auto", examples=[4096],
        description='processes and threads each container may run at once; "auto" = 32768; "none" (or 0) = no limit',
    )


class EnvSpec(_Table):
    """A whole gpuenv.toml."""

    name: Optional[Annotated[str, AfterValidator(v.env_name)]] = Field(default=None, examples=["tf-1.2.1-py3"])
    python: Optional[Annotated[str, AfterValidator(v.python_version)]] = Field(default=None, examples=["3.6"])
    frameworks: Requirements[Framework] = Field(default_factory=list, examples=[["tensorflow==1.2.1"]])
    packages: Requirements[Package] = Field(default_factory=list, examples=[["matplotlib", "pandas>=1.0"]])
    requirements: Optional[Annotated[str, AfterValidator(v.host_path)]] = Field(
        default=None, examples=["requirements.txt"]
    )
    apt: Annotated[list[Annotated[str, AfterValidator(v.apt_package)]], AfterValidator(v.unique)] = Field(
        default_factory=list, examples=[["libgfortran3"]]
    )
    base: Optional[Annotated[str, AfterValidator(v.image_reference)]] = Field(
        default=None, examples=["nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"]
    )
    gpu: Gpu = Field(default_factory=Gpu, examples=[{"devices": "all"}])
    access: Access = Field(default_factory=Access, examples=[{"bind": "127.0.0.1"}])
    workspace: Workspace = Field(default_factory=Workspace, examples=[{"mount": "/workspace"}])
    network: Network = Field(default_factory=Network, examples=[{"pip_index": "https://pypi.org/simple"}])
    run: Run = Field(default_factory=Run, examples=[{"shm_size": "16g"}])
