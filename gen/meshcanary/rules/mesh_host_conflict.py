"""No two VirtualServices bound to the mesh claim the same host.

Istio merges the VirtualServices of one host only on gateways. For the mesh (the sidecars:
a VirtualService without `gateways`, or with `mesh` among them), each host gets the rules of
one VirtualService, and which one is not specified: the other is silently ignored. Two canary
splits of the same Service shadow each other, and which weights apply can change when either
object is re-applied.

Hosts are compared after reading short names in the VirtualService's namespace (`reviews` in
namespace `prod` and `reviews.prod.svc.cluster.local` are the same host). VirtualServices
exported to different namespaces (`exportTo`) do not conflict; as in istioctl, one exported to
every namespace and one exported only to some are not compared either.

Istio: IST0109 ConflictingMeshGatewayVirtualServiceHosts. The same check, except that
istioctl compares a host with dots as written (`reviews.prod` is not
`reviews.prod.svc.cluster.local` to it) and reports at the VirtualService's name; meshcanary
reports each VirtualService at the host entry, naming the others with their file and line.

Fix: merge the VirtualServices into one, give each a different host, or scope them with
`exportTo`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, MESH, described_at, items, namespace_of, of_kind, resolve_host
from meshcanary.problem import Severity
from meshcanary.registry import EVERY_NAMESPACE, exported_to
from meshcanary.rules import Finding, Scope

ID = "mesh-host-conflict"
SEVERITY = Severity.ERROR
SUMMARY = "no two VirtualServices bound to the mesh claim the same host"
HINT = "merge the VirtualServices, give each its own host, or scope them with exportTo"
RELEASE_HINT = "give each release its own `hosts:`, or bind only one of them to `mesh`"
ISTIO_CODES = ("IST0109",)

Claim = tuple[Resource, list[str | int]]  # a VirtualService and the path of its host entry


def check(scope: Scope) -> Iterator[Finding]:
    claims: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for service in of_kind(scope, ISTIO, "VirtualService"):
        if not _bound_to_mesh(service):
            continue
        namespace = namespace_of(service)
        visible = exported_to(service.get("spec", "exportTo"), namespace)
        scopes = sorted(visible) if visible is not None else [EVERY_NAMESPACE]
        seen: set[tuple[str, str]] = set()
        for path, host in items(service, "spec", "hosts"):
            if not isinstance(host, str) or not host.strip():
                continue
            resolved = resolve_host(host, namespace)
            for where in scopes:
                if (where, resolved) not in seen:  # a host listed twice is istio-route-valid's
                    seen.add((where, resolved))
                    claims[where, resolved].append((service, path))
    # A host claimed in several shared namespaces is reported once per entry.
    reported: set[tuple[int, tuple[str | int, ...]]] = set()
    for (_, host), claimants in sorted(claims.items()):
        if len({id(s) for s, _ in claimants}) < 2:
            continue
        for service, path in claimants:
            if (id(service), tuple(path)) in reported:
                continue
            reported.add((id(service), tuple(path)))
            named = [described_at(s, p) for s, p in claimants if s is not service]
            others = (
                " and ".join((", ".join(named[:-1]), named[-1])) if len(named) > 1 else named[0]
            )
            yield Finding(
                service,
                path,
                f"host {host} is also bound to the mesh by {others}: sidecars apply only one "
                "of them, so one's routes and weights are silently ignored",
            )


def _bound_to_mesh(service: Resource) -> bool:
    gateways = service.get("spec", "gateways")
    return not gateways or (isinstance(gateways, list) and MESH in gateways)
