""".env (what compose substitutes into compose.yaml: tokens, your UID/GID, the image tag), and the
ignore files that keep it out of git and keep the build context small.
"""

from __future__ import annotations

from gpuenv import __version__
from gpuenv.render.quote import comment_line, env_line
from gpuenv.render.recipe import Recipe

TOKENS = ("JUPYTER_TOKEN", "GPUENV_GATEWAY_TOKEN")


def env_file(r: Recipe, image: str) -> str:
    i = r.inputs
    lines = [
        comment_line(f"Written by gpuenv {__version__} (gpuenv generate) for \"{r.name}\". It holds secrets (the "
                     "tokens):"),
        "# mode 600, listed in .gitignore; never commit it. compose reads it for the ${...} in compose.yaml.",
        env_line("COMPOSE_PROJECT_NAME", i.project or r.name),
        env_line("GPUENV_IMAGE", image),
        env_line("GPUENV_UID", str(i.uid)),
        env_line("GPUENV_GID", str(i.gid)),
    ]
    names = {s.name for s in r.services}
    jupyter = r.spec.access.jupyter               # the jupyter service is there exactly when the spec has it
    if jupyter is not None and jupyter.auth == "token":
        lines.append(env_line("JUPYTER_TOKEN", i.tokens["JUPYTER_TOKEN"]))
    if "gateway" in names:
        lines.append(env_line("GPUENV_GATEWAY_TOKEN", i.tokens["GPUENV_GATEWAY_TOKEN"]))
    if "ssh" in names:
        lines.append(env_line("GPUENV_SSH_AUTHORIZED_KEY", i.ssh_key))
    if i.ca_bundle and r.spec.network.ca_certificates != "none":
        lines.append(env_line("GPUENV_CA_BUNDLE", i.ca_bundle))
    return "\n".join(lines) + "\n"


def dockerignore(r: Recipe) -> str:
    return "\n".join([
        f"# Written by gpuenv {__version__} (gpuenv generate): the build needs only its support files, so the",
        "# workspace (data, checkpoints, .env) never travels to the engine.",
        "*",
        "!.gpuenv/",
        "",
    ])


GITIGNORE_LINES = (".env",)
