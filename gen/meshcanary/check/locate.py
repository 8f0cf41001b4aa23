"""Where a check's findings point: the files a person edits, not kustomize's output.

A field the release or environment file decided points there, as the renderer recorded it
(render/provenance.py), with the rule's hint in that file's terms (`RELEASE_HINT`); a field
the base defines points into the base's own files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary import kustomize, rules
from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES
from meshcanary.manifest import Document, Parsed, Resource, parse_text
from meshcanary.problem import Problem
from meshcanary.render.provenance import Origin, Origins, Provenance, parse_pointer

if TYPE_CHECKING:
    from meshcanary.check.scope import Unit


# Objects, as (kind, name), and the document each is written in.
Written = list[tuple[tuple[str, str], Document]]


def _sources(root: Path, unit: Unit, bases: dict[str, Written]) -> dict[tuple[str, str], Document]:
    """Where each object of a unit is written down: generated files and the base's files.
    A base's files are read once, and kept in `bases` for the units of other environments."""
    inside = os.path.realpath(root) + os.sep
    written: Written = []
    folder = root / unit.folder
    for path in sorted(folder.glob("*.yaml")):
        if path.name not in KUSTOMIZATION_NAMES:
            written += _written(path, f"{unit.folder}/{path.name}", inside)
    if unit.release is not None:
        relative = unit.release.base
        base = bases.get(relative)
        if base is None:
            base = bases[relative] = [
                entry
                for path in sorted((root / relative).rglob("*"))
                if path.suffix in (".yaml", ".yml")
                and path.name not in KUSTOMIZATION_NAMES
                and path.is_file()
                for entry in _written(path, path.relative_to(root).as_posix(), inside)
            ]
        written += base
    found: dict[tuple[str, str], Document] = {}
    for key, document in written:
        found.setdefault(key, document)
    return found


def _written(path: Path, display: str, inside: str) -> Written:
    """The objects of one file; none for a file outside the repository (`inside`), through a
    link out of it, or not a regular one (a FIFO)."""
    if not os.path.realpath(path).startswith(inside) or not path.is_file():
        return []
    parsed = Parsed()
    try:
        parse_text(path.read_text(encoding="utf-8"), display, parsed)
    except (OSError, UnicodeDecodeError):
        return []
    return [((r.kind, r.name), r.document) for r in parsed.resources]


def _version_document(root: Path, unit: Unit, version: str) -> Document:
    """The version folder that generates a Deployment: where it points when the base's own
    Deployment is not among the base's files."""
    display = f"{unit.folder}/{version}/kustomization.yaml"
    try:
        text = (root / display).read_text(encoding="utf-8")
    except OSError:
        text = ""
    return Document(display, text, 1, 0)


def resources(
    root: Path, unit: Unit, result: kustomize.BuildResult, bases: dict[str, Written]
) -> list[Resource]:
    """The objects `unit` built to, each with the document its findings point into when the
    release files did not decide the field; `bases` keeps the base files read (`_sources`)."""
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
    sources = _sources(root, unit, bases)
    located: list[Resource] = []
    for resource in built.resources:
        origin = sources.get((resource.kind, resource.name))
        if resource.kind == "Deployment" and unit.release is not None:
            # Renamed <service>-<version>: the base's own Deployment.
            base_name = next((name for kind, name in sources if kind == "Deployment"), "")
            origin = sources.get(("Deployment", base_name))
            if origin is None:
                labels = resource.get("spec", "template", "metadata", "labels") or {}
                version = str(labels.get("version", "")) if isinstance(labels, dict) else ""
                origin = _version_document(root, unit, version)
            document = origin
        elif origin is None and unit.release is not None:
            # Named by kustomize (a suffix, a generated hash): find it by kind alone.
            same_kind = [doc for (kind, _), doc in sources.items() if kind == resource.kind]
            document = same_kind[0] if len(same_kind) == 1 else resource.document
        else:
            document = origin or resource.document
        located.append(Resource(resource.data, document, None))
    return located


def release_hints() -> dict[str, str]:
    """Rule ID → the rule's hint in the release and environment files' terms."""
    return {
        rule.ID: hint
        for rule in rules.all_rules()
        if isinstance(hint := getattr(rule, "RELEASE_HINT", None), str)
    }


class Relocation:
    """Points the findings on one environment's objects where the renderer says the field
    was decided."""

    def __init__(self, environment: str, provenance: Provenance, hints: Mapping[str, str]) -> None:
        self.environment = environment
        self.provenance = provenance
        self.hints = hints

    def origin(self, problem: Problem) -> tuple[Origins, Origin, tuple[str, ...]] | None:
        """The object's origins, the one that decided the finding's field, and the rest of
        the field's path below it; None when the base decided it, or it is no object's.

        `Origins.owner` is the release (or environment) file the finding belongs to: the
        file whose suppressions apply to it.
        """
        resource = problem.resource
        if resource is None:
            return None
        origins = self.provenance.of(
            self.environment, resource.kind, resource.namespace, resource.name
        )
        if origins is None:
            return None
        found = origins.find(parse_pointer(problem.path))
        if found is None:
            return None
        origin, rest = found
        return origins, origin, rest

    def __call__(self, problem: Problem) -> Problem:
        found = self.origin(problem)
        if found is None:
            return problem
        _, origin, rest = found
        hint = self.hints.get(problem.rule, problem.hint)
        return replace(problem, location=origin.location(rest), hint=hint)
