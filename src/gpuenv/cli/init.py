"""`gpuenv init [REQUEST...]`: write a gpuenv.toml from a short request and flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import click
from rich.console import Console
from rich.markup import escape

from gpuenv.cli.main import F, global_options
from gpuenv.cli.output import Result
from gpuenv.errors import BadInput, GpuenvError, StorageError
from gpuenv.spec import SPEC_FILE, validate_spec
from gpuenv.spec.request import parse_request
from gpuenv.spec.write import spec_data, to_toml

if TYPE_CHECKING:
    from gpuenv.spec.load import FieldPath
    from gpuenv.spec.model import EnvSpec

# Which flag stands for which spec field, so that a bad flag value is reported as that flag.
_FLAGS: dict[tuple[str, ...], str] = {
    ("name",): "--name",
    ("python",): "--python",
    ("frameworks",): "REQUEST",
    ("packages",): "--package",
    ("requirements",): "--requirements",
    ("apt",): "--apt",
    ("base",): "--base",
    ("gpu", "devices"): "--devices / --cpu",
    ("gpu", "driver"): "--driver",
    ("gpu", "model"): "--gpu-name",
    ("gpu", "compute_capability"): "--gpu",
    ("gpu", "cuda"): "--cuda",
    ("gpu", "toolkit"): "--toolkit",
    ("access", "bind"): "--bind",
    ("access", "jupyter"): "--jupyter",
    ("access", "jupyter", "port"): "--jupyter-port",
    ("access", "gateway"): "--gateway",
    ("access", "gateway", "port"): "--gateway-port",
    ("access", "ssh"): "--ssh",
    ("access", "ssh", "port"): "--ssh-port",
    ("access", "ssh", "authorized_key"): "--ssh-key",
    ("access", "ports"): "--port",
    ("workspace", "host"): "--workspace",
    ("workspace", "mount"): "--mount",
    ("network", "pip_index"): "--pip-index",
    ("network", "pip_extra_indexes"): "--pip-extra-index",
    ("network", "pip_trusted_hosts"): "--pip-trusted-host",
    ("network", "apt_mirror"): "--apt-mirror",
    ("network", "registry_mirror"): "--registry-mirror",
    ("network", "http_proxy"): "--http-proxy",
    ("network", "https_proxy"): "--https-proxy",
    ("network", "ca_certificates"): "--ca",
}


_SPEC_OPTIONS = [
    click.option("--name", help="Environment name (default: the folder's name)."),
    click.option("--python", help="Python version, e.g. 3.6 (default: resolved)."),
    click.option("--jupyter", "--lab", "--jupyterlab", "jupyter", flag_value="lab", help="JupyterLab with a token."),
    click.option("--notebook", "jupyter", flag_value="notebook", help="Classic Jupyter Notebook with a token."),
    click.option("--jupyter-port", type=int, help="Host port of Jupyter [8888]."),
    click.option("--gateway", "--kernel-gateway", "--hydrogen", "gateway", is_flag=True,
                 help="A Jupyter Kernel Gateway (Atom Hydrogen, remote kernels)."),
    click.option("--gateway-port", type=int, help="Host port of the kernel gateway [8889]."),
    click.option("--ssh", is_flag=True, help="An SSH server with your public key."),
    click.option("--ssh-port", type=int, help="Host port of SSH [2222]."),
    click.option("--ssh-key", help="Public key file allowed to log in [auto]."),
    click.option("--port", "ports", multiple=True, help="More ports: 6006 or HOST:CONTAINER. Repeatable."),
    click.option("--tensorboard", is_flag=True, help="Publish TensorBoard's port 6006."),
    click.option("--bind", help="Host address the ports listen on [127.0.0.1]."),
    click.option("-p", "--package", "packages", multiple=True, help="More pip packages. Repeatable."),
    click.option("--requirements", help="A requirements.txt, relative to the spec's folder."),
    click.option("--apt", multiple=True, help="Debian/Ubuntu packages. Repeatable."),
    click.option("--base", help="Base image, instead of the resolved one."),
    click.option("--devices", help="GPUs: all, none, free (chosen at `up`), or indexes/UUIDs separated by commas."),
    click.option("--cpu", is_flag=True, help="No GPU: CPU only (the same as --devices none)."),
    click.option("--driver", help="Plan for this NVIDIA driver, e.g. 384.90 [auto: this host]."),
    click.option("--gpu-name", help="Plan for this GPU model [auto: this host]."),
    click.option("--gpu", "compute_capability", help="Plan for these compute capabilities, e.g. 7.0,8.6."),
    click.option("--cuda", help="Build for this CUDA version, e.g. 9.0 [auto]."),
    click.option("--toolkit", help="devel: a compiler of the frameworks' CUDA (nvcc, its headers, gcc); "
                 "runtime: none [auto: devel when a package is compiled here]."),
    click.option("--workspace", help="Host folder to mount [.]."),
    click.option("--mount", help="Where the workspace appears in the container [/workspace]."),
    click.option("--pip-index", help="pip index URL (a mirror)."),
    click.option("--pip-extra-index", multiple=True, help="Extra pip index URL. Repeatable."),
    click.option("--pip-trusted-host", multiple=True, help="pip trusted host. Repeatable."),
    click.option("--apt-mirror", help="apt mirror URL."),
    click.option("--registry-mirror", help="Registry mirror for base images."),
    click.option("--http-proxy", help="HTTP proxy URL."),
    click.option("--https-proxy", help="HTTPS proxy URL."),
    click.option("--ca", "ca_certificates", multiple=True, help="CA certificate file; 'auto' or 'none'. Repeatable."),
]


def spec_options(fn: F) -> F:
    """The flags that stand for spec fields (shared by `gpuenv init` and `gpuenv up REQUEST`)."""
    for option in reversed(_SPEC_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@click.argument("request", nargs=-1)
@click.option("-f", "--file", "file", type=click.Path(path_type=Path), default=Path(SPEC_FILE),
              show_default=True, help="Where to write; '-' prints it instead.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@spec_options
@global_options
def init(request: tuple[str, ...], file: Path, force: bool, **flags: Any) -> Result:
    """Write a gpuenv.toml from a short REQUEST and flags.

    \b
    gpuenv init tensorflow==1.2.1 --python 3.6 --jupyter
    gpuenv init "tensorflow 1.2.1 py3 jupyter"
    gpuenv init torch --jupyter --tensorboard
    gpuenv init mxnet-cu90mkl==1.2.1 --gateway -p matplotlib --apt libgfortran3
    """
    to_stdout = str(file) == "-"
    target = Path.cwd() / SPEC_FILE if to_stdout else file
    if not to_stdout and target.exists() and not force:
        raise BadInput(f"{target} already exists", "pass --force to overwrite it, or --file OTHER.toml")
    spec = spec_from_request(request, flags, target.parent)
    text = _HEADER + to_toml(spec_data(spec, full=False))
    if not to_stdout:
        _write_atomically(target, text)
    result = {"file": None if to_stdout else str(target), "spec": spec_data(spec, full=True)}
    return Result(result, lambda console: _show(console, target, text, to_stdout))


def spec_from_request(request: tuple[str, ...], flags: dict[str, Any], folder: Path) -> EnvSpec:
    """The EnvSpec a request and the spec flags describe (SpecError naming the flag for a bad value)."""
    data = _merge(parse_request(list(request)), _from_flags(flags))
    return validate_spec(data, "the command line", folder, _flag_of, _hint())


def _hint() -> str:
    """Names the verb that was run (`gpuenv up --help`), not always init."""
    context = click.get_current_context(silent=True)
    verb = context.info_name if context is not None and context.info_name else "init"
    return f"fix the flags or request words listed; nothing was written. `gpuenv {verb} --help` lists the flags"

_HEADER = (
    "# gpuenv environment spec: check it with `gpuenv spec check`.\n"
    "# Every key and its default: README.md, section 'The spec'.\n\n"
)


def _from_flags(flags: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path, value in _flag_values(flags):
        table = data
        for key in path[:-1]:
            table = table.setdefault(key, {})
        table[path[-1]] = value
    return data


def _flag_values(f: dict[str, Any]) -> list[tuple[tuple[str, ...], Any]]:
    ports: list[Union[int, str]] = [_port(p) for p in f["ports"]] + ([6006] if f["tensorboard"] else [])
    pairs: list[tuple[tuple[str, ...], Any]] = [
        (("name",), f["name"]),
        (("python",), f["python"]),
        (("packages",), list(f["packages"])),
        (("requirements",), f["requirements"]),
        (("apt",), list(f["apt"])),
        (("base",), f["base"]),
        (("gpu", "devices"), _devices(f["devices"], f["cpu"])),
        (("gpu", "driver"), f["driver"]),
        (("gpu", "model"), f["gpu_name"]),
        (("gpu", "compute_capability"), _split(f["compute_capability"])),
        (("gpu", "cuda"), f["cuda"]),
        (("gpu", "toolkit"), f["toolkit"]),
        (("access", "bind"), f["bind"]),
        (("access", "ports"), ports),
        (("workspace", "host"), f["workspace"]),
        (("workspace", "mount"), f["mount"]),
        (("network", "pip_index"), f["pip_index"]),
        (("network", "pip_extra_indexes"), list(f["pip_extra_index"])),
        (("network", "pip_trusted_hosts"), list(f["pip_trusted_host"])),
        (("network", "apt_mirror"), f["apt_mirror"]),
        (("network", "registry_mirror"), f["registry_mirror"]),
        (("network", "http_proxy"), f["http_proxy"]),
        (("network", "https_proxy"), f["https_proxy"]),
        (("network", "ca_certificates"), _ca(f["ca_certificates"])),
    ]
    pairs += _access_pairs(f)
    return [(path, value) for path, value in pairs if value not in (None, [], ())]


def _access_pairs(f: dict[str, Any]) -> list[tuple[tuple[str, ...], Any]]:
    jupyter: Optional[dict[str, Any]] = None
    if f["jupyter"] or f["jupyter_port"] is not None:
        jupyter = {"mode": f["jupyter"] or "lab", **_given(port=f["jupyter_port"])}
    gateway: Optional[dict[str, Any]] = {} if f["gateway"] else None
    if f["gateway_port"] is not None:
        gateway = {"port": f["gateway_port"]}
    ssh: Optional[dict[str, Any]] = None
    if f["ssh"] or f["ssh_port"] is not None or f["ssh_key"]:
        ssh = _given(port=f["ssh_port"], authorized_key=f["ssh_key"])
    return [(("access", "jupyter"), jupyter), (("access", "gateway"), gateway), (("access", "ssh"), ssh)]


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _port(text: str) -> Union[int, str]:
    return int(text) if text.isdigit() else text


def _devices(text: Optional[str], cpu: bool = False) -> Union[str, list[Union[int, str]], None]:
    if cpu:
        if text not in (None, "none"):
            raise BadInput(f"--cpu and --devices {text} contradict each other", "give one of them")
        return "none"
    if text is None or text in ("all", "none", "free"):
        return text
    return [_port(item) for item in _split(text) or []]


def _split(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def _ca(values: tuple[str, ...]) -> Union[str, list[str]]:
    if len(values) == 1 and values[0] in ("auto", "none"):
        return values[0]
    return list(values)


def _merge(request: dict[str, Any], flags: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Request and flags together; lists add up, a value set differently by both is refused."""
    merged = dict(request)
    for key, value in flags.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value, f"{path}{key}.")
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [item for item in value if item not in old]
        elif old is not None and old != value:
            raise BadInput(f"the request and a flag both set {path}{key}: {old!r} and {value!r}",
                           "give it once, in the request or as a flag")
        else:
            merged[key] = value
    return merged


