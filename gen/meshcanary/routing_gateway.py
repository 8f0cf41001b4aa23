"""Gateway API routes in the words of `routing`'s decision tables.

Reads HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes (gateway.networking.k8s.io v1, v1beta1)
into plain `Rule`s: the parents a route attaches to, one condition per match written as an
Istio match entry where the two select the same requests, the backends with their weights,
the mirrors and the options. `routing` turns them into `Decision`s, in Gateway API's order.

A condition or option Gateway API has and Istio cannot say exactly is kept under a key that
starts with `ONLY` (no Istio field has a `/` in its name), so it never equals an Istio one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import CLUSTER_DOMAIN, CORE, MESH, api_group, namespace_of

GATEWAY_API = ("gateway.networking.k8s.io",)
ONLY = "gateway-api/"
# Route kind → the protocol of routing's keys. Istio routes gRPC as HTTP/2.
KINDS = {"HTTPRoute": "http", "GRPCRoute": "http", "TCPRoute": "tcp", "TLSRoute": "tls"}
# Listener protocol → route kinds it takes when `allowedRoutes.kinds` is not set.
_LISTENER_KINDS = {
    "HTTP": ("HTTPRoute", "GRPCRoute"),
    "HTTPS": ("HTTPRoute", "GRPCRoute"),
    "TLS": ("TLSRoute",),
    "TCP": ("TCPRoute",),
}
_RULE_FIELDS = frozenset({"name", "matches", "filters", "backendRefs", "timeouts"})

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Parent:
    """Where a route attaches: a Gateway (`namespace/name`) and hosts, or `mesh` and a Service."""

    gateway: str
    hosts: tuple[str, ...]
    condition: Mapping[str, Any]  # what a `port` or `sectionName` narrows to, as a condition
    scope: Mapping[str, Any]


@dataclass(frozen=True)
class Backend:
    """A backendRef: a Service's host (or a description of what else it names), port, weight."""

    host: str
    service: bool  # whether `host` is a Service's cluster-local name
    port: int | None
    weight: int
    path: Path


@dataclass(frozen=True)
class Rule:
    """One match of one rule of a route, with its place in Gateway API's precedence."""

    resource: Resource
    protocol: str
    condition: Mapping[str, Any]
    backends: tuple[Backend, ...]
    mirrors: tuple[tuple[Backend, Fraction], ...]
    options: Mapping[str, Any]
    rank: tuple[Any, ...]  # lower first: the match's own precedence, then the route's age
    route_path: Path
    condition_path: Path
    parents: tuple[Parent, ...] = field(default=())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def routes(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.kind in KINDS and api_group(r) in GATEWAY_API]


def age(route: Resource) -> tuple[Any, ...]:
    """Oldest first, then "{namespace}/{name}" in alphabetical order, as the spec orders ties."""
    stamp = route.get("metadata", "creationTimestamp")
    when = None
    if isinstance(stamp, datetime):
        when = stamp
    elif isinstance(stamp, str):
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            when = None
    return (when is None, when.timestamp() if when else 0.0, f"{namespace_of(route)}/{route.name}")


