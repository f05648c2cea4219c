"""Kubernetes in the CLI: `gpuenv generate --kubernetes`'s options (what only the cluster side knows: the
pushed image, the workspace claim or a node's folder, the runtime class, a pull secret), checked before
anything is planned; and `gpuenv up --on kubernetes` / `down --on kubernetes` (run/kube.py applies)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.markup import escape

from gpuenv import environment, paths
from gpuenv.cli.main import F
from gpuenv.cli.output import Result
from gpuenv.errors import BadInput
from gpuenv.registry import ref as refs
from gpuenv.render import Rendered
from gpuenv.render.kubernetes import AUTHORIZED_KEYS, KUBERNETES_FILE, KubeSettings, kubernetes
from gpuenv.render.quote import yaml_document
from gpuenv.render.recipe import Inputs
from gpuenv.run import kube
from gpuenv.spec.load import load_spec
from gpuenv.render.write import File, check_foreign, write_more
from gpuenv.spec.values import UNWRITABLE

_QUANTITY = re.compile(r"[1-9][0-9]{0,5}(Mi|Gi|Ti)")
_OBJECT = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")     # a DNS subdomain: a Kubernetes object's name


def kube_options(fn: F) -> F:
    options = [
        click.option("--pull-secret", metavar="NAME", help="With --kubernetes: the namespace's registry login "
                     "(imagePullSecrets)."),
        click.option("--runtime-class", metavar="NAME", help="With --kubernetes: runtimeClassName (e.g. nvidia, "
                     "where the NVIDIA runtime is not the nodes' default)."),
        click.option("--host-path", metavar="PATH", help="With --kubernetes: the workspace is this folder on the "
                     "node (hostPath; it must exist, owned by your UID) instead of a claim."),
        click.option("--storage-class", metavar="NAME", help="With --kubernetes: the claims' storage class "
                     "(default: the cluster's)."),
        click.option("--workspace-size", metavar="SIZE", help="With --kubernetes: the workspace claim (default 20Gi)."),
        click.option("--image", metavar="REF", help="With --kubernetes: the image as pushed (gpuenv push): "
                     "REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:..."),
        click.option("--kubernetes", is_flag=True, help=f"Also write {KUBERNETES_FILE}: the environment as "
                     "Kubernetes objects (needs --image)."),
    ]
    for option in options:
        fn = option(fn)
    return fn


def kube_settings(kubernetes_asked: bool, image: Optional[str], workspace_size: Optional[str],
                  storage_class: Optional[str], host_path: Optional[str], runtime_class: Optional[str],
                  pull_secret: Optional[str]) -> Optional[KubeSettings]:
    """The settings of --kubernetes, every option checked (BadInput naming the option); None without it."""
    given = {"--image": image, "--workspace-size": workspace_size, "--storage-class": storage_class,
             "--host-path": host_path, "--runtime-class": runtime_class, "--pull-secret": pull_secret}
    if not kubernetes_asked:
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise BadInput(f"{', '.join(stray)} only go with --kubernetes", "add --kubernetes, or leave them out")
        return None
    if image is None:
        raise BadInput("--kubernetes needs --image: a cluster pulls the image from a registry",
                       "push it first (gpuenv push REGISTRY/REPO:TAG), then --image REGISTRY/REPO:TAG "
                       "(or the REGISTRY/REPO@sha256:... push printed)")
    if workspace_size is not None and host_path is not None:
        raise BadInput("--workspace-size and --host-path exclude each other", "a hostPath workspace has no claim")
    return KubeSettings(image=str(refs.parse(image)), workspace_size=_quantity(workspace_size or "20Gi"),
                        storage_class=_object("--storage-class", storage_class),
                        host_path=_node_path(host_path), runtime_class=_object("--runtime-class", runtime_class),
                        pull_secret=_object("--pull-secret", pull_secret))


def _quantity(text: str) -> str:
    if not _QUANTITY.fullmatch(text):
        raise BadInput(f"--workspace-size {text!r} is not a size a claim takes", "write it as 20Gi, 500Gi or 2Ti")
    return text


def _object(flag: str, name: Optional[str]) -> Optional[str]:
    if name is not None and not _OBJECT.fullmatch(name):
        raise BadInput(f"{flag} {name!r} is not a Kubernetes object name",
                       "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit")
    return name


def _node_path(path: Optional[str]) -> Optional[str]:
    if path is None:
        return None
    if not path.startswith("/") or UNWRITABLE.search(path) or path.rstrip("/") == "" or ".." in Path(path).parts:
        raise BadInput(f"--host-path {path!r} is not an absolute folder on the node",
                       "give the folder's absolute path on the node, such as /data/you/project")
    return path


def check_kube_file(settings: Optional[KubeSettings], out: Path, force: bool) -> None:
    """Before planning: a kubernetes.yaml of the user's own in `out` is never replaced (unless --force)."""
    if settings is not None:
        check_foreign([KUBERNETES_FILE], out, force)


