"""A route bound only to gateways leaves in-mesh callers unweighted.

`spec.gateways` replaces the default (`mesh`, the sidecars of every workload) rather than
adding to it. A VirtualService that lists only ingress gateways applies its subsets and weights
to traffic entering through them; callers inside the mesh that call the Service directly
bypass it and are balanced over every pod behind the Service, old and new version alike: a
canary meant to get 5% gets internal traffic in proportion to its pods instead.

Reported when `spec.gateways` is set without `mesh`, the VirtualService splits traffic (a
route with several destinations, or a destination naming a subset), and no other VirtualService
in scope that applies to the mesh (no `gateways`, or `mesh` among them) has the destination's
host. The finding points at `gateways`.

The Gateway API has the same trap in other words: a route applies only where its
`parentRefs` attach it, and a Gateway parent attaches it to the traffic entering through that
Gateway's listeners. In-mesh callers reach the route only through their Service as a parent
(GAMMA: `group: ""`, `kind: Service`), and are otherwise balanced over every pod the Service
selects. Reported when an HTTPRoute or GRPCRoute whose parents are all Gateways has a rule
that splits traffic (two or more backendRefs) over Services of its namespace, and the Service
callers use (one of that namespace whose selector is part of each of theirs, so that it selects
all their pods: `checkout` for `checkout-v1` and `checkout-v2`) is the parent of no route in
scope. The finding points at `parentRefs`.

Fix: add `mesh` to `spec.gateways`, and the Service's host to `spec.hosts`, or route in-mesh
traffic with a second VirtualService bound to `mesh`; for a Gateway API route, add the Service
to its `parentRefs`, or bind a second route to it.

Istio: none; stricter than istioctl analyze, which accepts a gateway-only VirtualService
(the configuration is valid, only the canary is not what it seems). IST0140 is the reverse
case, `ingress-bypasses-subsets`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    ISTIO,
    MESH,
    destinations,
    labels,
    namespace_of,
    of_kind,
    resolve_host,
    routes,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Routes, backend_refs, parent_refs

ID = "mesh-unweighted"
SEVERITY = Severity.WARNING
SUMMARY = "a route bound only to gateways leaves in-mesh callers unweighted"
HINT = "add `mesh` to spec.gateways (and the Service's host to spec.hosts)"
RELEASE_HINT = "add `mesh` to `gateways:` in the release file (and the Service's host to `hosts:`)"
GATEWAY_API_HINT = 'add the Service to parentRefs (`group: ""`, `kind: Service`, `name: ...`)'

# The route kinds that split requests by weight and that a Gateway parent binds to ingress.
SPLITTING_KINDS = ("HTTPRoute", "GRPCRoute")


def check(scope: Scope) -> Iterator[Finding]:
    yield from _virtual_services(scope)
    yield from _gateway_api_routes(scope)


def _virtual_services(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    in_mesh: set[str] = set()
    for service in services:
        gateways = service.get("spec", "gateways")
        if _applies_to_mesh(gateways):
            in_mesh.update(_hosts(service))
    for service in services:
        gateways = service.get("spec", "gateways")
        if _applies_to_mesh(gateways) or not isinstance(gateways, list):
            continue
        split = _split_hosts(service) - in_mesh
        if not split:
            continue
        names = ", ".join(str(g) for g in gateways)
        plural = "s" if len(gateways) > 1 else ""
        yield Finding(
            service,
            ["spec", "gateways"],
            f"bound only to gateway{plural} {names}: in-mesh callers of {', '.join(sorted(split))} "
            "bypass these weights and reach every version behind the Service",
            key=True,
        )


def _applies_to_mesh(gateways: object) -> bool:
    return not gateways or (isinstance(gateways, list) and MESH in gateways)


def _hosts(service: Resource) -> set[str]:
    hosts = service.get("spec", "hosts")
    if not isinstance(hosts, list):
        return set()
    return {resolve_host(h, namespace_of(service)) for h in hosts if isinstance(h, str)}


def _split_hosts(service: Resource) -> set[str]:
    """Hosts of destinations that carry a share of a split, or name a subset."""
    split_routes = {tuple(path) for path, route in routes(service) if len(route) > 1}
    return {
        d.host
        for d in destinations(service)
        if d.subset is not None or tuple(d.path[:4]) in split_routes
    }


def _gateway_api_routes(scope: Scope) -> Iterator[Finding]:
    index = Routes.of(scope)
    if not index.routes:
        return
    # Services some route in scope is bound to (GAMMA): their in-mesh callers are routed.
    bound = {ref.key for route in index.routes for ref in parent_refs(route) if ref.is_service}
    # Each selector label (namespace, key, value) → the Services whose selector has it.
    postings: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    selectors: dict[tuple[str, str], dict[str, str]] = {}
    for key, service in index.services.items():
        selector = labels(service.get("spec", "selector"))
        if selector:
            selectors[key] = selector
            for label in selector.items():
                postings[(key[0], *label)].append(key)
    for route in index.routes:
        if route.kind not in SPLITTING_KINDS:
            continue
        parents = list(parent_refs(route))
        if not parents or not all(ref.is_gateway for ref in parents):
            continue
        namespace = namespace_of(route)
        unrouted: set[str] = set()
        for backends in backend_refs(route):
            if len(backends) < 2:
                continue
            keys = [ref.key for ref in backends if ref.is_service and ref.namespace == namespace]
            if len(keys) != len(backends) or any(key not in selectors for key in keys):
                continue  # a backend whose pods are not known here
            common = set(selectors[keys[0]].items())
            for key in keys[1:]:
                common &= set(selectors[key].items())
            unrouted.update(
                name for _, name in _callers(namespace, common, postings, selectors) - bound
            )
        if not unrouted:
            continue
        names = ", ".join(sorted(unrouted))
        shown = {
            ref.name if ref.namespace == namespace else f"{ref.namespace}/{ref.name}"
            for ref in parents
        }
        gateways = ", ".join(sorted(shown))
        plural = "s" if len(shown) > 1 else ""
        yield Finding(
            route,
            ["spec", "parentRefs"],
            f"bound only to Gateway{plural} {gateways}: in-mesh callers of Service {names} "
            "bypass these weights and reach every version behind it (no route has it as parent)",
            hint=GATEWAY_API_HINT,
            key=True,
        )


def _callers(
    namespace: str,
    common: set[tuple[str, str]],
    postings: dict[tuple[str, str, str], list[tuple[str, str]]],
    selectors: dict[tuple[str, str], dict[str, str]],
) -> set[tuple[str, str]]:
    """Services of `namespace` whose whole selector is among the `common` labels."""
    hits: dict[tuple[str, str], int] = defaultdict(int)
    for label in common:
        for key in postings.get((namespace, *label), []):
            hits[key] += 1
    return {key for key, count in hits.items() if count == len(selectors[key])}