class _Index:
    """The Gateways and Services of the input, and the ReferenceGrants between namespaces."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.gateways: dict[tuple[str, str], Resource] = {}
        self.services: dict[tuple[str, str], Resource] = {}
        self.grants: list[Resource] = []
        for resource in resources:
            key = (namespace_of(resource), resource.name)
            group = api_group(resource)
            if resource.kind == "Gateway" and group in GATEWAY_API:
                self.gateways.setdefault(key, resource)
            elif resource.kind == "Service" and group in CORE:
                self.services.setdefault(key, resource)
            elif resource.kind == "ReferenceGrant" and group in GATEWAY_API:
                self.grants.append(resource)

    def granted(self, route: Resource, namespace: str, kind: str, name: str) -> bool:
        """Whether a route may refer to `kind` `name` in another `namespace` (ReferenceGrant)."""
        for grant in self.grants:
            if namespace_of(grant) != namespace:
                continue
            sources = [
                f
                for f in grant.get("spec", "from") or []
                if isinstance(f, dict)
                and f.get("group") in GATEWAY_API
                and f.get("kind") == route.kind
                and f.get("namespace") == namespace_of(route)
            ]
            targets = [
                t
                for t in grant.get("spec", "to") or []
                if isinstance(t, dict)
                and (t.get("group") or "") == ("" if kind == "Service" else GATEWAY_API[0])
                and t.get("kind") == kind
                and t.get("name") in (None, "", name)
            ]
            if sources and targets:
                return True
        return False


def _port_condition(port: int | None, every: set[int]) -> dict[str, Any]:
    # A port that is the parent's only one narrows nothing: Istio's match `port` is the same.
    if port is None or every == {port}:
        return {}
    return {"port": port}


def _gateway_parent(
    index: _Index, route: Resource, ref: Mapping[str, Any], hosts: tuple[str, ...]
) -> Parent | None:
    namespace = _text(ref.get("namespace")) or namespace_of(route)
    name = _text(ref.get("name")) or ""
    section, port = _text(ref.get("sectionName")), _number(ref.get("port"))
    gateway = index.gateways.get((namespace, name))
    if gateway is None:
        # Nothing to check the attachment against: take the reference as written.
        condition = _port_condition(port, set())
        if section:
            condition[ONLY + "sectionName"] = section
        return Parent(f"{namespace}/{name}", hosts, condition, {})
    listeners = [x for x in gateway.get("spec", "listeners") or [] if isinstance(x, dict)]
    ports = {p for x in listeners if (p := _number(x.get("port"))) is not None}
    chosen = [
        x
        for x in listeners
        if (section is None or x.get("name") == section)
        and (port is None or x.get("port") == port)
        and _allows(x, gateway, route)
    ]
    if not chosen:
        return None  # the route is not accepted by this Gateway: it routes nothing there
    chosen_ports = {p for x in chosen if (p := _number(x.get("port"))) is not None}
    condition = _port_condition(next(iter(chosen_ports)), ports) if len(chosen_ports) == 1 else {}
    return Parent(f"{namespace}/{name}", hosts, condition, {})


def _allows(listener: Mapping[str, Any], gateway: Resource, route: Resource) -> bool:
    allowed = _mapping(listener.get("allowedRoutes"))
    kinds = [k.get("kind") for k in allowed.get("kinds") or [] if isinstance(k, dict)]
    if not kinds:
        kinds = list(_LISTENER_KINDS.get(str(listener.get("protocol")), ()))
    if route.kind not in kinds:
        return False
    namespaces = _mapping(allowed.get("namespaces"))
    source = namespaces.get("from") or "Same"
    # `Selector` needs the Namespaces' labels, which manifests rarely hold: taken as allowed.
    return source != "Same" or namespace_of(route) == namespace_of(gateway)


def _service_parent(index: _Index, route: Resource, ref: Mapping[str, Any]) -> Parent:
    namespace = _text(ref.get("namespace")) or namespace_of(route)
    name = (_text(ref.get("name")) or "").lower()
    host = f"{name}.{namespace}.{CLUSTER_DOMAIN}"
    service = index.services.get((namespace, name))
    entries = [
        p for p in (service.get("spec", "ports") if service else None) or [] if isinstance(p, dict)
    ]
    ports = {p for e in entries if (p := _number(e.get("port"))) is not None}
    port = _number(ref.get("port"))
    section = _text(ref.get("sectionName"))
    condition: dict[str, Any] = {}
    if section is not None:
        named = [_number(e.get("port")) for e in entries if e.get("name") == section]
        if named and named[0] is not None:
            port = port if port is not None else named[0]
        else:
            condition[ONLY + "sectionName"] = section
    condition.update(_port_condition(port, ports))
    # A route in another namespace than its Service is a consumer route: it applies only to
    # callers in the route's namespace (GAMMA). Istio has no exact counterpart.
    scope = {} if namespace == namespace_of(route) else {ONLY + "consumer": namespace_of(route)}
    return Parent(MESH, (host,), condition, scope)


def parents(index: _Index, route: Resource) -> tuple[Parent, ...]:
    hostnames = tuple(
        sorted({h.strip().lower() for h in route.get("spec", "hostnames") or [] if _text(h)})
    )
    found: list[Parent] = []
    for ref in route.get("spec", "parentRefs") or []:
        if not isinstance(ref, dict):
            continue
        group = ref.get("group", GATEWAY_API[0])
        kind = ref.get("kind") or "Gateway"
        if group in GATEWAY_API and kind == "Gateway":
            # A route without hostnames takes every hostname its listeners allow: `*`, as
            # Istio writes a route for every host.
            parent = _gateway_parent(index, route, ref, hostnames or ("*",))
            if parent is not None:
                found.append(parent)
        elif (group or "") == "" and kind == "Service":
            # GAMMA: the Service selects the route; hostnames do not.
            found.append(_service_parent(index, route, ref))
    return tuple(found)


# Conditions ----------------------------------------------------------------------------------


def _string_match(kind: object, value: str) -> dict[str, str]:
    return {"regex": value} if kind == "RegularExpression" else {"exact": value}


def _named_matches(entries: object, lower: bool) -> dict[str, dict[str, str]]:
    """Header or query param matches by name; only the first of one name counts (the spec)."""
    found: dict[str, dict[str, str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _text(entry.get("name")):
            continue
        name = entry["name"].lower() if lower else entry["name"]
        value = entry.get("value")
        if name in found or value is None:
            continue
        # An unquoted `1` or `true` is text to the API server: never drop the condition.
        text = value if isinstance(value, str) else json.dumps(value)
        found[name] = _string_match(entry.get("type"), text)
    return found


def http_condition(match: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """An HTTPRouteMatch as a condition, and its precedence (lower first)."""
    condition: dict[str, Any] = {}
    path = _mapping(match.get("path"))
    kind = path.get("type") or "PathPrefix"
    value = _text(path.get("value")) or "/"
    if kind == "Exact":
        condition["uri"] = {"exact": value}
        path_rank: tuple[int, int] = (0, 0)
    elif kind == "PathPrefix":
        # Element by element, a trailing `/` ignored: `/foo` takes `/foo/bar`, not `/foobar`,
        # unlike Istio's string prefix; only `/` (every path) is the same in both.
        trimmed = value.rstrip("/")
        if trimmed:
            condition[ONLY + "pathPrefix"] = trimmed
        path_rank = (1, -len(value))
    elif kind == "RegularExpression":
        condition["uri"] = {"regex": value}
        # The spec leaves a regex's rank to the implementation: Istio puts it after prefixes.
        path_rank = (2, -len(value))
    else:
        condition[ONLY + "path"] = dict(path)
        path_rank = (3, 0)
    method = _text(match.get("method"))
    if method:
        condition["method"] = {"exact": method}
    headers = _named_matches(match.get("headers"), lower=True)
    if headers:
        condition["headers"] = headers
    params = _named_matches(match.get("queryParams"), lower=False)
    if params:
        condition["queryParams"] = params
    return condition, (*path_rank, 0 if method else 1, -len(headers), -len(params))


def grpc_condition(match: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A GRPCRouteMatch as a condition on the HTTP/2 path `/<service>/<method>`, and its rank."""
    condition: dict[str, Any] = {}
    method = _mapping(match.get("method"))
    service, name = _text(method.get("service")) or "", _text(method.get("method")) or ""
    if method.get("type", "Exact") != "Exact":
        condition[ONLY + "grpcMethod"] = dict(method)  # a regex of Gateway API's own dialect
    elif service and name:
        condition["uri"] = {"exact": f"/{service}/{name}"}
    elif service:
        condition["uri"] = {"prefix": f"/{service}/"}
    elif name:
        # Method names are `[A-Za-z_][A-Za-z_0-9]*`: nothing to escape in the regex.
        condition["uri"] = {"regex": f"/[^/]+/{name}"}
    headers = _named_matches(match.get("headers"), lower=True)
    if headers:
        condition["headers"] = headers
    return condition, (-len(service), -len(name), -len(headers))


