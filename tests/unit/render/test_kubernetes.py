"""kubernetes.yaml (`gpuenv generate --kubernetes`): goldens, strict validation against the Kubernetes
schemas of every supported minor version (kubernetes-validate, offline: it ships the schemas; unknown
fields are errors), what the objects must say (no token, the user's UID/GID, no privilege, the GPU
count, the volumes), and hostile text in every spec field.

No cluster runs here: what a real API server and kubelet would add (admission, Pod Security, the device
plugin) is not tested; README: Clusters: Kubernetes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import tomli_w
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuenv.errors import BadInput, GpuenvError, ImpossibleRequest
from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.render import Rendered, render
from gpuenv.render.kubernetes import SUPPORTED_VERSIONS, KubeSettings, gpu_count, kubernetes
from gpuenv.render.quote import kube_label, kube_name, kube_quantity, kube_text

from .test_goldens import EXAMPLES, FIXED, ROOT, rendered_example
from .test_hostile_values import (CASES, FOLDER, PLAIN, REQUIREMENTS_LINE, SETTINGS, _inputs, _set, hostile_value,
                                  leaves, skeleton)

GOLDEN = ROOT / "tests" / "golden" / "kubernetes"
IMAGE = "registry.lab:5000/group/env:v1"
SETTINGS_DEFAULT = KubeSettings(image=IMAGE)
EVERYTHING = KubeSettings(image=f"registry.lab:5000/group/env@sha256:{'a' * 64}", storage_class="fast-ssd",
                          host_path="/data/you/project", runtime_class="nvidia", pull_secret="lab-registry")


def manifests(rendered: Rendered, settings: KubeSettings = SETTINGS_DEFAULT) -> str:
    return kubernetes(rendered.recipe, settings, rendered.image)


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def validation_errors(text: str) -> list[str]:
    """Every document against every supported version, strictly; the failures as text."""
    errors = []
    for doc in documents(text):
        for version in SUPPORTED_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{version} {doc['kind']} {'.'.join(map(str, exc.path))}: {exc.message}")
    return errors


def of_kind(text: str, kind: str) -> dict[str, Any]:
    return next(d for d in documents(text) if d["kind"] == kind)


def pod(text: str) -> dict[str, Any]:
    return of_kind(text, "StatefulSet")["spec"]["template"]["spec"]


def _example(name: str, **inputs: Any) -> Rendered:
    planned = rendered_example(name)
    return render(planned.recipe.plan, planned.recipe.spec, replace(FIXED, **inputs)) if inputs else planned


def _spec(name: str, **changes: Any) -> Rendered:
    """An example with spec fields changed (dotted keys: "run.cpus")."""
    planned = rendered_example(name)
    spec = planned.recipe.spec
    for dotted, value in changes.items():
        table, _, field = dotted.partition(".")
        spec = spec.model_copy(update={table: getattr(spec, table).model_copy(update={field: value})})
    return render(planned.recipe.plan, spec, FIXED)


# --- goldens and strict validation -------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_kubernetes_yaml_matches_its_golden(name: str, update_goldens: bool) -> None:
    text, golden = manifests(rendered_example(name)), GOLDEN / f"{name}.yaml"
    if update_goldens:
        golden.write_text(text)
    assert golden.read_text() == text, f"{golden} differs: run with --update-goldens and review"


def test_every_settings_variant_has_a_golden(update_goldens: bool) -> None:
    text, golden = manifests(_example("tf-cuda9-old-driver", uid=0, gid=0), EVERYTHING), GOLDEN / "variants" / "root-hostpath.yaml"
    if update_goldens:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.read_text() == text


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_validates_strictly_against_every_supported_version(name: str) -> None:
    assert validation_errors(manifests(rendered_example(name))) == []
    assert validation_errors(manifests(rendered_example(name), EVERYTHING)) == []


def test_the_validator_is_strict_an_unknown_field_is_an_error() -> None:
    """The check above can fail: a field no schema has, and a misspelt one, are refused in every version."""
    text = manifests(rendered_example("torch"))
    for where, bad in (((), "gpus"), (("securityContext",), "runAsUsr")):
        docs = documents(text)
        node = pod_of(docs)
        for key in where:
            node = node[key]
        node[bad] = 1
        assert len(validation_errors(yaml.safe_dump_all(docs))) == len(SUPPORTED_VERSIONS), bad


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]


def test_variants_validate_strictly() -> None:
    variants = [_spec("torch", **{"run.cpus": "7.5", "run.memory": "32g", "run.shm_size": "512m"}),
                _spec("torch", **{"run.ipc": "host"}), _spec("torch", **{"gpu.devices": "none"}),
                _spec("torch", **{"gpu.devices": [0, 1]}), _example("tf-cuda9-old-driver", uid=0, gid=0)]
    for rendered in variants:
        assert validation_errors(manifests(rendered)) == []


# --- what the objects say ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_token_is_written_the_pod_reads_them_from_the_secret(name: str) -> None:
    rendered = rendered_example(name)
    text = manifests(rendered)
    for token in FIXED.tokens.values():
        assert token not in text
    assert not [d for d in documents(text) if d["kind"] == "Secret"]
    for container in pod(text)["containers"]:
        for env in container["env"]:
            if env["name"] in ("JUPYTER_TOKEN", "KG_AUTH_TOKEN"):
                assert env["valueFrom"]["secretKeyRef"]["name"].endswith("-access") and "value" not in env


def test_the_pod_runs_as_the_user_without_privileges() -> None:
    spec = pod(manifests(_example("tf-cuda9-old-driver", uid=1234, gid=567)))
    assert spec["securityContext"] == {"runAsUser": 1234, "runAsGroup": 567, "fsGroup": 567,
                                       "fsGroupChangePolicy": "OnRootMismatch",
                                       "seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:     # sshd as a user needs no capability: it logs in only as itself
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_as_root_sshd_keeps_the_runtimes_capabilities_and_runs_as_non_root_is_not_claimed() -> None:
    spec = pod(manifests(_example("tf-cuda9-old-driver", uid=0, gid=0)))
    assert "runAsNonRoot" not in spec["securityContext"]
    security = {c["name"]: c["securityContext"] for c in spec["containers"]}
    assert security["ssh"] == {"allowPrivilegeEscalation": False}
    assert all(s["capabilities"] == {"drop": ["ALL"]} for name, s in security.items() if name != "ssh")


@pytest.mark.parametrize("devices, count, wanted", [("all", None, 1), ("all", 4, 4), ([0, 1], None, 2),
                                                    ("free", 2, 2), ("free", None, 1)])
def test_the_gpu_count_asked_of_the_device_plugin(devices: Any, count: Any, wanted: int) -> None:
    rendered = _spec("torch", **{"gpu.devices": devices, "gpu.count": count})
    assert gpu_count(rendered.recipe) == wanted
    containers = pod(manifests(rendered))["containers"]
    assert containers[0]["resources"]["limits"]["nvidia.com/gpu"] == wanted


def test_only_the_main_container_gets_the_gpus_the_others_none() -> None:
    text = manifests(_spec("tf-cuda9-old-driver", **{"gpu.devices": "all"}))
    main, *others = pod(text)["containers"]
    assert main["resources"]["limits"]["nvidia.com/gpu"] >= 1
    for container in others:
        assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})
        assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in container["env"]
    assert pod(text)["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_devices_none_asks_no_gpu() -> None:
    text = manifests(_spec("torch", **{"gpu.devices": "none"}))
    assert "nvidia.com/gpu" not in text


def test_limits_are_the_specs_own_and_shm_is_a_sized_memory_volume() -> None:
    plain = pod(manifests(_spec("torch", **{"run.cpus": "auto", "run.memory": "auto"})))
    assert set(plain["containers"][0]["resources"]["limits"]) == {"nvidia.com/gpu"}
    limited = pod(manifests(_spec("torch", **{"run.cpus": "7.5", "run.memory": "32g", "run.shm_size": "512m"})))
    assert limited["containers"][0]["resources"]["limits"] == {"cpu": "7500m", "memory": "32Gi", "nvidia.com/gpu": 1}
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "512Mi"}} in limited["volumes"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in limited["containers"][0]["volumeMounts"]


def test_the_workspace_is_a_claim_or_a_node_folder_and_home_is_kept() -> None:
    text = manifests(rendered_example("torch"))
    claims = {d["metadata"]["name"]: d["spec"] for d in documents(text) if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"torch-workspace": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
                      "torch-home": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}
    hosted = manifests(rendered_example("torch"), EVERYTHING)
    assert {"name": "workspace", "hostPath": {"path": "/data/you/project", "type": "Directory"}} in pod(hosted)["volumes"]
    assert "torch-workspace" not in hosted and "storageClassName: fast-ssd" in hosted
    assert pod(hosted)["runtimeClassName"] == "nvidia" and pod(hosted)["imagePullSecrets"] == [{"name": "lab-registry"}]


def test_the_service_is_cluster_internal_with_every_port() -> None:
    for name, ports in (("tf-cuda9-old-driver", [2222]), ("tf-pycharm", [8888, 6006]), ("mxnet-cu90", [8888, 8889])):
        service = of_kind(manifests(rendered_example(name)), "Service")["spec"]
        assert service["type"] == "ClusterIP" and [p["port"] for p in service["ports"]] == ports, name


def test_the_image_facts_are_annotations() -> None:
    rendered = rendered_example("torch")
    notes = of_kind(manifests(rendered), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    labels = dict(rendered.recipe.labels)
    assert notes["gpuenv/min-driver"] == labels["io.gpuenv.min-driver"] != ""
    assert notes["gpuenv/cuda"] == labels["io.gpuenv.cuda"] and notes["gpuenv/gpu-archs"] == labels["io.gpuenv.gpu-archs"]
    assert notes["gpuenv/image-tag"] == rendered.image


# --- quoting ------------------------------------------------------------------------------------------------


def test_kube_text_escapes_kubernetes_variable_expansion() -> None:
    assert kube_text("a$(HOME)b$$c$") == "a$$(HOME)b$$$$c$$"


@settings(derandomize=True, database=None)
@given(st.text(min_size=1, max_size=80))
def test_kube_name_and_label_always_give_valid_names(text: str) -> None:
    name, label = kube_name(text), kube_label(text)
    assert re.fullmatch(r"[a-z]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= 40, name
    assert re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?", label) and len(label) <= 63, label
    assert kube_name(text + "x") != kube_name(text + "y")


def test_kube_quantity_keeps_the_bytes() -> None:
    assert [kube_quantity(s) for s in ("16g", "512m", "64k", "100b")] == ["16Gi", "512Mi", "64Ki", "100"]


# --- hostile text -------------------------------------------------------------------------------------------


def _manifests_of(data: dict[str, Any]) -> "str | GpuenvError":
    spec_file = FOLDER / "gpuenv.toml"
    spec_file.write_text(tomli_w.dumps(data))
    (FOLDER / "plainreqs.txt").write_text("plainreq==1.0\n")
    try:
        request, spec = request_from_spec(spec_file)
        return manifests(render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, _inputs(spec)))
    except (BadInput, ImpossibleRequest) as refused:
        return refused


PLAIN_K8S: list[str] = []


def _plain() -> str:
    if not PLAIN_K8S:
        made = _manifests_of(PLAIN)
        assert isinstance(made, str), made
        PLAIN_K8S.append(made)
    return PLAIN_K8S[0]


FIELD_CASES = [(path, plain) for path, plain in CASES if path != REQUIREMENTS_LINE]


@pytest.mark.parametrize("path, plain", FIELD_CASES, ids=[".".join(map(str, p)) for p, _ in FIELD_CASES])
@SETTINGS
@given(data=st.data())
def test_hostile_text_in_any_field_is_refused_or_keeps_the_manifests_valid(path: Any, plain: str, data: Any) -> None:
    """Refused as bad input, or: the same objects and keys as with the plain value (no key injected), still
    valid for Kubernetes 1.30 and 1.37, and each env value or args word that held the plain value holds the
    hostile one (Kubernetes reads `$$` as `$`)."""
    hostile = data.draw(hostile_value(plain), label="hostile")
    result = _manifests_of(_set(PLAIN, path, hostile))
    if isinstance(result, GpuenvError):
        assert result.exit_code in (2, 3) and result.message, result
        return
    before, after = documents(_plain()), documents(result)
    assert skeleton(after) == skeleton(before)
    for doc in after:
        for version in (SUPPORTED_VERSIONS[0], SUPPORTED_VERSIONS[-1]):
            kubernetes_validate.validate(doc, version, strict=True)
    new = dict(leaves(after))
    for where, value in leaves(before):
        if isinstance(value, str) and "env" in where and where[-1] == "value" and plain in value.replace("$$", "$"):
            assert new[where].replace("$$", "$") == value.replace("$$", "$").replace(plain, hostile), where
