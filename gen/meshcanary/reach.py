"""Whether two sets of routes send every request to the same place: requests drawn from their
conditions, each taken by both decision tables (meshcanary.routing), outcomes compared.

The requests meet and miss each condition: every path, method, header and query value a
condition names, one just past it (a longer path, another value), none at all, in every mix;
values for regular expressions come from the caller (the releases' cookie pins), since a
regular expression cannot be sampled in general. What this says is exactly as strong as that
set of requests: a difference it finds is real, and "none found" is over those requests.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from meshcanary import routing
from meshcanary.routing_gateway import ONLY

# Past this many requests the mix is cut: a hostile set of conditions must not run for hours.
MOST_REQUESTS = 20_000


@dataclass(frozen=True)
class Difference:
    key: routing.Key
    request: routing.Request
    before: object  # what the request reaches: a decision's outcome, or None (no route)
    after: object


def requests(
    tables: Sequence[routing.Table], values: Mapping[str, Collection[str]] | None = None
) -> list[routing.Request]:
    """Requests that meet and miss each condition of `tables`; `values`: more values of a
    header (lower-case name) to try, such as cookies the regular expressions take."""
    paths, methods, ports = {"/", "/other"}, {"GET"}, {None}
    headers: dict[str, set[str | None]] = {n: {None, *v} for n, v in (values or {}).items()}
    query: dict[str, set[str | None]] = {}
    for table in tables:
        for decisions in table.routes.values():
            for condition in (d.condition for d in decisions):
                prefix = condition.get(ONLY + "pathPrefix")
                for value in [*condition.get("uri", {}).values(), *([prefix] if prefix else [])]:
                    paths.update({value, f"{value}x", f"{value}/x"})
                methods.update(condition.get("method", {}).values())
                ports.add(condition.get("port"))
                for name, match in condition.get("headers", {}).items():
                    headers.setdefault(name, {None, "other"}).update(
                        v for k, v in match.items() if k != "regex"
                    )
                for name, match in condition.get("queryParams", {}).items():
                    query.setdefault(name, {None}).update(match.values())
    names, params = sorted(headers), sorted(query)
    found: list[routing.Request] = []
    mixes = itertools.product(
        sorted(paths),
        sorted(methods),
        sorted(ports, key=lambda p: (p is not None, p or 0)),
        itertools.product(*(sorted(headers[n], key=str) for n in names)),
        itertools.product(*(sorted(query[n], key=str) for n in params)),
    )
    for path, method, port, said, asked in itertools.islice(mixes, MOST_REQUESTS):
        found.append(
            routing.Request(
                path=path,
                method=method,
                headers={n: v for n, v in zip(names, said, strict=True) if v},
                query={n: v for n, v in zip(params, asked, strict=True) if v},
                port=port,
            )
        )
    return found


def _outcome(decisions: Sequence[routing.Decision], request: routing.Request) -> object:
    decision = routing.reached(decisions, request)
    return decision.outcome() if decision is not None else None


def differences(
    before: routing.Table,
    after: routing.Table,
    values: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[Difference], list[routing.Key], list[routing.Key]]:
    """Each request that reaches something else after than before, on the keys both tables
    route; and the keys only `before` routes, and only `after`."""
    asked = requests([before, after], values)
    shared = sorted(set(before.routes) & set(after.routes))
    found = [
        Difference(key, request, old, new)
        for key in shared
        for request in asked
        if (old := _outcome(before.routes[key], request))
        != (new := _outcome(after.routes[key], request))
    ]
    gone = sorted(set(before.routes) - set(after.routes))
    new_keys = sorted(set(after.routes) - set(before.routes))
    return found, gone, new_keys
