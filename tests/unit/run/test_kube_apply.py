"""`gpuenv up --on kubernetes` / `down --on kubernetes` without a cluster (none can run here; README):
the errors a user meets first (no kubeconfig, a server that does not answer, no kubernetes.yaml), each
with its fix, exit code and nothing applied; and the apply order and rollback of run/kube.py against an
in-memory API (the thin seam `Api`: exists, create, patch, delete, pod), which records every call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from gpuenv.errors import ClusterError
from gpuenv.run import kube

ROOT = Path(__file__).resolve().parents[3]


def gpuenv(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec and its kubernetes.yaml, as `gpuenv generate --kubernetes` writes them (no engine needed)."""
    made = tmp_path_factory.mktemp("k8s") / "env"
    made.mkdir()
    (made / "gpuenv.toml").write_text('name = "kenv"\nframeworks = ["torch"]\n\n[access.jupyter]\nmode = "lab"\n')
    done = gpuenv("generate", "--kubernetes", "--image", "registry.lab:5000/group/kenv:v1", cwd=made,
                  env={"DOCKER_HOST": "unix:///nonexistent/gpuenv-test-no-engine.sock"})
    assert done.returncode == 0, done.stderr
    assert (made / "kubernetes.yaml").is_file()
    return made


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_kubeconfig_is_a_clear_error_with_the_fix(folder: Path, tmp_path: Path) -> None:
    done = gpuenv("up", "--on", "kubernetes", "--json", cwd=folder, env={"HOME": str(tmp_path), "KUBECONFIG": ""})
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 1 and error["type"] == "ClusterError" and "Traceback" not in done.stderr
    assert "kubeconfig" in error["message"] and "KUBECONFIG" in error["hint"]


def test_a_server_that_does_not_answer_is_a_clear_error_and_nothing_is_applied(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: lab, cluster: {{server: "https://127.0.0.1:{_free_port()}", insecure-skip-tls-verify: true}}}}]
users: [{{name: me, user: {{token: not-a-token}}}}]
contexts: [{{name: lab, context: {{cluster: lab, user: me, namespace: alice}}}}]
current-context: lab
""")
    for verb in (("up", "--on", "kubernetes"), ("down", "--on", "kubernetes")):
        done = gpuenv(*verb, "--json", cwd=folder, env={"HOME": str(tmp_path), "KUBECONFIG": str(config)})
        error = json.loads(done.stdout)["error"]
        assert done.returncode == 1 and error["type"] == "ClusterError" and error["status"] == 0, verb
        assert "does not answer" in error["message"] and "kubectl cluster-info" in error["hint"]
    assert not (tmp_path / ".local" / "state" / "gpuenv" / "kubernetes").exists()   # no port-forward either


def test_up_on_kubernetes_without_manifests_says_how_to_write_them(tmp_path: Path) -> None:
    (tmp_path / "gpuenv.toml").write_text('name = "bare"\n')
    done = gpuenv("up", "--on", "kubernetes", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert done.returncode == 2 and "kubernetes.yaml is missing" in done.stderr
    assert "gpuenv generate --kubernetes --image" in done.stderr


def test_cluster_options_without_on_kubernetes_are_refused(tmp_path: Path) -> None:
    done = gpuenv("down", "--namespace", "x", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert done.returncode == 2 and "--on kubernetes" in done.stderr


# --- apply order and rollback ---------------------------------------------------------------------------------


class MemoryApi:
    """Objects by (kind, name); `fail_on`: the (verb, kind) that raises, as an API server's refusal."""

    def __init__(self, existing: tuple[tuple[str, str], ...] = (), fail_on: Optional[tuple[str, str]] = None,
                 pods: Optional[list[dict[str, Any]]] = None) -> None:
        self.objects = {key: {} for key in existing}
        self.calls: list[tuple[str, str, str]] = []
        self.fail_on, self.pods = fail_on, list(pods or [])

    def _record(self, verb: str, kind: str, name: str) -> None:
        self.calls.append((verb, kind, name))
        if self.fail_on == (verb, kind):
            raise ClusterError(f"refused {verb} {kind}", status=422)

    def exists(self, kind: str, name: str) -> bool:
        return (kind, name) in self.objects

    def create(self, kind: str, body: dict[str, Any]) -> None:
        self._record("create", kind, body["metadata"]["name"])
        self.objects[(kind, body["metadata"]["name"])] = body

    def patch(self, kind: str, name: str, body: dict[str, Any]) -> None:
        self._record("patch", kind, name)
        self.objects[(kind, name)] = body

    def delete(self, kind: str, name: str) -> bool:
        self._record("delete", kind, name)
        return self.objects.pop((kind, name), None) is not None

    def pod(self, name: str) -> dict[str, Any]:
        return self.pods.pop(0) if len(self.pods) > 1 else (self.pods[0] if self.pods else {})


def _objects(folder: Path) -> list[dict[str, Any]]:
    return [kube.secret("kenv-access", {}, {"JUPYTER_TOKEN": "t"}), *kube.read_manifests(folder)]


def test_objects_are_applied_secret_claims_service_then_workload(folder: Path) -> None:
    api = MemoryApi()
    done = kube.apply(api, list(reversed(_objects(folder))))
    assert [kind for _, kind, _ in api.calls] == ["Secret", "PersistentVolumeClaim", "PersistentVolumeClaim",
                                                  "Service", "StatefulSet"]
    assert done.created == [(k, n) for _, k, n in api.calls]


