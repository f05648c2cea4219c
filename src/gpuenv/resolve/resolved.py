"""The whole environment as a real resolver answered it: every distribution, its version, hashes and
index, and which pip step of the Dockerfile installs it first (the framework layer before the tools,
the tools before the spec's packages). This is the lock before the build: `gpuenv lock` writes it,
`build` / `up` install exactly it, step by step, `--no-deps` with hashes.

`status` is "resolved", or "unresolved" with `why` (no index reachable, an index the resolver cannot
read): then the plan rests on the knowledge base alone and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Optional

if TYPE_CHECKING:
    from gpuenv.spec.model import EnvSpec


# "resolved": every distribution pinned, step by step; "unresolved": not pinned, and `why` says why (offline,
# no index answered, a Python or a wheel URL the resolver cannot take): the plan rests on the kb alone.
ResolvedStatus = Literal["resolved", "unresolved"]


@dataclass(frozen=True)
class Pin:
    name: str                          # PEP 503 normalized, "nvidia-cudnn-cu12"
    version: str                       # as the index publishes it, local version included ("2.4.1+cu118")
    hashes: tuple[str, ...] = ()       # "sha256:..." of every file of that version the index lists
    index: str = ""                    # the index it comes from (credentials never kept)
    via: tuple[str, ...] = ()          # who asked for it: a step id ("frameworks") or a distribution name

    def line(self) -> str:
        """Its line in a requirements file pip installs with --require-hashes."""
        hashes = "".join(f" \\\n    --hash={h}" for h in self.hashes)
        return f"{self.name}=={self.version}{hashes}"


class StepRequires(NamedTuple):
    """A pip step of the Dockerfile before resolution: its id and what it asks pip for."""

    id: str                            # "frameworks", "tools", "packages-1", ... (render's "python" too)
    requires: tuple[str, ...]          # requirements as the plan writes them; a package step repeats those
                                       # of the package steps before it


@dataclass(frozen=True)
class StepPins:
    id: str                            # the Dockerfile's pip step: "frameworks", "tools", "packages-1", ...
    requires: tuple[str, ...]          # what the step asks for, as the plan writes it
    pins: tuple[Pin, ...]              # what it installs that no earlier step installed


@dataclass(frozen=True)
class Resolved:
    status: ResolvedStatus
    steps: tuple[StepPins, ...] = ()
    python: str = ""                   # the Python it was resolved for
    platform: str = ""                 # "x86_64-manylinux_2_28"
    indexes: tuple[str, ...] = ()      # the indexes asked, first the main one
    why: str = ""                      # unresolved: the reason, said in the plan
    decided: tuple[str, ...] = ()      # what moved the plan off the knowledge base's first choice, and why
    built: tuple[str, ...] = ()        # distributions with no wheel for the target: built from source in the image
    find_links: tuple[str, ...] = ()   # find-links pages asked (a pin whose index is one is from that page)

    @property
    def pins(self) -> tuple[Pin, ...]:
        return tuple(p for s in self.steps for p in s.pins)

    def version_of(self, name: str) -> Optional[str]:
        return next((p.version for p in self.pins if p.name == name), None)

    def step(self, step_id: str) -> Optional[StepPins]:
        return next((s for s in self.steps if s.id == step_id), None)

    def requirements_text(self, step_id: str) -> str:
        """The step's requirements file, as pip reads it with --no-deps (and --require-hashes when hashed)."""
        step = self.step(step_id)
        return "".join(p.line() + "\n" for p in step.pins) if step else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "python": self.python, "platform": self.platform,
            "indexes": list(self.indexes), "why": self.why, "decided": list(self.decided),
            "built": list(self.built), "find_links": list(self.find_links),
            "steps": [{"id": s.id, "requires": list(s.requires),
                       "packages": [{"name": p.name, "version": p.version, "hashes": list(p.hashes),
                                     "index": p.index, "via": list(p.via)} for p in s.pins]}
                      for s in self.steps],
        }


# Distributions the access tools pull in that gpuenv leaves out of the tools step: they only slow every
# Jupyter start (render/dockerfile.py says why). Named in the spec's packages, they are installed there.
LEFT_OUT_OF_TOOLS = ("rfc3987-syntax",)


def tools_for(spec: EnvSpec) -> tuple[str, ...]:
    """What the access services need installed (the tools step, after the framework): resolved with the
    rest of the environment, and rendered as its own pip step."""
    access = spec.access
    tools = []
    if access.jupyter is not None:
        tools.append("jupyterlab" if access.jupyter.mode == "lab" else "notebook")
    if access.gateway is not None:
        tools.append("jupyter_kernel_gateway")
    # A shell-only environment gets no kernel: VS Code's and PyCharm's notebooks install ipykernel when
    # first opened, and an offline server could not download it (docs/decisions.md, issue 6).
    return tuple(tools)


def without_slow_tools(resolved: Resolved) -> Resolved:
    """The resolution with LEFT_OUT_OF_TOOLS out of the tools step: moved to the first package step that
    names it, else not installed."""
    tools = resolved.step("tools")
    out = [p for p in (tools.pins if tools else ()) if p.name in LEFT_OUT_OF_TOOLS]
    if not out:
        return resolved
    home = {p.name: next((s.id for s in resolved.steps if s.id.startswith("packages-") and s.id in p.via), "")
            for p in out}
    steps = tuple(StepPins(s.id, s.requires, tuple(p for p in s.pins if p not in out)
                           + tuple(p for p in out if home[p.name] == s.id)) for s in resolved.steps)
    return replace(resolved, steps=steps)


def unresolved(why: str) -> Resolved:
    return Resolved("unresolved", why=why)


def step_layout(frameworks: tuple[str, ...], tools: tuple[str, ...],
                packages: tuple[str, ...], toolchain: tuple[str, ...] = ()) -> list[StepRequires]:
    """The Dockerfile's pip steps after the Python step, in order, each with what it asks for: the framework
    layer, the compiler (toolkit devel, CUDA from wheels: resolve/toolchain.py), the access tools, then the
    spec's packages (`package_steps`: each step names those before it), so that a package compiled from
    source has the compiler before it and a change in the packages rebuilds neither."""
    steps = []
    if frameworks:
        steps.append(StepRequires("frameworks", frameworks))
    if toolchain:
        steps.append(StepRequires("toolchain", toolchain))
    if tools:
        steps.append(StepRequires("tools", tools))
    ends = package_steps(len(packages))
    steps += [StepRequires(f"packages-{i}", packages[:end]) for i, end in enumerate(ends, 1)]
    return steps


def package_steps(count: int, single: int = 12, chunk: int = 8) -> list[int]:
    """Where each pip step of the spec's packages ends: one package a step for the first `single`,
    then `chunk` a step, so a long list stays a few dozen layers and appending one reruns one step."""
    ends = list(range(1, min(count, single) + 1))
    ends += list(range(single + chunk, count, chunk)) if count > single else []
    if count > single:
        ends.append(count)
    return ends
