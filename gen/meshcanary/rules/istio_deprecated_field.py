"""No VirtualService or DestinationRule uses a field Istio has deprecated.

Istio still reads these fields, but hides them from its documentation, and each has a
replacement that says more (a fraction rather than a whole percent, a warmup with a curve):

- VirtualService `http[]`: `mirrorPercent` (and `mirror_percent`) → `mirrorPercentage`;
  `fault.delay.percent` → `fault.delay.percentage`; `corsPolicy.allowOrigin` →
  `corsPolicy.allowOrigins`;
- DestinationRule traffic policies (the rule's, each subset's, and each port's):
  `outlierDetection.consecutiveErrors` → `consecutive5xxErrors` (or
  `consecutiveGatewayErrors`); `loadBalancer.consistentHash.minimumRingSize` →
  `loadBalancer.consistentHash.ringHash.minimumRingSize`; `loadBalancer.warmupDurationSecs` →
  `loadBalancer.warmup.duration`.

Istio: IST0133 SchemaWarning, for `mirrorPercent`, `consecutiveErrors` and `minimumRingSize`,
the deprecations Istio's validation warns about. Broader: the others are deprecated in Istio's
API without a warning.

Fix: move the value to the replacement field the message names.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, items, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "istio-deprecated-field"
SEVERITY = Severity.WARNING
SUMMARY = "no VirtualService or DestinationRule uses a field Istio has deprecated"
HINT = "move the value to the replacement field"
ISTIO_CODES = ("IST0133",)

Path = tuple[str, ...]

# Deprecated field (a path) → its replacement, in an HTTP route.
HTTP_ROUTE: dict[Path, str] = {
    ("mirrorPercent",): "mirrorPercentage: {value: <percent>}",
    ("mirror_percent",): "mirrorPercentage: {value: <percent>}",
    ("fault", "delay", "percent"): "fault.delay.percentage: {value: <percent>}",
    ("corsPolicy", "allowOrigin"): "corsPolicy.allowOrigins: [{exact: <origin>}]",
}
# In a traffic policy.
TRAFFIC_POLICY: dict[Path, str] = {
    ("outlierDetection", "consecutiveErrors"): (
        "outlierDetection.consecutive5xxErrors (or consecutiveGatewayErrors)"
    ),
    ("loadBalancer", "consistentHash", "minimumRingSize"): (
        "loadBalancer.consistentHash.ringHash.minimumRingSize"
    ),
    ("loadBalancer", "warmupDurationSecs"): "loadBalancer.warmup.duration",
}


def check(scope: Scope) -> Iterator[Finding]:
    for service in of_kind(scope, ISTIO, "VirtualService"):
        for path, _ in items(service, "spec", "http"):
            yield from _deprecated(service, path, HTTP_ROUTE)
    for rule in of_kind(scope, ISTIO, "DestinationRule"):
        for policy in _policies(rule):
            yield from _deprecated(rule, policy, TRAFFIC_POLICY)


def _policies(rule: Resource) -> Iterator[list[str | int]]:
    """The rule's traffic policy, each subset's, and the port-level settings of each."""
    tops: list[list[str | int]] = [["spec", "trafficPolicy"]]
    tops += [[*path, "trafficPolicy"] for path, _ in items(rule, "spec", "subsets")]
    for top in tops:
        if isinstance(rule.get(*top), dict):
            yield top
            yield from (path for path, _ in items(rule, *top, "portLevelSettings"))


def _deprecated(
    resource: Resource, at: list[str | int], fields: dict[Path, str]
) -> Iterator[Finding]:
    for field, replacement in fields.items():
        if resource.get(*at, *field) is not None:
            yield Finding(
                resource,
                [*at, *field],
                f"{'.'.join(field)} is deprecated: use {replacement}",
                key=True,
            )