# Actions and options -------------------------------------------------------------------------


def backend(
    index: _Index, route: Resource, ref: object, path: Path, default_weight: int = 1
) -> Backend | None:
    if not isinstance(ref, dict) or not _text(ref.get("name")):
        return None
    namespace = _text(ref.get("namespace")) or namespace_of(route)
    name = ref["name"]
    group, kind = ref.get("group") or "", ref.get("kind") or "Service"
    port = _number(ref.get("port"))
    weight = _number(ref.get("weight"))
    weight = default_weight if weight is None else weight
    if group != "" or kind != "Service":
        return Backend(f"{kind} {namespace}/{name}", False, port, weight, path)
    if namespace != namespace_of(route) and not index.granted(route, namespace, kind, name):
        shown = f"{name.lower()}.{namespace}.{CLUSTER_DOMAIN} (no ReferenceGrant)"
        return Backend(shown, False, port, weight, path)
    return Backend(f"{name.lower()}.{namespace}.{CLUSTER_DOMAIN}", True, port, weight, path)


def _mirror_share(mirror: Mapping[str, Any]) -> Fraction:
    percent = _number(mirror.get("percent"))
    if percent is not None:
        return Fraction(percent)
    fraction = mirror.get("fraction")
    if isinstance(fraction, dict):
        numerator = _number(fraction.get("numerator")) or 0
        denominator = _number(fraction.get("denominator")) or 100
        return Fraction(numerator * 100, denominator)
    return Fraction(100)


