"""`gpuenv up --on kubernetes` and `down --on kubernetes`: kubernetes.yaml (render/kubernetes.py, written
by `gpuenv generate --kubernetes`) applied through the official Python client (`kubernetes` on PyPI, an
optional dependency imported only here), the Pod waited for, its ports forwarded by `kubectl port-forward`.

Order: the Secret (made here from .env's tokens and the spec's public key; an existing one is kept), the
claims (existing ones kept as they are), the Service, the StatefulSet (both patched when they exist).
What this run created is deleted again when a later step fails, or when the Pod cannot start (an image
that cannot be pulled, a Secret key missing): nothing half-applied is left. The API server is asked
once before anything is sent, so an unreachable cluster changes nothing.

No cluster ran where this was written: README, Clusters: Kubernetes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import yaml

from gpuenv.errors import BadInput, ClusterError
from gpuenv.render.kubernetes import KUBERNETES_FILE

Manifest = dict[str, Any]        # one object of kubernetes.yaml, as yaml.safe_load reads it
ORDER = ("Secret", "PersistentVolumeClaim", "Service", "StatefulSet")
KEPT = ("Secret", "PersistentVolumeClaim")     # an existing one is left as it is: the tokens, the workspace
# the waiting reasons of a container that will not start by waiting longer
FATAL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
         "CreateContainerError", "CrashLoopBackOff", "RunContainerError")


class Api(Protocol):
    """The few calls apply, wait and delete make: the client's (ClientApi), or a test's."""

    def exists(self, kind: str, name: str) -> bool: ...
    def create(self, kind: str, body: Manifest) -> None: ...
    def patch(self, kind: str, name: str, body: Manifest) -> None: ...
    def delete(self, kind: str, name: str) -> bool: ...
    def pod(self, name: str) -> Manifest: ...


@dataclass
class Applied:
    created: list[tuple[str, str]] = field(default_factory=list)    # (kind, name), in order
    changed: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)


def read_manifests(folder: Path) -> list[Manifest]:
    path = folder / KUBERNETES_FILE
    if not path.is_file():
        raise BadInput(f"{path} is missing: `up --on kubernetes` applies the manifests generate writes",
                       "gpuenv generate --kubernetes --image REGISTRY/REPO:TAG (after gpuenv push), then again")
    try:
        found = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not YAML: {exc}", "write it again: gpuenv generate --kubernetes ...") from None
    if not all(isinstance(d, dict) and d.get("kind") in ORDER and isinstance(d.get("metadata"), dict)
               and isinstance(d["metadata"].get("name"), str) for d in found):
        raise BadInput(f"{path} holds objects gpuenv did not write (only {', '.join(ORDER)} are applied)",
                       "write it again: gpuenv generate --kubernetes ...")
    return found


def secret(name: str, labels: dict[str, str], data: dict[str, str]) -> Manifest:
    """The access Secret (tokens, sshd's public key) as an object: made at apply time, never written."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": labels}, "stringData": data}


def apply(api: Api, objects: list[Manifest]) -> Applied:
    """Each object in ORDER; on any failure, what this call created is deleted (newest first) and the
    error goes on."""
    done = Applied()
    try:
        for obj in sorted(objects, key=lambda o: ORDER.index(o["kind"])):
            kind, name = obj["kind"], obj["metadata"]["name"]
            if not api.exists(kind, name):
                api.create(kind, obj)
                done.created.append((kind, name))
            elif kind in KEPT:
                done.kept.append((kind, name))
            else:
                api.patch(kind, name, obj)
                done.changed.append((kind, name))
    except BaseException:
        rollback(api, done)
        raise
    return done


def rollback(api: Api, done: Applied) -> None:
    for kind, name in reversed(done.created):
        try:
            api.delete(kind, name)
        except ClusterError:
            pass                          # the first error is the one to report


def wait_ready(api: Api, pod: str, timeout: float, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> None:
    """Until the Pod's Ready condition is True; ClusterError at once for a container that cannot start,
    or after `timeout` (saying what the Pod waits for: scheduling, an image, a volume)."""
    end, last = clock() + timeout, "it was not created yet"
    while clock() < end:
        status = (api.pod(pod) or {}).get("status") or {}
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            return
        last = _waiting(status)
        for reason, message in _container_waits(status):
            if reason in FATAL:
                raise ClusterError(f"the Pod {pod} cannot start: {reason}: {message}", _fix(reason))
        sleep(2)
    raise ClusterError(f"the Pod {pod} was not ready after {timeout:.0f} s: {last}",
                       f"kubectl describe pod {pod}  (events: scheduling, GPUs, volumes)")


def _container_waits(status: Manifest) -> list[tuple[str, str]]:
    found = []
    for c in status.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            found.append((str(waiting["reason"]), str(waiting.get("message") or "")))
    return found


def _waiting(status: Manifest) -> str:
    for c in status.get("conditions") or []:
        if c.get("status") != "True" and c.get("message"):
            return f"{c.get('reason') or c.get('type')}: {c['message']}"
    waits = _container_waits(status)
    return ", ".join(f"{r}: {m}" for r, m in waits) or f"phase {status.get('phase', 'unknown')}"


def _fix(reason: str) -> str:
    if "Image" in reason:
        return ("push the image where the cluster pulls from (gpuenv push), name it with --image, and give a pull "
                "secret (--pull-secret) for a private registry")
    if reason == "CreateContainerConfigError":
        return "the access Secret lacks a key the Pod reads: kubectl describe pod; delete the Secret to have it made again"
    return "kubectl logs POD -c CONTAINER says why"


def delete(api: Api, objects: list[Manifest], volumes: bool, secret_name: Optional[str]) -> list[str]:
    """The workload, the Service and the Secret (and the claims with `volumes`), newest first."""
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    names += [("Secret", secret_name)] if secret_name else []
    gone = []
    for kind, name in sorted(names, key=lambda kn: -ORDER.index(kn[0])):
        if kind == "PersistentVolumeClaim" and not volumes:
            continue
        if api.delete(kind, name):
            gone.append(f"{kind} {name}")
    return gone


# --- the client -------------------------------------------------------------------------------------------


_CALLS = {"Secret": ("core", "secret"), "PersistentVolumeClaim": ("core", "persistent_volume_claim"),
          "Service": ("core", "service"), "StatefulSet": ("apps", "stateful_set")}


@dataclass
class ClientApi:
    """Api through the official client, in one namespace; every failure a ClusterError."""

    core: Any
    apps: Any
    namespace: str
    server: str
    context: str = ""

    def _call(self, kind: str, verb: str, *args: Any) -> Any:
        group, noun = _CALLS[kind]
        method = getattr(self.core if group == "core" else self.apps, f"{verb}_namespaced_{noun}")
        return guarded(self.server, lambda: method(*args, self.namespace, _request_timeout=30)
                       if verb == "create" else method(args[0], self.namespace, *args[1:], _request_timeout=30))

    def exists(self, kind: str, name: str) -> bool:
        return _found(lambda: self._call(kind, "read", name))

    def create(self, kind: str, body: Manifest) -> None:
        self._call(kind, "create", body)

    def patch(self, kind: str, name: str, body: Manifest) -> None:
        self._call(kind, "patch", name, body)

    def delete(self, kind: str, name: str) -> bool:
        return _found(lambda: self._call(kind, "delete", name))

    def pod(self, name: str) -> Manifest:
        try:
            found = guarded(self.server, lambda: self.core.read_namespaced_pod(name, self.namespace, _request_timeout=30))
        except ClusterError as exc:
            if exc.status == 404:
                return {}
            raise
        return dict(self.core.api_client.sanitize_for_serialization(found))

    def read_secret(self, name: str) -> dict[str, str]:
        found = guarded(self.server, lambda: self.core.read_namespaced_secret(name, self.namespace, _request_timeout=30))
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (found.data or {}).items()}


def guarded(server: str, call: Callable[[], Any]) -> Any:
    """The client's call; its failures as ClusterError (the API's status kept, 0 when it did not answer)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call()
    except ApiException as exc:
        raise ClusterError(f"the Kubernetes API at {server} refused: {exc.status} {exc.reason}: "
                           f"{_api_message(exc.body)}", _api_fix(exc.status), status=exc.status or 0) from None
    except (HTTPError, OSError) as exc:
        raise ClusterError(f"the Kubernetes API at {server} does not answer: {exc}",
                           "check the cluster is up and reachable from here (kubectl cluster-info), "
                           "or choose another context (--context; kubectl config get-contexts)") from None


def _api_message(body: Any) -> str:
    try:
        return str(yaml.safe_load(body).get("message") or body)
    except (yaml.YAMLError, AttributeError):
        return str(body)[:300]


def _api_fix(status: Optional[int]) -> str:
    if status in (401, 403):
        return "your kubeconfig's user may not do that in this namespace: ask the cluster admin, or --namespace"
    return "kubectl describe it; the message above is the API server's"


def connect(context: Optional[str], namespace: Optional[str]) -> ClientApi:
    """The client for the kubeconfig's context (KUBECONFIG, else ~/.kube/config), the API server asked
    once: ClusterError when there is no kubeconfig, or its server does not answer."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ClusterError("the Kubernetes client is not installed", "pip install 'gpuenv[kubernetes]' "
                           "(the official `kubernetes` package)") from None
    try:
        contexts, active = config.list_kube_config_contexts()
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            raise ClusterError(f"the kubeconfig has no context {context!r}", "kubectl config get-contexts lists them")
        api_client = config.new_client_from_config(context=chosen["name"])
    except config.ConfigException as exc:
        raise ClusterError(f"no usable kubeconfig: {exc}", "set KUBECONFIG to your cluster's kubeconfig (or put it at "
                           "~/.kube/config: your cluster admin gives it), then kubectl cluster-info to check") from None
    server = str(api_client.configuration.host)
    api_client.configuration.retries = 0
    guarded(server, lambda: client.VersionApi(api_client).get_code(_request_timeout=10))
    space = namespace or chosen.get("context", {}).get("namespace") or "default"
    return ClientApi(client.CoreV1Api(api_client), client.AppsV1Api(api_client), space, server, chosen["name"])


