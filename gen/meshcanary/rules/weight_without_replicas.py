"""A route does not send traffic to a version scaled to zero replicas.

A weight above 0 sends that share of requests to the version's pods. If the version's only
Deployment has `replicas: 0`, there are no pods: Envoy answers those requests with 503 (no
healthy upstream), and a canary step meant to shift 10% of traffic fails 10% of requests.
This typically happens when a version is scaled down before its weight is set to 0, or a new
version's weight is raised before it is scaled up.

With Istio routing, the version is a subset: it is found through the DestinationRule for the
destination's host, and its Deployment as in `subset-selects-one-deployment` (subset labels
plus the Service's selector, in the Service's namespace); when that is not exactly one
Deployment, that rule reports it and this one stays quiet. A lone destination without a
weight gets all the traffic.

With Gateway API routing (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, any version), the
version is the Service a backendRef names, and its Deployment the workload the Service's
selector picks in the Service's namespace; when that is not exactly one workload,
`backend-selects-one-version` reports it and this rule stays quiet, as it does when that
workload is not a Deployment. A backendRef without `weight` has weight 1 ("If unspecified,
weight defaults to 1"), so a lone one gets all of its rule's traffic; one with `weight: 0`
gets none ("no traffic should be forwarded for this entry"). Mirrors are not checked: the
answer to a mirrored request is dropped, the caller's request does not fail.

A Deployment without `replicas` has one.

Fix: scale the Deployment up before giving it traffic, or set the weight to 0 first.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, Mesh, Readings, describe, of_kind, service_key
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Ref, Routes, backend_refs
from meshcanary.rules._workloads import Workloads, owners

ID = "weight-without-replicas"
SEVERITY = Severity.ERROR
SUMMARY = (
    "a route gives weight > 0 only to versions (subsets, backendRef Services) whose Deployment "
    "has replicas"
)
HINT = "scale the version's Deployment up before routing to it, or set its weight to 0"
RELEASE_HINT = (
    "raise the version's `replicas:` in the release file before giving it `weight:`, or set "
    "its weight to 0"
)


def check(scope: Scope) -> Iterator[Finding]:
    yield from _virtual_services(scope)
    yield from _gateway_api_routes(scope)


def _virtual_services(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    # A subset's Deployments are those of its host's namespace: where none is scaled to zero,
    # no route can send to one, and most inputs have none at all.
    idle = {n for n, found in mesh.deployments.items() if any(map(_scaled_to_zero, found))}
    if not idle:
        return
    readings = Readings.of(scope)
    for service in services:
        for destination in readings.destinations(service):
            if destination.weight is None or destination.weight <= 0 or destination.subset is None:
                continue
            key = service_key(destination.host)
            if key is None or key[0] not in idle:
                continue
            subset = mesh.subset(destination.host, destination.subset)
            if subset is None:
                continue
            selected = mesh.subset_deployments(destination.host, subset)
            if selected is None or len(selected) != 1 or not _scaled_to_zero(selected[0]):
                continue
            yield Finding(
                service,
                destination.weight_path or destination.subset_path,
                f"weight {destination.weight} goes to subset {destination.subset!r}, but its "
                f"Deployment {selected[0].name} has replicas: 0",
            )


def _gateway_api_routes(scope: Scope) -> Iterator[Finding]:
    routes = Routes.of(scope)
    if not routes.routes:
        return
    workloads = Workloads.of(scope)
    for route in routes.routes:
        for backends in backend_refs(route):
            for ref in backends:
                weight = _weight(ref)
                selector = routes.selector(ref)
                if weight is None or weight <= 0 or not selector:
                    continue
                selected = workloads.select(ref.namespace, [selector])
                if len(owners(selected)) != 1:
                    continue
                # The Deployment itself, not a ReplicaSet or Pod of it dumped from a cluster:
                # only it says how many replicas there are meant to be.
                deployment = next(
                    (
                        w.resource
                        for w in selected
                        if w.resource.kind == "Deployment" and describe(w.resource) == w.owner
                    ),
                    None,
                )
                if deployment is None or not _scaled_to_zero(deployment):
                    continue
                stated = route.get(*ref.path, "weight") is not None
                if stated:
                    given = f"weight {weight}"
                elif len(backends) == 1:
                    given = "all of this rule's traffic"
                else:
                    given = "weight 1 (the default)"
                yield Finding(
                    route,
                    [*ref.path, "weight"] if stated else ref.path,
                    f"{given} goes to Service {ref.namespace}/{ref.name}, but the Deployment it "
                    f"selects, {deployment.name}, has replicas: 0",
                )


def _scaled_to_zero(deployment: Resource) -> bool:
    replicas = deployment.get("spec", "replicas")
    return replicas == 0 and not isinstance(replicas, bool)


def _weight(ref: Ref) -> int | None:
    """The backendRef's weight, 1 when it has none; None when it is not a number."""
    weight = ref.route.get(*ref.path, "weight")
    if weight is None:
        return 1
    return weight if isinstance(weight, int) and not isinstance(weight, bool) else None
