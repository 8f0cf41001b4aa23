"""A VirtualService bound only to gateways leaves in-mesh callers unweighted.

`spec.gateways` replaces the default (`mesh`, the sidecars of every workload) rather than
adding to it. A VirtualService that lists only ingress gateways applies its subsets and weights
to traffic entering through them; callers inside the mesh that call the Service directly
bypass it and are balanced over every pod behind the Service, old and new version alike: a
canary meant to get 5% gets internal traffic in proportion to its pods instead.

Reported when `spec.gateways` is set without `mesh`, the VirtualService splits traffic (a
route with several destinations, or a destination naming a subset), and no other VirtualService
in scope that applies to the mesh (no `gateways`, or `mesh` among them) has the destination's
host. The finding points at `gateways`.

Fix: add `mesh` to `spec.gateways`, and the Service's host to `spec.hosts`, or route in-mesh
traffic with a second VirtualService bound to `mesh`.

Istio: none; stricter than istioctl analyze, which accepts a gateway-only VirtualService
(the configuration is valid, only the canary is not what it seems). IST0140 is the reverse
case, `ingress-bypasses-subsets`.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    ISTIO,
    MESH,
    destinations,
    namespace_of,
    of_kind,
    resolve_host,
    routes,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "mesh-unweighted"
SEVERITY = Severity.WARNING
SUMMARY = "a route bound only to gateways leaves in-mesh callers unweighted"
HINT = "add `mesh` to spec.gateways (and the Service's host to spec.hosts)"
RELEASE_HINT = "add `mesh` to `gateways:` in the release file (and the Service's host to `hosts:`)"


def check(scope: Scope) -> Iterator[Finding]:
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
