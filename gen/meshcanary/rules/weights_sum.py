"""Weights of every route are integers from 0 to 100 that sum to exactly 100.

Istio accepts any weights whose total is above zero and divides traffic in proportion. That
lets `70` and `20` mean 78% and 22%, which is not what anyone who wrote them meant; meshcanary
is stricter on purpose so that a weight always reads as a percentage. A route with a single
destination may leave out its weight (it gets all the traffic).

Istio: IST0106 SchemaValidationError, for a route of several destinations whose weights are
all 0 ("total destination weight = 0"): Istio refuses that VirtualService, and the finding says
so. Stricter: Istio accepts any other weights whose total is above zero.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "weights-sum-100"
SEVERITY = Severity.ERROR
SUMMARY = "the weights of each route are integers 0..100 and sum to 100"
HINT = "make the weights of this route percentages that add up to 100"
RELEASE_HINT = (
    "the weights come from `versions:` in the release file, which sum to 100: a generated "
    "VirtualService edited by hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES = ("IST0106",)


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


def _check_route(
    service: Resource, path: list[str | int], destinations: list[object]
) -> Iterator[Finding]:
    weights: list[int] = []
    for index, destination in enumerate(destinations):
        weight = destination.get("weight") if isinstance(destination, dict) else None
        if weight is None:
            if len(destinations) > 1:
                yield Finding(
                    service,
                    [*path, index],
                    "destination has no weight; with several destinations each needs one",
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
            + (": Istio refuses a route whose weights are all 0" if refused else ""),
        )
