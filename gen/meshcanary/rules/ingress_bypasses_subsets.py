"""A gateway route to a host the mesh splits by subset names a subset too.

A gateway applies only the VirtualServices bound to it. When an ingress VirtualService routes
to a host without naming a subset, the gateway balances over every pod of the host's Service,
old and new version alike, whatever another VirtualService's subsets and weights say for the
mesh: external traffic ignores the canary split.

Reported at the destination's `host`, for each destination without a subset of a
VirtualService bound to a gateway other than `mesh`, when another VirtualService that applies
to the mesh has that host among its `hosts` and routes it to a subset. Hosts are compared after
reading short names in each VirtualService's namespace.

Istio: IST0140 IngressRouteRulesNotAffected. Broader: istioctl looks at HTTP routes only and
compares hosts as written; meshcanary also reads TCP and TLS routes and matches `reviews` with
`reviews.<namespace>.svc.cluster.local`.

Fix: route the gateway's traffic to the subsets too (the same split, or `mesh` and the
gateway in one VirtualService), or drop the subsets from the mesh's VirtualService.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    ISTIO,
    MESH,
    Readings,
    bound_gateways,
    described_at,
    of_kind,
    own_hosts,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "ingress-bypasses-subsets"
SEVERITY = Severity.WARNING
SUMMARY = "a gateway route to a host the mesh splits by subset names a subset too"
HINT = "route the gateway's traffic to the subsets too, or bind one VirtualService to both"
RELEASE_HINT = "add the gateway to `gateways:` in the release file that splits this host"
ISTIO_CODES = ("IST0140",)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    splitters: dict[str, list[Resource]] = {}
    readings = Readings.of(scope)
    for service in services:
        bound = bound_gateways(service)
        if bound and MESH not in bound:
            continue
        own = own_hosts(service)
        for host in sorted({d.host for d in readings.destinations(service) if d.subset} & own):
            splitters.setdefault(host, []).append(service)
    if not splitters:
        return
    for service in services:
        gateways = [g for g in bound_gateways(service) if g != MESH]
        if not gateways:
            continue
        for destination in readings.destinations(service):
            if destination.subset:
                continue
            others = [s for s in splitters.get(destination.host, []) if s is not service]
            if not others:
                continue
            where = ", ".join(described_at(s) for s in others)
            yield Finding(
                service,
                [*destination.path, "host"],
                f"traffic from gateway {', '.join(gateways)} to {destination.host} names no "
                f"subset: it reaches every version, whatever the subsets of {where} say",
            )
