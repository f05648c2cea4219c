"""The tags a load places, and what it undoes. A load never moves a tag it did not create:

    the image's own tag (gpuenv-NAME:..., names.py checked it is the one its build files give)
        placed when free or already on the manifest's image ID; taken by another image: TagTaken, before
        anything is loaded
    each base's tag (a FROM line of the bundle's Dockerfile)
        placed when free or already on the ID the sealed manifest names; else left where it is, and the
        bundle's base, loaded untagged, is removed again (its layers stay, the image holds them)

`Placed` records what the load put on the engine (image IDs that were not there, tags it created), so a
load refused or failed at any later step takes exactly that away again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from gpuenv.bundle.manifest import Manifest
from gpuenv.errors import GpuenvError
from gpuenv.run.docker import Docker

if TYPE_CHECKING:
    from gpuenv.run.docker import ImageInspect


class TagTaken(GpuenvError):
    """The bundle's image tag names another image on this engine; loading would move it."""


@dataclass(frozen=True)
class Kept:
    """A base tag left where it was: the engine's image under it is not the bundle's."""

    tag: str
    theirs: str
    bundles: str

    def to_dict(self) -> dict[str, str]:
        return {"tag": self.tag, "image_id": self.theirs, "bundle_image_id": self.bundles}

    @property
    def message(self) -> str:
        return (f"{self.tag} stays on this engine's image {self.theirs[:19]}; the bundle's base "
                f"{self.bundles[:19]} was not tagged (its layers are in the loaded image)")


@dataclass(frozen=True)
class Plan:
    image: tuple[str, str]                      # (tag, ID)
    bases: tuple[tuple[str, str], ...]          # (tag, ID) free or already there
    kept: tuple[Kept, ...]


@dataclass
class Placed:
    """What one load put on the engine: undo() takes it away again."""

    new_ids: list[str] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)      # (tag, ID) this load created

    def undo(self, docker: Docker) -> None:
        """Its tags off (on an image that was there before, only where another tag keeps that image: the
        engine deletes an image with its last tag), then the images that were not there."""
        for tag, image_id in reversed(self.tags):
            info = docker.image(image_id)
            if _id(docker.image(tag)) == image_id and (image_id in self.new_ids or len(_tags(info)) > 1):
                docker.run("rmi", "--no-prune", tag, check=False)
        for image_id in self.new_ids:
            if not _tagged(docker.image(image_id)):
                docker.run("rmi", image_id, check=False)


def plan(docker: Docker, manifest: Manifest) -> Plan:
    """Which tags this load may place; TagTaken when the image's own tag names another image."""
    there = _id(docker.image(manifest.tag))
    if there and there != manifest.image_id:
        raise TagTaken(f"{manifest.tag} names image {there[:19]} on this engine, not the bundle's "
                       f"{manifest.image_id[:19]}; loading would take the tag from it",
                       f"keep yours (nothing was loaded), or remove it first: docker rmi {manifest.tag}")
    bases, kept = [], []
    for tag, image_id in manifest.bases:
        theirs = _id(docker.image(tag)) if "@" not in tag else image_id
        if theirs in ("", image_id):
            bases.append((tag, image_id))
        else:
            kept.append(Kept(tag, theirs, image_id))
    return Plan((manifest.tag, manifest.image_id), tuple(bases), tuple(kept))


def apply(docker: Docker, planned: Plan, placed: Placed) -> None:
    """Tag what the plan allows where the tag is still free (and the image there: a base the engine had not
    and the bundle did not bring, with its image already here, is not); the bases it keeps, loaded
    untagged, removed."""
    for tag, image_id in (planned.image, *planned.bases):
        if "@" not in tag and not docker.image(tag) and docker.image(image_id):
            docker.run("tag", image_id, tag)
            placed.tags.append((tag, image_id))
    for kept in planned.kept:
        if kept.bundles in placed.new_ids and not _tagged(docker.image(kept.bundles)):
            docker.run("rmi", kept.bundles, check=False)
            placed.new_ids.remove(kept.bundles)


def _id(info: Optional[ImageInspect]) -> str:
    return (info or {}).get("Id") or ""


def _tags(info: Optional[ImageInspect]) -> list[str]:
    return list((info or {}).get("RepoTags") or ())


def _tagged(info: Optional[ImageInspect]) -> bool:
    return bool(_tags(info))
