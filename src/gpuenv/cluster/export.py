"""`gpuenv export`: an environment's image in the forms clusters run, in one folder.

    FOLDER/oci/              an OCI image layout (skopeo copy docker-daemon: -> oci:), tag = the image's tag
    FOLDER/bundle/rootfs     the image unpacked (umoci unpack), read-only to its containers
    FOLDER/bundle/config.json  gpuenv's runtime config (cluster/runtime.py): `runc run -b FOLDER/bundle`
    FOLDER/gpuenv-export.json  the image, its labels and the settings, for the job step on a node (node.py)

Written into a hidden partial folder beside FOLDER and renamed at the end: a failure leaves nothing.
skopeo and umoci are Debian/Ubuntu/Fedora packages; when they are missing, the error says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from gpuenv.cluster.runtime import GpuFiles, ImageConfig, Settings, config
from gpuenv.errors import BadInput, GpuenvError

RECORD = "gpuenv-export.json"
TOOLS = ("skopeo", "umoci")


class ExportFailed(GpuenvError):
    """skopeo or umoci failed; `output` holds what it said."""


@dataclass(frozen=True)
class Exported:
    folder: Path
    layout: Path
    bundle: Path
    image: str
    image_id: str
    tag: str                  # the tag inside the layout (oci:LAYOUT:TAG)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "layout": str(self.layout), "layout_ref": f"oci:{self.layout}:{self.tag}",
                "bundle": str(self.bundle), "image": self.image, "image_id": self.image_id}


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def export(image: str, image_id: str, info: ImageConfig, settings: Settings, out: Path, force: bool,
           command: Sequence[str] = (), gpu: GpuFiles = GpuFiles()) -> Exported:
    """The image `image` (on the engine DOCKER_HOST names) into `out`; replaces `out` only with `force`.
    The bundle runs `command` (default: the image's entrypoint and CMD)."""
    _check_target(out, force)
    missing = missing_tools()
    if missing:
        raise BadInput(f"{' and '.join(missing)} not found on PATH: `gpuenv export` makes the OCI layout and "
                       "bundle with them", f"install them: apt-get install {' '.join(missing)} "
                       "(Debian/Ubuntu), dnf install skopeo umoci (Fedora)")
    tag = _layout_tag(image)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        _run("skopeo", "copy", "--quiet", f"docker-daemon:{image}", f"oci:{partial / 'oci'}:{tag}")
        _run("umoci", "unpack", "--image", f"{partial / 'oci'}:{tag}", str(partial / "bundle"))
        _tidy(partial / "bundle")
        _write_json(partial / "bundle" / "config.json", config(info, settings, gpu, command))
        _write_json(partial / RECORD, record(image, image_id, info, settings))
        os.chmod(partial, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Exported(out, out / "oci", out / "bundle", image, image_id, tag)


def record(image: str, image_id: str, info: ImageConfig, settings: Settings) -> dict[str, Any]:
    return {"image": image, "image_id": image_id, "labels": dict(info.labels), "settings": settings.to_dict(),
            "image_config": {"env": [f"{k}={v}" for k, v in info.env], "entrypoint": list(info.entrypoint),
                             "cmd": list(info.cmd), "workdir": info.workdir}}


def read_record(folder: Path) -> tuple[str, ImageConfig, Settings]:
    """(image, its config, the settings) of an exported folder; BadInput when it is not one."""
    path = folder / RECORD
    try:
        data = json.loads(path.read_text())
        conf = data["image_config"]
        pairs = (item.partition("=") for item in conf["env"])
        image = ImageConfig(tuple((k, v) for k, _, v in pairs), tuple(conf["entrypoint"]), tuple(conf["cmd"]),
                            str(conf["workdir"]), tuple(sorted(dict(data["labels"]).items())))
        return str(data["image"]), image, Settings.from_dict(data["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{folder} is not a folder `gpuenv export` wrote ({path}: {exc})",
                       "export it again: gpuenv export -o FOLDER") from None


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise BadInput(f"{out} exists", "choose another folder, or replace it with --force")
    if out.exists() and not (out / RECORD).is_file():
        raise BadInput(f"{out} exists and is not an export of gpuenv: --force replaces only those",
                       "choose another folder")
    if not out.parent.is_dir():
        raise BadInput(f"the folder {out.parent} does not exist", "create it first, or export elsewhere")


def _layout_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _tidy(bundle: Path) -> None:
    """umoci's own files go (its mtree and state: only `umoci repack` reads them); the bundle and its rootfs
    become readable to every user (umoci makes them 700): a job runs as its user, not root."""
    for leftover in list(bundle.glob("*.mtree")) + [bundle / "umoci.json"]:
        leftover.unlink(missing_ok=True)
    os.chmod(bundle, 0o755)
    os.chmod(bundle / "rootfs", 0o755)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _run(*argv: str, timeout: Optional[float] = 1800) -> None:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ExportFailed(f"{argv[0]} did not finish in {timeout:g} s", "run it again; see `gpuenv doctor`") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ExportFailed(f"{' '.join(argv[:2])} failed (exit {done.returncode}): " + " / ".join(said),
                           "is the image on the engine (docker images)? skopeo reads it through DOCKER_HOST")