def write_kube_file(settings: Optional[KubeSettings], rendered: Rendered, out: Path, force: bool) -> list[str]:
    if settings is None:
        return []
    text = kubernetes(rendered.recipe, settings, rendered.image)
    return write_more([File(KUBERNETES_FILE, text)], out, force)


# --- up --on kubernetes / down --on kubernetes ----------------------------------------------------------------


def cluster_options(fn: F) -> F:
    fn = click.option("--context", "kube_context", metavar="NAME",
                      help="With --on kubernetes: the kubeconfig context (default: its current one).")(fn)
    fn = click.option("--namespace", metavar="NS",
                      help="With --on kubernetes: the namespace (default: the context's, else default).")(fn)
    return click.option("--on", "target", type=click.Choice(["docker", "kubernetes", "slurm"]), default="docker",
                        show_default=True, help="Where it runs: the Docker engine, the cluster of your "
                        f"kubeconfig ({KUBERNETES_FILE} of `gpuenv generate --kubernetes`), or Slurm (Jupyter as "
                        "a job on a node, reached through an SSH tunnel).")(fn)


def up_on_kubernetes(spec_file: Path, out: Optional[Path], namespace: Optional[str], context: Optional[str],
                     wait: bool, timeout: float = 600) -> Result:
    """Apply kubernetes.yaml and the access Secret, wait for the Pod, forward its ports; what this run
    created is deleted again when the Pod cannot start."""
    folder = (out or spec_file.parent).resolve()
    objects = kube.read_manifests(folder)          # before the cluster is asked: a missing file says so first
    spec = load_spec(spec_file)
    inputs, _ = environment.render_inputs(spec, spec_file.parent.resolve(), folder)
    name, keys = _secret_of(objects)
    api = kube.connect(context, namespace)
    wanted = [kube.secret(name, _labels_of(objects), _secret_data(keys, inputs, folder))] if keys else []
    applied = kube.apply(api, wanted + objects)
    workload = next(o for o in objects if o["kind"] == "StatefulSet")["metadata"]["name"]
    try:
        if wait:
            kube.wait_ready(api, f"{workload}-0", timeout)
    except BaseException:
        kube.rollback(api, applied)
        raise
    tokens = api.read_secret(name) if ("Secret", name) in applied.kept else {k: str(v) for k, v in inputs.tokens.items()}
    data = {"namespace": api.namespace, "context": api.context, "server": api.server,
            "created": [f"{k} {n}" for k, n in applied.created], "changed": [f"{k} {n}" for k, n in applied.changed],
            "kept": [f"{k} {n}" for k, n in applied.kept], "ready": wait, **_forwarded(api, objects, workload, tokens)}
    return Result(data, lambda c: _show_kube(c, data))


def down_on_kubernetes(spec_file: Path, namespace: Optional[str], context: Optional[str], volumes: bool) -> Result:
    objects = kube.read_manifests(spec_file.parent.resolve())
    api = kube.connect(context, namespace)
    name, keys = _secret_of(objects)
    workload = next(o for o in objects if o["kind"] == "StatefulSet")["metadata"]["name"]
    removed = kube.delete(api, objects, volumes, name if keys else None)
    pid = kube.stop_forward(_record(workload))
    removed += [f"kubectl port-forward (pid {pid})"] if pid else []
    data = {"namespace": api.namespace, "removed": removed}
    return Result(data, lambda c: c.print(f"[bold]{escape(workload)}[/bold] is down in {escape(api.namespace)}: "
                                          "removed " + escape(", ".join(removed) or "nothing was there")))


