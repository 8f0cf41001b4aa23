"""No two Gateway API routes claim the same match of the same hostname on the same parent.

When two routes of one kind attach to the same parent (a Gateway's listener, or a Service for
the mesh), for the same hostname, with a rule matching the same requests (the same path,
method, headers and query parameters), only one of them gets those requests: "If ties exist
across multiple Routes", the controller picks the oldest route, then the first by
`namespace/name`. The other route's rule, and the weights it carries, are silently ignored, and
which one wins can change when either route is re-created. Two canary splits of one service
shadow each other.

A parentRef names its Gateway's listeners by `sectionName` (and `port`), or all of them; a
Gateway outside the input is compared by its `sectionName` as written. A Service parent names
its `port`, or every port of the Service. Hostnames are compared
as written (lowercased), a route without hostnames counting as one more hostname; a more
specific hostname is not a conflict, as "precedence must be given to rules from the HTTPRoute
with the largest number of characters in a matching non-wildcard hostname". Matches are
compared with their defaults filled in (a rule without matches matches every path under `/`;
a header's and query parameter's type is Exact; header names are case-insensitive), headers
and query parameters as sets. The second route in the input is reported, at its match, naming
the first.

Istio: IST0109 ConflictingMeshGatewayVirtualServiceHosts and IST0145 ConflictingGateways are
the analogs for VirtualServices and Gateways (`mesh-host-conflict`, `gateways-conflict`).

Fix: merge the routes into one, give each its own hostname or match, or attach them to
different listeners or ports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import described_at, items
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Ref, Routes, listeners, parent_refs

ID = "routes-conflict"
SEVERITY = Severity.ERROR
SUMMARY = "no two Gateway API routes claim one match of one hostname on one parent"
HINT = "merge the routes, or give each its own hostname, match or listener"
RELEASE_HINT = "give each release its own `hosts:`, or bind only one of them to the gateway"
ISTIO_CODES: tuple[str, ...] = ()

Claim = tuple[Resource, list[str | int]]  # a route and the path of its match (or rule)


def check(scope: Scope) -> Iterator[Finding]:
    routes = Routes.of(scope)
    claims: dict[tuple[str, ...], Claim] = {}
    for route in routes.routes:
        parents = sorted(_parents(routes, route))
        listed = route.get("spec", "hostnames")
        hostnames = sorted(
            {h.lower() for h in listed if isinstance(h, str)} if isinstance(listed, list) else []
        ) or [""]
        reported: set[tuple[str | int, ...]] = set()
        for path, match in _matches(route):
            for parent in parents:
                for hostname in hostnames:
                    key = (route.kind, parent, hostname, match)
                    first = claims.setdefault(key, (route, path))
                    if first[0] is route or tuple(path) in reported:
                        continue
                    reported.add(tuple(path))
                    where = f" for {hostname}" if hostname else ""
                    yield Finding(
                        route,
                        path,
                        f"{described_at(*first)} already claims "
                        f"this match{where} on {parent}: only one of the routes gets its requests",
                    )


def _parents(routes: Routes, route: Resource) -> set[str]:
    """The parents a route attaches to, a Gateway by listener: `Gateway ns/name listener`."""
    found: set[str] = set()
    for ref in parent_refs(route):
        gateway = routes.gateways.get(ref.key) if ref.is_gateway else None
        if gateway is not None:
            found.update(
                f"{ref.shown} listener {x.name}"
                for x in listeners(gateway)
                if ref.section in (None, x.name) and ref.port in (None, x.port)
            )
        elif ref.is_gateway and ref.section:
            found.add(f"{ref.shown} listener {ref.section}")
        elif ref.is_service:
            found.update(f"{ref.shown} port {port}" for port in _service_ports(routes, ref))
        else:
            found.add(ref.shown)
    return found


def _service_ports(routes: Routes, ref: Ref) -> list[int | str]:
    """The ports of a Service a parentRef attaches to: its own `port`, or all of them."""
    if ref.port is not None:
        return [ref.port]
    service = routes.services.get(ref.key)
    if service is None:
        return ["any"]
    listed = [p.get("port") for _, p in items(service, "spec", "ports") if isinstance(p, dict)]
    ports: list[int | str] = [p for p in listed if isinstance(p, int)]
    return ports or ["any"]


def _matches(route: Resource) -> Iterator[tuple[list[str | int], str]]:
    """Each match of each rule (the rule itself when it has none), as a comparable text."""
    for path, rule in items(route, "spec", "rules"):
        if not isinstance(rule, dict):
            continue
        listed = rule.get("matches")
        if not isinstance(listed, list) or not listed:
            yield path, _canonical(route.kind, {})
            continue
        for index, match in enumerate(listed):
            if isinstance(match, dict):
                yield [*path, "matches", index], _canonical(route.kind, match)


def _canonical(kind: str, match: dict[str, Any]) -> str:
    found: dict[str, Any] = dict(match)
    if kind == "HTTPRoute":
        written = match.get("path")
        path: dict[str, Any] = written if isinstance(written, dict) else {}
        found["path"] = {"type": path.get("type", "PathPrefix"), "value": path.get("value", "/")}
    if kind == "GRPCRoute" and isinstance(match.get("method"), dict):
        found["method"] = {"type": "Exact", **match["method"]}
    for field, fold in (("headers", True), ("queryParams", False)):
        entries = match.get(field)
        if isinstance(entries, list):
            found[field] = sorted(
                (
                    str(e.get("name", "")).lower() if fold else str(e.get("name", "")),
                    str(e.get("type", "Exact")),
                    str(e.get("value", "")),
                )
                for e in entries
                if isinstance(e, dict)
            )
    return json.dumps(_plain(found), sort_keys=True, default=str)


def _plain(value: object) -> object:
    """`value` with every mapping key a string: YAML allows `1:` beside `path:`, JSON sorting
    does not."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
