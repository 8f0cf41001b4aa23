"""Every subset a VirtualService routes or mirrors to is defined by a DestinationRule.

A route whose `destination.subset` (or `mirror.subset`, or `mirrors[].destination.subset`)
names a subset that no DestinationRule for that host defines fails in the proxy: Envoy has no
cluster for it and answers 503 (`NR`/`UH`) for every request the route gets. During a canary
this usually means the DestinationRule was not applied with the new version, or a version
name was misspelt.

Hosts are read the way Istio reads them: `name` is `name.<namespace of the VirtualService>
.svc.cluster.local`, `name.ns` is `name.ns.svc.cluster.local`, and an object without a
namespace counts as being in "default". Istio itself expands only a name without dots;
meshcanary also reads `name.ns` as the Service `name` in `ns`, as cluster DNS does.
DestinationRules in any namespace count, as Istio exports them everywhere by default. When no
DestinationRule exists for the host at all, the finding says so: the subset cannot exist.

Istio: IST0101 ReferencedResourceNotFound ("Referenced host+subset in destinationrule not
found"). The same check.

Fix: add the subset (name and labels) to the host's DestinationRule, or route to a subset it
defines.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from meshcanary.mesh import ISTIO, Mesh, Readings, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "subset-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every subset a route names exists in a DestinationRule for its host"
HINT = "define the subset in the host's DestinationRule, or route to a subset it defines"
RELEASE_HINT = (
    "the release file renders a subset for each of its `versions:`: a generated file edited by "
    "hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES = ("IST0101",)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    readings = Readings.of(scope)
    for service in services:
        for destination in chain(readings.destinations(service), readings.mirrors(service)):
            if destination.subset is None:
                continue
            rules = mesh.destination_rules(destination.host)
            if not rules:
                yield Finding(
                    service,
                    destination.subset_path,
                    f"subset {destination.subset!r} cannot exist: no DestinationRule for host "
                    f"{destination.host}",
                    hint=f"add a DestinationRule with host {destination.host} that defines "
                    f"subset {destination.subset!r}",
                )
                continue
            defined = sorted({s.name for rule in rules for s in readings.subsets(rule)})
            if destination.subset not in defined:
                names = ", ".join(r.name for r in rules)
                yield Finding(
                    service,
                    destination.subset_path,
                    f"subset {destination.subset!r} is not defined by DestinationRule {names} "
                    f"for host {destination.host} (it defines {', '.join(defined) or 'none'})",
                )