def _header_changes(modifier: object) -> dict[str, Any]:
    """A header modifier as Istio's `headers.request`/`response`: set and add maps, remove list."""
    if not isinstance(modifier, dict):
        return {}
    found: dict[str, Any] = {}
    for verb in ("set", "add"):
        pairs = {
            e["name"]: e.get("value", "")
            for e in modifier.get(verb) or []
            if isinstance(e, dict) and _text(e.get("name"))
        }
        if pairs:
            found[verb] = pairs
    removed = [n for n in modifier.get("remove") or [] if _text(n)]
    if removed:
        found["remove"] = removed
    return found


def options(
    rule: Mapping[str, Any], condition: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[Mapping[str, Any], Fraction, int]]]:
    """A rule's filters and timeouts as Istio route fields, and its mirrors (ref, share, index)."""
    found: dict[str, Any] = {}
    mirrors: list[tuple[Mapping[str, Any], Fraction, int]] = []
    for index, entry in enumerate(rule.get("filters") or []):
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type")
        if kind == "RequestMirror" and isinstance(entry.get("requestMirror"), dict):
            mirror = entry["requestMirror"]
            mirrors.append((mirror.get("backendRef") or {}, _mirror_share(mirror), index))
        elif kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
            side = "request" if kind == "RequestHeaderModifier" else "response"
            changes = _header_changes(entry.get(side + "HeaderModifier"))
            if changes:
                found.setdefault("headers", {})[side] = changes
        elif kind == "URLRewrite" and isinstance(entry.get("urlRewrite"), dict):
            _rewrite(entry["urlRewrite"], condition, found)
        else:
            # CORS, redirects, extension filters: their defaults and forms differ from
            # Istio's corsPolicy and redirect, so no Istio route is taken to equal them.
            found.setdefault(ONLY + "filters", []).append(entry)
    timeouts = rule.get("timeouts")
    if isinstance(timeouts, dict):
        if _text(timeouts.get("request")):
            found["timeout"] = timeouts["request"]
        if _text(timeouts.get("backendRequest")):
            found[ONLY + "backendRequestTimeout"] = timeouts["backendRequest"]
    # A filter on one backendRef applies to the requests sent there only: Istio's per-destination
    # `headers` come closest, but are no field the tables read.
    per_backend = {
        str(ref.get("name")): ref["filters"]
        for ref in rule.get("backendRefs") or []
        if isinstance(ref, dict) and ref.get("filters")
    }
    if per_backend:
        found[ONLY + "backendFilters"] = per_backend
    for key, value in rule.items():
        if key not in _RULE_FIELDS and value not in (None, {}, []):
            found[ONLY + key] = value
    return found, mirrors


