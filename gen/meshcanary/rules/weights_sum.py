"""Weights of every route are integers from 0 to 100 that sum to exactly 100.

A route is a VirtualService's http, tcp or tls route (its `route` destinations), or a rule of
a Gateway API HTTPRoute, GRPCRoute, TCPRoute or TLSRoute (its `backendRefs`).

Istio accepts any weights whose total is above zero and divides traffic in proportion. That
lets `70` and `20` mean 78% and 22%, which is not what anyone who wrote them meant; meshcanary
is stricter on purpose so that a weight always reads as a percentage. A route with a single
destination may leave out its weight (it gets all the traffic).

Istio: IST0106 SchemaValidationError, for a route of several destinations whose weights are
all 0 ("total destination weight = 0"): Istio refuses that VirtualService, and the finding says
so. Stricter: Istio accepts any other weights whose total is above zero.

Gateway API: a backendRef's weight is "not a percentage and the sum of weights does not need
to equal 100"; an omitted weight is 1, and "if weight is set to 0, no traffic should be
forwarded for this entry", so a rule whose weights are all 0 forwards nothing. meshcanary
reads them as percentages all the same: with several backendRefs each needs a weight, and a
rule with a single backendRef may leave it out. The finding points at the rule's backendRefs
as it points at a VirtualService's route.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import items
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Routes

ID = "weights-sum-100"
SEVERITY = Severity.ERROR
SUMMARY = "the weights of each route (VirtualService or Gateway API) are 0..100 and sum to 100"
HINT = "make the weights of this route percentages that add up to 100"
RELEASE_HINT = (
    "the weights come from `versions:` in the release file, which sum to 100: a generated "
    "VirtualService or route edited by hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES = ("IST0106",)

_UNWEIGHTED = {
    "destination": "destination has no weight; with several destinations each needs one",
    "backendRef": "backendRef has no weight (Gateway API reads it as 1); with several "
    "backendRefs each needs one",
}
_REFUSED = {
    "destination": "Istio refuses a route whose weights are all 0",
    "backendRef": "a rule whose weights are all 0 forwards no request to any backend",
}


def check(scope: Scope) -> Iterator[Finding]:
    for service in scope.of_kind("VirtualService"):
        for protocol in ("http", "tcp", "tls"):
            routes = service.get("spec", protocol)
            if not isinstance(routes, list):
                continue
            for index, route in enumerate(routes):
                destinations = route.get("route") if isinstance(route, dict) else None
                if not isinstance(destinations, list) or not destinations:
                    continue
                yield from _check_route(service, ["spec", protocol, index, "route"], destinations)
    for route in Routes.of(scope).routes:
        for path, rule in items(route, "spec", "rules"):
            entries = rule.get("backendRefs") if isinstance(rule, dict) else None
            if isinstance(entries, list) and entries:
                yield from _check_route(route, [*path, "backendRefs"], entries)


def _check_route(
    service: Resource, path: list[str | int], destinations: list[object]
) -> Iterator[Finding]:
    noun = "backendRef" if path[-1] == "backendRefs" else "destination"
    weights: list[int] = []
    for index, destination in enumerate(destinations):
        weight = destination.get("weight") if isinstance(destination, dict) else None
        if weight is None:
            if len(destinations) > 1:
                yield Finding(
                    service,
                    [*path, index],
                    _UNWEIGHTED[noun],
                )
            weights.append(100 if len(destinations) == 1 else 0)
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            yield Finding(
                service,
                [*path, index, "weight"],
                f"weight {weight!r} is not an integer from 0 to 100",
            )
            return
        weights.append(weight)
    total = sum(weights)
    if total != 100:
        last = len(destinations) - 1
        parts = " + ".join(str(w) for w in weights)
        refused = total == 0 and len(destinations) > 1
        yield Finding(
            service,
            [*path, last, "weight"],
            f"weights of this route sum to {total} ({parts}), not 100"
            + (f": {_REFUSED[noun]}" if refused else ""),
        )
