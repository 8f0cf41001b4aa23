"""Schema validation of Kubernetes and Istio resources: embedded (in-process) or kubeconform."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meshcanary.problem import Problem
from meshcanary.report import Status


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
