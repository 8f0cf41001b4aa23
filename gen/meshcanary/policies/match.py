"""What a policy or binding matches: resource rules, label selectors, resource plurals.

Offline, a namespace is known only by its name: `namespaceSelector` sees the one label the
API server sets on every namespace, `kubernetes.io/metadata.name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshcanary.manifest import Resource

# Kinds whose plural is not the lower-case kind plus the usual English ending.
IRREGULAR_PLURALS = {
    "Endpoints": "endpoints",
    "Gateway": "gateways",
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Deployment": "deployments",
    "Service": "services",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "ServiceEntry": "serviceentries",
    "Sidecar": "sidecars",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
}


def resource_plural(kind: str) -> str:
    """The resource name `resourceRules` use for `kind` (Deployment → deployments)."""
    if kind in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


# Selectors -------------------------------------------------------------------------------


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions); absent or {} matches all."""
    if not isinstance(selector, dict):
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _labels(resource: Resource) -> dict[str, str]:
    labels = resource.metadata.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _namespace_labels(resource: Resource) -> dict[str, str]:
    # Offline we know a namespace only by name: the label the API server sets on every one.
    name = resource.name if resource.kind == "Namespace" else resource.namespace or "default"
    return {"kubernetes.io/metadata.name": name}


@dataclass(frozen=True)
class ResourceRule:
    api_groups: frozenset[str]
    api_versions: frozenset[str]
    resources: frozenset[str]
    operations: frozenset[str]
    names: frozenset[str]

    @classmethod
    def read(cls, rule: Any) -> ResourceRule:
        def field_set(name: str, default: tuple[str, ...] = ()) -> frozenset[str]:
            value = rule.get(name) if isinstance(rule, dict) else None
            return (
                frozenset(str(v) for v in value) if isinstance(value, list) else frozenset(default)
            )

        return cls(
            field_set("apiGroups"),
            field_set("apiVersions"),
            field_set("resources"),
            field_set("operations", ("*",)),
            field_set("resourceNames"),
        )

    def matches(self, resource: Resource, operation: str) -> bool:
        group, _, version = resource.api_version.rpartition("/")

        def hit(allowed: frozenset[str], value: str) -> bool:
            return "*" in allowed or value in allowed

        return (
            hit(self.api_groups, group)
            and hit(self.api_versions, version)
            and (hit(self.resources, resource_plural(resource.kind)) or "*/*" in self.resources)
            and hit(self.operations, operation)
            and (not self.names or resource.name in self.names)
        )


@dataclass(frozen=True)
class Match:
    """`matchConstraints` of a policy or `matchResources` of a binding."""

    rules: tuple[ResourceRule, ...] | None  # None: any resource (a binding without rules)
    excluded: tuple[ResourceRule, ...]
    namespace_selector: Any
    object_selector: Any

    @classmethod
    def read(cls, spec: Any, *, rules_required: bool) -> Match:
        spec = spec if isinstance(spec, dict) else {}
        rules = spec.get("resourceRules")
        return cls(
            tuple(ResourceRule.read(r) for r in rules)
            if isinstance(rules, list)
            else (() if rules_required else None),
            tuple(ResourceRule.read(r) for r in spec.get("excludeResourceRules") or []),
            spec.get("namespaceSelector"),
            spec.get("objectSelector"),
        )

    def matches(self, resource: Resource, operation: str) -> bool:
        if self.rules is not None and not any(r.matches(resource, operation) for r in self.rules):
            return False
        if any(r.matches(resource, operation) for r in self.excluded):
            return False
        return selector_matches(
            self.namespace_selector, _namespace_labels(resource)
        ) and selector_matches(self.object_selector, _labels(resource))