def test_existing_secret_and_claims_are_kept_service_and_workload_patched(folder: Path) -> None:
    names = tuple((o["kind"], o["metadata"]["name"]) for o in _objects(folder))
    api = MemoryApi(existing=names)
    done = kube.apply(api, _objects(folder))
    assert [(v, k) for v, k, _ in api.calls] == [("patch", "Service"), ("patch", "StatefulSet")]
    assert {k for k, _ in done.kept} == {"Secret", "PersistentVolumeClaim"}


def test_a_failure_deletes_what_this_run_created_newest_first_and_nothing_else(folder: Path) -> None:
    claim = next(o["metadata"]["name"] for o in _objects(folder) if o["kind"] == "PersistentVolumeClaim")
    api = MemoryApi(existing=(("PersistentVolumeClaim", claim),), fail_on=("create", "StatefulSet"))
    with pytest.raises(ClusterError, match="refused create StatefulSet"):
        kube.apply(api, _objects(folder))
    deletes = [(k, n) for v, k, n in api.calls if v == "delete"]
    assert [k for k, _ in deletes] == ["Service", "PersistentVolumeClaim", "Secret"]
    assert ("PersistentVolumeClaim", claim) not in deletes and list(api.objects) == [("PersistentVolumeClaim", claim)]


def test_waiting_ends_at_ready_and_fails_at_once_on_an_image_that_cannot_be_pulled() -> None:
    pending = {"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
               "reason": "Unschedulable", "message": "0/3 nodes have nvidia.com/gpu"}]}}
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    kube.wait_ready(MemoryApi(pods=[pending, ready]), "kenv-0", 60, sleep=lambda _: None)
    pulling = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff",
                                                                         "message": "pull access denied"}}}]}}
    with pytest.raises(ClusterError, match="ImagePullBackOff: pull access denied") as found:
        kube.wait_ready(MemoryApi(pods=[pulling]), "kenv-0", 60, sleep=lambda _: None)
    assert "gpuenv push" in (found.value.hint or "")
    clock = iter(range(0, 1000, 30))
    with pytest.raises(ClusterError, match="not ready after 60 s: Unschedulable: 0/3 nodes have nvidia.com/gpu"):
        kube.wait_ready(MemoryApi(pods=[pending]), "kenv-0", 60, sleep=lambda _: None, clock=lambda: next(clock))


def test_down_deletes_workload_service_secret_and_claims_only_when_asked(folder: Path) -> None:
    objects = kube.read_manifests(folder)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects} | {("Secret", "kenv-access")}
    api = MemoryApi(existing=tuple(names))
    gone = kube.delete(api, objects, volumes=False, secret_name="kenv-access")
    assert [g.split()[0] for g in gone] == ["StatefulSet", "Service", "Secret"]
    assert {k for k, _ in api.objects} == {"PersistentVolumeClaim"}
    assert [g.split()[0] for g in kube.delete(api, objects, volumes=True, secret_name=None)] == \
        ["PersistentVolumeClaim", "PersistentVolumeClaim"]


# --- generate --kubernetes's options ----------------------------------------------------------------------------

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/gpuenv-test-no-engine.sock"}


@pytest.mark.parametrize("args, said", [
    (("--image", "registry.lab:5000/x:v1"), "--image only go with --kubernetes"),
    (("--kubernetes",), "--kubernetes needs --image"),
    (("--kubernetes", "--image", "vision:v1"), "registry's host"),
    (("--kubernetes", "--image", "r.lab/x:v1", "--workspace-size", "20g"), "--workspace-size '20g'"),
    (("--kubernetes", "--image", "r.lab/x:v1", "--host-path", "data"), "--host-path 'data'"),
    (("--kubernetes", "--image", "r.lab/x:v1", "--runtime-class", "Nvidia!"), "--runtime-class 'Nvidia!'"),
])
def test_generate_refuses_bad_kubernetes_options_before_writing_anything(tmp_path: Path, args: tuple[str, ...],
                                                                          said: str) -> None:
    (tmp_path / "gpuenv.toml").write_text('name = "kenv"\n')
    done = gpuenv("generate", *args, cwd=tmp_path, env=NO_ENGINE)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpuenv.toml"]


def test_generate_never_replaces_a_kubernetes_yaml_of_the_users_own(tmp_path: Path) -> None:
    (tmp_path / "gpuenv.toml").write_text('name = "kenv"\n')
    (tmp_path / "kubernetes.yaml").write_text("kind: Mine\n")
    done = gpuenv("generate", "--kubernetes", "--image", "r.lab/x:v1", cwd=tmp_path, env=NO_ENGINE)
    assert done.returncode == 2 and "kubernetes.yaml" in done.stderr and "--force" in done.stderr
    assert (tmp_path / "kubernetes.yaml").read_text() == "kind: Mine\n"
    assert not (tmp_path / "Dockerfile").exists()


def test_generated_manifests_hold_no_token_of_the_env_file(folder: Path) -> None:
    env = dict(line.split("=", 1) for line in (folder / ".env").read_text().splitlines() if "TOKEN=" in line)
    text = (folder / "kubernetes.yaml").read_text()
    assert env and all(len(token) >= 32 and token not in text for token in env.values())
