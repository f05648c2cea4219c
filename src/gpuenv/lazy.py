"""The one way gpuenv loads code late: a name is written "package.module:attribute" and loaded on first use.

`gpuenv plan torch` must start in well under a second, so the stages a command does not use are never
imported: the CLI loads its verbs by name (cli/main.py), and a package face (gpuenv.api) answers its names
through a module-level `__getattr__` made here. Everywhere else imports sit at the top of the module, and
names needed only for annotations are imported under `typing.TYPE_CHECKING`.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable


def load(target: str) -> Any:
    """The object a "package.module:attribute" names (the module alone when there is no attribute)."""
    module, _, attribute = target.partition(":")
    found = import_module(module)
    return getattr(found, attribute) if attribute else found


def exports(module: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for the module `module`, answering each of `names` (name -> target) by
    loading its target once; any other name is an AttributeError, as for a plain module."""
    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = load(target)
        setattr(sys.modules[module], name, value)        # loaded once: the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[module])))

    return __getattr__, __dir__
