"""Where a check's findings point: the files a person reads, not kustomize's output.

The generated VirtualService, DestinationRule and Gateway files, the version folder's
kustomization.yaml for what meshcanary sets there (replicas, image), and the base's own files
for everything the base defines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary import kustomize
from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES
from meshcanary.manifest import Document, JsonPath, Parsed, Resource, parse_text
from meshcanary.problem import Location

if TYPE_CHECKING:
    from meshcanary.check.scope import Unit


def _sources(root: Path, unit: Unit) -> dict[tuple[str, str], Document]:
    """Where each object of a unit is written down: generated files and the base's files."""
    found: dict[tuple[str, str], Document] = {}
    inside = os.path.realpath(root) + os.sep

    def add(path: Path, display: str) -> None:
        # Only regular files of the repository: a link out of it is not read, nor a FIFO.
        if not os.path.realpath(path).startswith(inside) or not path.is_file():
            return
        parsed = Parsed()
        try:
            parse_text(path.read_text(encoding="utf-8"), display, parsed)
        except (OSError, UnicodeDecodeError):
            return
        for resource in parsed.resources:
            found.setdefault((resource.kind, resource.name), resource.document)

    folder = root / unit.folder
    for path in sorted(folder.glob("*.yaml")):
        if path.name not in KUSTOMIZATION_NAMES:
            add(path, f"{unit.folder}/{path.name}")
    if unit.release is not None:
        base = root / unit.release.base
        for path in sorted(base.rglob("*")):
            if (
                path.suffix in (".yaml", ".yml")
                and path.name not in KUSTOMIZATION_NAMES
                and path.is_file()
            ):
                add(path, path.relative_to(root).as_posix())
    return found


class _Mapped(Document):
    """A base's document, with the fields meshcanary sets pointed at the version folder."""

    def __init__(self, origin: Document | None, version_file: Document | None) -> None:
        super().__init__(
            origin.file if origin else (version_file.file if version_file else ""),
            origin.text if origin else "",
            origin.first_line if origin else 1,
            origin.index if origin else 0,
        )
        self.origin = origin
        self.version_file = version_file

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        parts = list(path)
        if self.version_file is not None:
            if parts[:2] == ["spec", "replicas"]:
                return self.version_file.location(["replicas", 0, "count"])
            if (
                len(parts) >= 6
                and parts[:4] == ["spec", "template", "spec", "containers"]
                and parts[5] == "image"
            ):
                return self.version_file.location(["images", 0, "newTag"])
            if self.origin is None:
                return self.version_file.location([])
        if self.origin is None:
            return Location(self.file or "?", 1, 1)
        return self.origin.location(parts, key=key)


def _version_document(root: Path, unit: Unit, version: str) -> Document | None:
    path = root / unit.folder / version / "kustomization.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    return Document(f"{unit.folder}/{version}/kustomization.yaml", text, 1, 0)


def resources(root: Path, unit: Unit, result: kustomize.BuildResult) -> list[Resource]:
    """The objects `unit` built to, each with the document its findings point into."""
    built = Parsed()
    if result.documents is not None:
        # Parsed by the batch build; the built text is no file a person reads, so a place in
        # it is only a fallback (the unit's folder).
        built.resources.extend(
            Resource(data, Document(unit.folder, "", 1, index))
            for index, data in enumerate(result.documents)
        )
    else:
        parse_text(result.output, unit.folder, built)
    sources = _sources(root, unit)
    located: list[Resource] = []
    for resource in built.resources:
        origin = sources.get((resource.kind, resource.name))
        if resource.kind == "Deployment" and unit.release is not None:
            labels = resource.get("spec", "template", "metadata", "labels") or {}
            version = str(labels.get("version", "")) if isinstance(labels, dict) else ""
            base_name = next((name for kind, name in sources if kind == "Deployment"), "")
            origin = sources.get(("Deployment", base_name))
            document: Document = _Mapped(origin, _version_document(root, unit, version))
        elif origin is None and unit.release is not None:
            # Named by kustomize (a suffix, a generated hash): find it by kind alone.
            same_kind = [doc for (kind, _), doc in sources.items() if kind == resource.kind]
            document = same_kind[0] if len(same_kind) == 1 else resource.document
        else:
            document = origin or resource.document
        located.append(Resource(resource.data, document, None))
    return located