def _rewrite(
    rewrite: Mapping[str, Any], condition: Mapping[str, Any], found: dict[str, Any]
) -> None:
    if _text(rewrite.get("hostname")):
        found.setdefault("rewrite", {})["authority"] = rewrite["hostname"]
    path = rewrite.get("path")
    if not isinstance(path, dict):
        return
    exact = isinstance(condition.get("uri"), dict) and "exact" in condition["uri"]
    if path.get("type") == "ReplaceFullPath" and exact and _text(path.get("replaceFullPath")):
        # Istio's `rewrite.uri` replaces the whole path of an exact match: the same thing.
        found.setdefault("rewrite", {})["uri"] = path["replaceFullPath"]
    else:
        # A prefix replaced element by element, or a full path behind a prefix match: Istio's
        # `rewrite.uri` replaces the matched string prefix, which is not the same.
        found[ONLY + "urlRewritePath"] = dict(path)


def rules(resources: Sequence[Resource]) -> Iterator[Rule]:
    """Every match of every rule of every Gateway API route of `resources`."""
    index = _Index(resources)
    for route in routes(resources):
        attached = parents(index, route)
        if not attached:
            continue
        protocol = KINDS[route.kind]
        order = age(route)
        for rule_index, rule in enumerate(route.get("spec", "rules") or []):
            if not isinstance(rule, dict):
                continue
            route_path: Path = ("spec", "rules", rule_index)
            refs = rule.get("backendRefs") or []
            backends = tuple(
                b
                for i, ref in enumerate(refs if isinstance(refs, list) else [])
                if (b := backend(index, route, ref, (*route_path, "backendRefs", i))) is not None
            )
            yield from _matches(index, route, rule, protocol, attached, backends, order, route_path)


def _matches(
    index: _Index,
    route: Resource,
    rule: Mapping[str, Any],
    protocol: str,
    attached: tuple[Parent, ...],
    backends: tuple[Backend, ...],
    order: tuple[Any, ...],
    route_path: Path,
) -> Iterator[Rule]:
    rule_index = route_path[-1]
    matches = rule.get("matches") if protocol == "http" else None
    entries: list[tuple[Path, Mapping[str, Any]]] = (
        [((*route_path, "matches", i), m) for i, m in enumerate(matches) if isinstance(m, dict)]
        if isinstance(matches, list) and matches
        else [(route_path, {})]
    )
    for match_index, (condition_path, match) in enumerate(entries):
        if route.kind == "GRPCRoute":
            condition, rank = grpc_condition(match)
        elif route.kind == "HTTPRoute":
            condition, rank = http_condition(match)
        else:
            condition, rank = {}, ()
        found_options, mirror_refs = options(rule, condition) if protocol == "http" else ({}, [])
        mirrors = tuple(
            (b, share)
            for ref, share, i in mirror_refs
            if (b := backend(index, route, ref, (*route_path, "filters", i))) is not None
        )
        if route.kind == "TLSRoute":
            # TLSRoute's hostnames are SNI names: Istio writes them as `sniHosts`.
            names = sorted({p for parent in attached for p in parent.hosts if p != "*"})
            condition = {"sniHosts": names} if names else {}
        yield Rule(
            route,
            protocol,
            condition,
            backends,
            mirrors,
            found_options,
            (*rank, *order, rule_index, match_index),
            route_path,
            condition_path,
            attached,
        )
