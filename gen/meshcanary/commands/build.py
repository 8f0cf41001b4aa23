"""`meshcanary build`: run kustomize on every service overlay and summarise what it yields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml import YAMLError

from meshcanary.check.build import build as build_units
from meshcanary.check.scope import affected
from meshcanary.manifest import BadDocument, objects
from meshcanary.problem import Problem
from meshcanary.release.load import LoadedEnvironment


@dataclass(frozen=True)
class Built:
    environment: str
    unit: str  # a service, or _gateways
    folder: str
    error: str
    resources: tuple[dict[str, Any], ...]
    problems: tuple[Problem, ...] = ()  # entries refused before kustomize ran, at their lines

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("kind") == kind]

    def summary(self) -> dict[str, str]:
        """Short columns for the table: versions with replicas, weights, subsets."""
        deployments = " ".join(
            f"{_version(d)}×{(d.get('spec') or {}).get('replicas', 1)}"
            for d in self.kinds("Deployment")
        )
        weights: list[str] = []
        for service in self.kinds("VirtualService"):
            for route in (service.get("spec") or {}).get("http") or []:
                destinations = route.get("route") or []
                if any("weight" in d for d in destinations):
                    weights.append("/".join(str(d.get("weight", 0)) for d in destinations))
        for kind in ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"):
            for route in self.kinds(kind):
                for rule in (route.get("spec") or {}).get("rules") or []:
                    backends = rule.get("backendRefs") or []
                    if any("weight" in b for b in backends):
                        weights.append("/".join(str(b.get("weight", 1)) for b in backends))
        subsets = [
            s.get("name", "?")
            for rule in self.kinds("DestinationRule")
            for s in (rule.get("spec") or {}).get("subsets") or []
        ]
        return {
            "resources": str(len(self.resources)),
            "deployments": deployments,
            "services": str(len(self.kinds("Service"))),
            "subsets": " ".join(subsets),
            "weights": " ".join(dict.fromkeys(weights)),
            "gateways": str(len(self.kinds("Gateway"))),
        }


def _version(deployment: dict[str, Any]) -> str:
    labels = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
        "labels"
    ) or {}
    return str(labels.get("version", deployment.get("metadata", {}).get("name", "?")))


def build(
    root: Path, environments: Sequence[LoadedEnvironment], jobs: int | None = None
) -> list[Built]:
    """Every overlay (the gateways first) of each environment, built in batches as `check`
    builds them."""
    units = affected(root, environments, [])
    built = []
    for unit, result in zip(units, build_units(root, units, jobs), strict=True):
        error, resources = result.error, result.documents or ()
        if result.ok and result.documents is None:
            # Built on its own, after its batch failed: kustomize's text, parsed here.
            try:
                resources = tuple(objects(result.text))
            except (YAMLError, BadDocument) as exc:
                error = f"kustomize printed what does not parse: {exc}"
        name = unit.environment.environment.name
        built.append(Built(name, unit.name, result.folder, error, resources, result.problems))
    return built
