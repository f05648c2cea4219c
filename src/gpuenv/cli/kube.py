"""`gpuenv generate --kubernetes`'s options: what only the cluster side knows (the pushed image, the
workspace claim or a node's folder, the runtime class, a pull secret), checked before anything is planned."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import click

from gpuenv.cli.main import F
from gpuenv.errors import BadInput
from gpuenv.registry import ref as refs
from gpuenv.render import Rendered
from gpuenv.render.kubernetes import KUBERNETES_FILE, KubeSettings, kubernetes
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