def _flag_of(path: FieldPath) -> tuple[str, Optional[int]]:
    names = tuple(p for p in path if isinstance(p, str))
    for depth in range(len(names), 0, -1):
        if names[:depth] in _FLAGS:
            return _FLAGS[names[:depth]], None
    return "the command line", None


def _write_atomically(target: Path, text: str) -> None:
    """Write through a temporary file in the same folder, so that a reader never sees half a spec.

    The file is created with mode 0666 less the umask, as any file the user writes would be. A folder
    that cannot be written (read-only, not permitted, full) is a StorageError, and nothing is left.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException as exc:
        _remove(tmp)
        if not isinstance(exc, OSError):
            raise
        raise StorageError.from_os(exc, target.absolute()) or GpuenvError(
            f"cannot write {target}: {exc.strerror or exc}", "pick a folder you can write to with --file") from None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:                 # a folder that is not one, or not ours: nothing was made there
        pass


def _show(console: Console, target: Path, text: str, to_stdout: bool) -> None:
    if to_stdout:
        console.print(text, markup=False, end="")
        return
    console.print(f"[green]wrote[/green] {escape(str(target))}")
    console.print(text, markup=False, end="")
    console.print(f"next: [bold]gpuenv spec check {escape(str(target))}[/bold]")