def _secret_of(objects: list[kube.Manifest]) -> tuple[str, list[str]]:
    """The access Secret's name and the keys the Pod reads from it (env secretKeyRefs, sshd's key file)."""
    found: dict[str, list[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef") or {}
            if isinstance(ref, dict) and ref.get("name") and ref.get("key"):
                found.setdefault(str(ref["name"]), []).append(str(ref["key"]))
            if isinstance(node.get("secret"), dict) and node["secret"].get("secretName"):
                found.setdefault(str(node["secret"]["secretName"]), [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(objects)
    if not found:
        return "", []
    name = next(iter(found))
    keys = found[name] + (["authorized_keys"] if AUTHORIZED_KEYS in yaml_document(objects) else [])
    return name, list(dict.fromkeys(keys))


def _secret_data(keys: list[str], inputs: Inputs, folder: Path) -> dict[str, str]:
    data = {k: str(v) for k, v in inputs.tokens.items() if k in keys}
    if "authorized_keys" in keys:
        data["authorized_keys"] = inputs.ssh_key_text or (folder / inputs.ssh_key).expanduser().read_text()
    missing = [k for k in keys if k not in data]
    if missing:
        raise BadInput(f"the Pod reads {', '.join(missing)} from its Secret, which gpuenv cannot give",
                       "generate the manifests again (gpuenv generate --kubernetes ...)")
    return data


def _labels_of(objects: list[kube.Manifest]) -> dict[str, str]:
    return dict(next(o for o in objects if o["kind"] == "StatefulSet")["metadata"].get("labels") or {})


def _record(workload: str) -> Path:
    return paths.state_dir() / "kubernetes" / f"{workload}.json"


def _forwarded(api: kube.ClientApi, objects: list[kube.Manifest], workload: str, tokens: dict[str, str]) -> dict[str, Any]:
    """The port-forward (kubectl's, in the background until `down --on kubernetes`), or its command where
    kubectl is missing; the Jupyter URL with its token."""
    service = next((o for o in objects if o["kind"] == "Service"), None)
    if service is None:
        return {"forward": None, "exec": f"kubectl exec -it -n {api.namespace} {workload}-0 -- bash"}
    ports = [int(p["port"]) for p in service["spec"]["ports"]]
    command = kube.forward_command(shutil.which("kubectl") or "kubectl", api.context, api.namespace,
                                   service["metadata"]["name"], ports)
    found: dict[str, Any] = {"forward_command": shlex.join(command), "forward": None}
    if shutil.which("kubectl"):
        kube.stop_forward(_record(workload))
        found["forward"] = kube.start_forward(command, _record(workload)).pid
    if 8888 in ports and tokens.get("JUPYTER_TOKEN"):
        found["jupyter_url"] = f"http://127.0.0.1:8888/lab?token={tokens['JUPYTER_TOKEN']}"
    return found


def _show_kube(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold]cluster[/bold]  {escape(data['server'])}  namespace {escape(data['namespace'])}")
    for what in ("created", "changed", "kept"):
        if data[what]:
            console.print(f"[bold]{what:<8}[/bold] " + escape(", ".join(data[what])))
    if data.get("forward"):
        console.print(f"[bold]forward[/bold]  kubectl port-forward (pid {data['forward']}) until "
                      "`gpuenv down --on kubernetes`")
    elif data.get("forward_command"):
        console.print(f"[bold]forward[/bold]  no kubectl here; run: {escape(data['forward_command'])}")
    if data.get("exec"):
        console.print(f"[bold]shell[/bold]    {escape(data['exec'])}")
    if data.get("jupyter_url"):
        console.print(f"[bold]jupyter[/bold]  {escape(data['jupyter_url'])}")
