"""A route does not send traffic to a version scaled to zero replicas.

A weight above 0 sends that share of requests to the subset's pods. If the subset's only
Deployment has `replicas: 0`, there are no pods: Envoy answers those requests with 503 (no
healthy upstream), and a canary step meant to shift 10% of traffic fails 10% of requests.
This typically happens when a version is scaled down before its weight is set to 0, or a new
version's weight is raised before it is scaled up.

The subset is found through the DestinationRule for the destination's host, and its
Deployment as in `subset-selects-one-deployment` (subset labels plus the Service's selector,
in the Service's namespace); when that is not exactly one Deployment, that rule reports it
and this one stays quiet. A lone destination without a weight gets all the traffic. A
Deployment without `replicas` has one.

Fix: scale the Deployment up before giving it traffic, or set the weight to 0 first.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import ISTIO, Mesh, Readings, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "weight-without-replicas"
SEVERITY = Severity.ERROR
SUMMARY = "a route gives weight > 0 only to subsets whose Deployment has replicas"
HINT = "scale the version's Deployment up before routing to it, or set its weight to 0"
RELEASE_HINT = (
    "raise the version's `replicas:` in the release file before giving it `weight:`, or set "
    "its weight to 0"
)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    readings = Readings.of(scope)
    for service in services:
        for destination in readings.destinations(service):
            if destination.weight is None or destination.weight <= 0 or destination.subset is None:
                continue
            subset = mesh.subset(destination.host, destination.subset)
            if subset is None:
                continue
            selected = mesh.subset_deployments(destination.host, subset)
            if selected is None or len(selected) != 1:
                continue
            replicas = selected[0].get("spec", "replicas")
            if isinstance(replicas, bool) or replicas != 0:
                continue
            yield Finding(
                service,
                destination.weight_path or destination.subset_path,
                f"weight {destination.weight} goes to subset {destination.subset!r}, but its "
                f"Deployment {selected[0].name} has replicas: 0",
            )
