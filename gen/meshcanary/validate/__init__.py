"""Schema validation of Kubernetes and Istio resources: embedded (in-process) or kubeconform."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary.problem import Problem, Severity
from meshcanary.report import Status

if TYPE_CHECKING:
    from meshcanary.manifest import Resource

RULE = "schema"  # schema errors and CRD validation rules alike, as the API server sees them


@dataclass(frozen=True)
class Verdict:
    """What schema validation made of one resource."""

    status: Status
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Options:
    """Validation options, named and behaving as kubeconform's flags do."""

    kubernetes_version: str | None = None  # x.y.z; None = the newest bundled
    strict: bool = False  # unknown fields (and duplicate keys) are errors
    schema_locations: tuple[str, ...] = ()  # templates; "default" = the bundled schemas
    skip: frozenset[str] = field(default_factory=frozenset)  # Kind or apiVersion/Kind
    reject: frozenset[str] = field(default_factory=frozenset)
    ignore_missing_schemas: bool = False
    crds: tuple[Path, ...] = ()  # CustomResourceDefinition files


def kind_matches(names: frozenset[str], api_version: str, kind: str) -> bool:
    """kubeconform's -skip/-reject matching: `Kind` or `apiVersion/Kind`."""
    return kind in names or f"{api_version}/{kind}" in names


def problem(
    resource: Resource,
    path: list[str | int],
    message: str,
    hint: str = "",
    *,
    key: bool | None = None,
) -> Problem:
    """A `schema` error at `path`: at the field's key if `key`, by default if the field is a
    mapping or a list."""
    # Imported here: `check` answered from its cache imports this package, and no YAML.
    from meshcanary.manifest import pointer

    if key is None:
        target = resource.get(*path) if path else resource.data
        key = isinstance(target, dict | list) and bool(path)
    return Problem(
        location=resource.location(path, key=key),
        message=message,
        hint=hint,
        rule=RULE,
        severity=Severity.ERROR,
        resource=resource.ref,
        path=pointer(path),
    )
