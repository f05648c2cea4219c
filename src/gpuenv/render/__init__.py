"""Plan -> plain files: Dockerfile, compose.yaml, .env, devcontainer.json and the support files.

    recipe.py        every choice, made once from the plan and the spec (a Recipe)
    dockerfile.py    the Dockerfile            compose.py     compose.yaml
    envfile.py       .env, .dockerignore       devcontainer.py .devcontainer/devcontainer.json
    files/           support files copied as they are (Jupyter, kernel gateway and sshd settings,
                     the health check, the Python build script; and build-image.sh, the build without gpuenv)
    write.py         the only I/O: writes a Rendered folder, all or nothing

`render` is pure: the same plan, spec and inputs give the same bytes (golden tests rely on it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from gpuenv.render.compose import BUILD_SCRIPT, compose
from gpuenv.render.devcontainer import devcontainer
from gpuenv.render.dockerfile import dockerfile, locked_file, pip_steps, uses_uv
from gpuenv.render.envfile import dockerignore, env_file
from gpuenv.render.recipe import SUPPORT, Inputs, Recipe, recipe

if TYPE_CHECKING:
    from gpuenv.resolve.plan import Plan
    from gpuenv.spec.model import EnvSpec


@dataclass(frozen=True)
class File:
    path: str           # relative to the output folder
    text: str
    mode: int = 0o644


@dataclass(frozen=True)
class Rendered:
    """An environment's files, and the image they build."""

    recipe: Recipe
    files: tuple[File, ...]
    image: str          # the image's name and content tag (image_tag), as .env names it (GPUENV_IMAGE)

    def text(self, path: str) -> str:
        return next(f.text for f in self.files if f.path == path)

    def context(self) -> list[File]:
        """The files the image's content tag hashes: all but those that only start it."""
        return [f for f in self.files if f.path not in _STARTS_IT]


def render(plan: Plan, spec: EnvSpec, inputs: Inputs) -> Rendered:
    r = recipe(plan, spec, inputs)
    context = [File("Dockerfile", dockerfile(r)), File(".dockerignore", dockerignore(r))]
    context += [File(f"{SUPPORT}/{name}", text, mode) for name, text, mode in _support(r)]
    if inputs.ssh_key_text:
        context.append(File(f"{SUPPORT}/authorized_keys", inputs.ssh_key_text))
    context += _pinned_files(r)
    image = image_tag(r, context)
    files = [context[0], File("compose.yaml", compose(r)), File(".env", env_file(r, image), 0o600),
             context[1], File(".devcontainer/devcontainer.json", devcontainer(r)), _build_script(), *context[2:]]
    return Rendered(r, tuple(files), image)


_STARTS_IT = frozenset({"compose.yaml", ".env", ".devcontainer/devcontainer.json", BUILD_SCRIPT})


def _build_script() -> File:
    """The image's build without gpuenv (compose.py's header, devcontainer.json's initializeCommand); not
    in the content tag: it starts no layer."""
    text = (resources.files("gpuenv.render") / "files" / "build-image.sh").read_text()
    return File(BUILD_SCRIPT, text, 0o755)


def image_tag(r: Recipe, context: list[File]) -> str:
    """The image's name and content tag: a hash of everything the build reads (the Dockerfile, the
    support files, your UID/GID), so an unchanged environment is never built twice and a changed one
    never reuses a stale image."""
    return tag_for(r.name, r.inputs.uid, r.inputs.gid, context)


def tag_for(name: str, uid: int, gid: int, context: list[File]) -> str:
    """image_tag's rule for any UID/GID: what `gpuenv load` gives an image it renumbers for its user."""
    digest = hashlib.sha256(f"{uid}:{gid}".encode())
    for f in sorted(context, key=lambda f: f.path):
        digest.update(f"\0{f.path}\0{f.mode:o}\0".encode() + f.text.encode())
    return f"gpuenv-{name}:{digest.hexdigest()[:12]}"


def _pinned_files(r: Recipe) -> list[File]:
    """The pinned steps' requirements files (only of steps the Dockerfile has: a step id becomes a path),
    and uv's own pinned wheel when uv installs them."""
    ids = {step for step, _ in pip_steps(r)}
    files = [File(locked_file(step), text) for step, text in r.pinned if step in ids]
    if uses_uv(r):
        folder = resources.files("gpuenv.render") / "files"
        files += [File(f"{SUPPORT}/{name}", (folder / name).read_text()) for name in ("uv.txt", "uv-install.sh")]
    return files


def _support(r: Recipe) -> list[tuple[str, str, int]]:
    names = ["healthcheck.py"]
    services = {s.name for s in r.services}
    if "jupyter" in services:
        names.append("jupyter_config.py")
    if "gateway" in services:
        names.append("jupyter_kernel_gateway_config.py")
    if "ssh" in services:
        names += ["sshd_config", "start-sshd.sh"]
    if r.python.method == "source":
        names.append("build-python.sh")
    if r.cuda_from_wheels and r.frameworks:
        names.append("register-cuda-wheels.py")
    chain = r.plan.toolchain
    if chain is not None and chain.level == "devel":
        names += ["build-jobs.sh"] + (["cuda-home.sh"] if chain.packages else [])
    folder = resources.files("gpuenv.render") / "files"
    return [(n, (folder / n).read_text(), 0o755 if n.endswith(".sh") else 0o644) for n in sorted(names)]
