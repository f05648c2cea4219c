"""Plan -> plain files: Dockerfile, compose.yaml, .env, devcontainer.json and the support files.

    recipe.py        every choice, made once from the plan and the spec (a Recipe)
    dockerfile.py    the Dockerfile            compose.py     compose.yaml
    envfile.py       .env, .dockerignore       devcontainer.py .devcontainer/devcontainer.json
    files/           support files copied as they are (Jupyter, kernel gateway and sshd settings,
                     the health check, the Python build script)
    write.py         the only I/O: writes a Rendered folder, all or nothing

`render` is pure: the same plan, spec and inputs give the same bytes (golden tests rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from gpuenv.render.recipe import SUPPORT, Inputs, Recipe, recipe


@dataclass(frozen=True)
class File:
    path: str           # relative to the output folder
    text: str
    mode: int = 0o644


@dataclass(frozen=True)
class Rendered:
    recipe: Recipe
    files: tuple[File, ...]

    def text(self, path: str) -> str:
        return next(f.text for f in self.files if f.path == path)


def render(plan: Any, spec: Any, inputs: Inputs) -> Rendered:
    from gpuenv.render.compose import compose
    from gpuenv.render.devcontainer import devcontainer
    from gpuenv.render.dockerfile import dockerfile
    from gpuenv.render.envfile import dockerignore, env_file

    r = recipe(plan, spec, inputs)
    files = [File("Dockerfile", dockerfile(r)), File("compose.yaml", compose(r)),
             File(".env", env_file(r), 0o600), File(".dockerignore", dockerignore(r)),
             File(".devcontainer/devcontainer.json", devcontainer(r))]
    files += [File(f"{SUPPORT}/{name}", text, mode) for name, text, mode in _support(r)]
    if inputs.ssh_key_text:
        files.append(File(f"{SUPPORT}/authorized_keys", inputs.ssh_key_text))
    return Rendered(r, tuple(files))


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
    folder = resources.files("gpuenv.render") / "files"
    return [(n, (folder / n).read_text(), 0o755 if n.endswith(".sh") else 0o644) for n in sorted(names)]
