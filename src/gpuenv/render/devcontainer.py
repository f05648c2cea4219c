"""`.devcontainer/devcontainer.json`: VS Code (Dev Containers) and the Dev Containers CLI open the
environment through compose.yaml, in the main service, at the workspace mount.

- The image is gpuenv's: `initializeCommand` builds it on the host when it is missing (.gpuenv/build-image.sh:
  BuildKit with the CA and ~/.netrc as secrets, so it works behind a TLS-inspecting proxy), and the
  services it starts (`runServices`) have no `build`, so the CLI never builds over gpuenv's content tag.
- The container's user already has your UID/GID (`updateRemoteUserUID` off: no derived image).
- The GPU is required where the plan needs one, "optional" on a host whose GPU mode is `none`.
"""

from __future__ import annotations

from typing import Any

from gpuenv.render.compose import BUILD_SCRIPT
from gpuenv.render.quote import json_document
from gpuenv.render.recipe import Recipe


def devcontainer(r: Recipe) -> str:
    doc: dict[str, Any] = {
        "name": f"{r.name} (gpuenv)",
        "dockerComposeFile": ["../compose.yaml"],
        "service": r.main.name,
        "runServices": [s.name for s in r.services],
        "workspaceFolder": r.workspace_mount,
        "shutdownAction": "stopCompose",
        "initializeCommand": ["sh", "${localWorkspaceFolder}/" + BUILD_SCRIPT],
        "updateRemoteUserUID": False,
    }
    if r.gpu:
        doc["hostRequirements"] = {"gpu": True if r.gpu_request else "optional"}
    doc["customizations"] = {"vscode": {"extensions": ["ms-python.python", "ms-toolsai.jupyter"]}}
    return json_document(doc)
