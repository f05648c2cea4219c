"""`.devcontainer/devcontainer.json`: VS Code (Dev Containers) opens the environment through compose.yaml,
in the main service, at the workspace mount, and asks the host for a GPU when the plan needs one.
"""

from __future__ import annotations

from gpuenv.render.quote import json_document
from gpuenv.render.recipe import Recipe


def devcontainer(r: Recipe) -> str:
    doc = {
        "name": f"{r.name} (gpuenv)",
        "dockerComposeFile": ["../compose.yaml"],
        "service": r.main.name,
        "workspaceFolder": r.workspace_mount,
        "shutdownAction": "stopCompose",
    }
    if r.gpu:
        doc["hostRequirements"] = {"gpu": True}
    doc["customizations"] = {"vscode": {"extensions": ["ms-python.python", "ms-toolsai.jupyter"]}}
    return json_document(doc)