# --- the port-forward ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    pid: int
    ports: tuple[int, ...]
    log: str


def forward_command(kubectl: str, context: str, namespace: str, service: str, ports: list[int]) -> list[str]:
    """kubectl's port-forward of the Service's ports, each on the same port of this host's 127.0.0.1."""
    where = (["--context", context] if context else []) + ["--namespace", namespace]
    return [kubectl, *where, "port-forward", "--address", "127.0.0.1", f"service/{service}", *(f"{p}:{p}" for p in ports)]


def start_forward(command: list[str], record: Path, settle: float = 2.0) -> Forward:
    """`kubectl port-forward` in the background (its own session: it outlives this command), recorded in
    `record` for `down`; ClusterError with its output when it exits at once (a port taken here)."""
    record.parent.mkdir(parents=True, exist_ok=True)
    log = record.with_suffix(".log")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    time.sleep(settle)
    if process.poll() is not None:
        raise ClusterError(f"kubectl port-forward exited: {log.read_text(errors='replace').strip()[-500:]}",
                           "a port may be taken here (ss -ltnp); the environment runs: forward it by hand")
    ports = tuple(int(p.split(":")[0]) for p in command[command.index("port-forward") + 4:])
    found = Forward(process.pid, ports, str(log))
    record.write_text(json.dumps({"pid": found.pid, "ports": list(ports), "command": command}))
    return found


def stop_forward(record: Path) -> Optional[int]:
    """The recorded port-forward ended (only when its process is still kubectl); its pid, or None."""
    try:
        data = json.loads(record.read_text())
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    record.unlink(missing_ok=True)
    try:
        if "kubectl" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return None
        os.kill(pid, signal.SIGTERM)
    except (OSError, ProcessLookupError):
        return None
    return pid


def _found(call: Callable[[], object]) -> bool:
    """Whether the object `call` reads or deletes was there: the API server's 404 is False."""
    try:
        call()
    except ClusterError as exc:
        if exc.status == 404:
            return False
        raise
    return True
