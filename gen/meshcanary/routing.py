"""Which workload a request reaches, and with what probability: routing as decision tables.

`table` reads VirtualServices, DestinationRules, Services and Deployments into one ordered
list of `Decision`s per (gateway, host, protocol): the first decision whose condition a
request meets decides it, as in Istio. Two sets of manifests route alike when their tables
are alike, however their routes are written: a route with two match entries is two
decisions, a subset is the Deployments it selects, weights are shares of their route.
Gateway API routes (`routing_gateway`) are read into the same keys and the same decisions, in
the order of precedence Gateway API gives their matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from meshcanary import routing_gateway
from meshcanary.errors import InputError
from meshcanary.manifest import Resource
from meshcanary.mesh import (
    CLUSTER_DOMAIN,
    CORE,
    ISTIO,
    MESH,
    PROTOCOLS,
    Labels,
    Mesh,
    api_group,
    gateway_key,
    items,
    labels,
    namespace_of,
    resolve_host,
    service_key,
    subsets,
)
from meshcanary.problem import Problem

Path = tuple[str | int, ...]
Key = tuple[str, str, str]  # (gateway: `mesh` or `namespace/name`, host, protocol)
Workload = Callable[[Resource], str]

# Route fields the table reads itself; every other field is an option, compared verbatim.
# A route's `name` only labels metrics and logs.
_ROUTED = frozenset({"match", "route", "mirror", "mirrorPercentage", "mirrorPercent", "mirrors"})
_COSMETIC = frozenset({"name"})
_VIRTUAL_SERVICE_ROUTING = frozenset({"hosts", "gateways", *PROTOCOLS})


@dataclass(frozen=True, order=True)
class Target:
    """Where a destination sends: the Deployments it reaches (by the caller's names), a port.

    A host that is no Service of the input, or a subset that selects nothing, is kept as
    its description, so that two such destinations are equal when they name the same thing.
    """

    workloads: tuple[str, ...]
    port: int | None = None

    def __str__(self) -> str:
        shown = "+".join(self.workloads) or "nothing"
        return f"{shown}:{self.port}" if self.port is not None else shown


@dataclass(frozen=True)
class Decision:
    """One condition of a route and what the route does with the requests that meet it."""

    condition: Mapping[str, Any]  # a match entry without `name` and `gateways`; {} = every request
    action: Mapping[Target, Fraction]  # share of the requests each target gets
    mirrors: Mapping[Target, Fraction] = field(default_factory=dict)  # percent copied
    options: Mapping[str, Any] = field(default_factory=dict)  # every other field of the route
    scope: Mapping[str, Any] = field(default_factory=dict)  # the VirtualService's `exportTo`…
    # Where it was read, for reports; not part of what the decision does.
    resource: Resource | None = field(default=None, compare=False)
    route_path: Path = field(default=(), compare=False)
    condition_path: Path = field(default=(), compare=False)
    sources: Mapping[Target, Path] = field(default_factory=dict, compare=False)
    weights: Mapping[Target, int] = field(default_factory=dict, compare=False)  # as written

    @property
    def catch_all(self) -> bool:
        return not self.condition

    def outcome(self) -> tuple[object, ...]:
        """What the decision does, without what it applies to."""
        return (self.action, self.mirrors, self.options, self.scope)


def show_condition(condition: Mapping[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True) if condition else "every request"


def show_shares(shares: Mapping[Target, Fraction], unit: str = "%") -> str:
    def percent(share: Fraction) -> str:
        value = share * 100 if unit == "%" else share
        return str(int(value)) if value.denominator == 1 else f"{float(value):.4g}"

    return ", ".join(f"{percent(s)}{unit} {t}" for t, s in sorted(shares.items())) or "nothing"


@dataclass
class Table:
    """The decisions of every (gateway, host, protocol), and what a Service does without any."""

    routes: dict[Key, list[Decision]]
    services: dict[str, Decision]  # host → Kubernetes' own routing: every selected pod

    def lookup(self, key: Key) -> list[Decision] | None:
        """The decisions for `key`; for an in-mesh Service without routes, Kubernetes' own."""
        found = self.routes.get(key)
        if found is not None:
            return found
        gateway, host, _ = key
        default = self.services.get(host) if gateway == MESH else None
        return [default] if default is not None else None


class _Scope:
    def __init__(self, resources: Sequence[Resource]) -> None:
        self.resources = resources
        self.memo: dict[str, object] = {}


class _Reader:
    """Reads one set of manifests; `namespace` moves every object of the set there."""

    def __init__(
        self, resources: Sequence[Resource], workload: Workload, namespace: str | None
    ) -> None:
        self.mesh = Mesh(_Scope(resources))
        self.workload = workload
        self.namespace = namespace
        self.moved = {namespace_of(r) for r in resources} if namespace else set()
        # A destination that reaches several Deployments (a Service without a subset) spreads
        # requests over their pods: each Deployment takes its share of the replicas.
        self.replicas: dict[str, int] = {}
        for resource in resources:
            if resource.kind == "Deployment":
                count = resource.get("spec", "replicas")
                whole = isinstance(count, int) and not isinstance(count, bool)
                self.replicas[workload(resource)] = count if whole else 1

    def spread(self, shares: Mapping[Target, Fraction]) -> dict[Target, Fraction]:
        """Each share of a target that reaches several Deployments, split by their replicas."""
        found: dict[Target, Fraction] = {}
        for target, share in shares.items():
            counts = [self.replicas.get(w) for w in target.workloads]
            total = sum(c for c in counts if c is not None)
            if len(counts) < 2 or None in counts or total <= 0:
                found[target] = found.get(target, Fraction(0)) + share
                continue
            for workload, count in zip(target.workloads, counts, strict=True):
                if count:
                    part = Target((workload,), target.port)
                    found[part] = found.get(part, Fraction(0)) + share * Fraction(count, total)
        return found

    def host(self, host: str) -> str:
        """A resolved host as it reads once the objects moved to the new namespace."""
        key = service_key(host)
        if key is None or key[0] not in self.moved:
            return host
        return f"{key[1]}.{self.namespace}.{CLUSTER_DOMAIN}"

    def gateway(self, name: str, namespace: str) -> str:
        if name == MESH:
            return MESH
        gateway_namespace, gateway = gateway_key(name, namespace)
        if gateway_namespace in self.moved:
            gateway_namespace = self.namespace or gateway_namespace
        return f"{gateway_namespace}/{gateway}"

    def target(self, host: str, subset: str | None, port: object) -> Target:
        number = port.get("number") if isinstance(port, dict) else None
        number = number if isinstance(number, int) and not isinstance(number, bool) else None
        service = self.mesh.service(host)
        shown = self.host(host) + (f" subset {subset}" if subset else "")
        if service is None:
            return Target((shown,), number)
        ports = [p.get("port") for p in service.get("spec", "ports") or [] if isinstance(p, dict)]
        if len(ports) == 1 and number == ports[0]:
            number = None  # a Service's only port is where a destination without one goes
        selector = labels(service.get("spec", "selector"))
        if not selector:
            return Target((f"{shown} (no selector)",), number)
        selectors: list[Labels] = [selector]
        if subset is not None:
            found = self.mesh.subset(host, subset)
            if found is None:
                return Target((f"{shown} (no such subset)",), number)
            selectors.append(found.labels)
        key = service_key(host)
        deployments = self.mesh.select(key[0], selectors) if key else []
        if not deployments:
            return Target((f"{shown} (selects no Deployment)",), number)
        return Target(tuple(sorted({self.workload(d) for d in deployments})), number)

    def destination(self, value: object, namespace: str) -> Target | None:
        if not isinstance(value, dict) or not isinstance(value.get("host"), str):
            return None
        subset = value.get("subset")
        host = resolve_host(value["host"], namespace)
        return self.target(
            host, subset if isinstance(subset, str) and subset else None, value.get("port")
        )

    def action(
        self, route: object, path: Path, namespace: str
    ) -> tuple[dict[Target, Fraction], dict[Target, Path], dict[Target, int]]:
        """Shares of the route's destinations, where each target's weight was read, and it."""
        entries = route if isinstance(route, list) else []
        weights: dict[Target, int] = {}
        sources: dict[Target, Path] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            target = self.destination(entry.get("destination"), namespace)
            if target is None:
                continue
            weight = entry.get("weight")
            if weight is None and len(entries) == 1:
                weight = 100
            if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
                continue  # Istio sends nothing to a destination without weight among others
            weights[target] = weights.get(target, 0) + weight
            where = "weight" if "weight" in entry else "destination"
            sources.setdefault(target, (*path, "route", index, where))
        return self.shares(weights, sources)

    def shares(
        self, weights: dict[Target, int], sources: dict[Target, Path]
    ) -> tuple[dict[Target, Fraction], dict[Target, Path], dict[Target, int]]:
        total = sum(weights.values())
        shares = self.spread({t: Fraction(w, total) for t, w in weights.items()})
        for target in list(sources):
            for part in shares:
                if part not in sources and set(part.workloads) <= set(target.workloads):
                    sources[part] = sources[target]
        return shares, sources, weights

    def backend(self, backend: routing_gateway.Backend) -> Target:
        if not backend.service:
            return Target((self.host(backend.host),), backend.port)
        port = {"number": backend.port} if backend.port is not None else None
        return self.target(backend.host, None, port)

    def backends(
        self, backends: Iterable[routing_gateway.Backend]
    ) -> tuple[dict[Target, Fraction], dict[Target, Path], dict[Target, int]]:
        """Shares of a Gateway API rule's backendRefs: weight over the rule's total, as Istio's."""
        weights: dict[Target, int] = {}
        sources: dict[Target, Path] = {}
        for backend in backends:
            # A weight of 0 sends nothing; a rule without weight returns 500s: no targets.
            if backend.weight <= 0:
                continue
            target = self.backend(backend)
            weights[target] = weights.get(target, 0) + backend.weight
            sources.setdefault(target, (*backend.path, "weight"))
        return self.shares(weights, sources)

    def mirrors(self, entry: Mapping[str, Any], namespace: str) -> dict[Target, Fraction]:
        found: dict[Target, Fraction] = {}

        def add(value: object, percentage: object) -> None:
            target = self.destination(value, namespace)
            share = _percent(percentage)
            if target is not None and share > 0:
                found[target] = found.get(target, Fraction(0)) + share

        legacy = entry.get("mirrorPercent")
        add(entry.get("mirror"), entry.get("mirrorPercentage", legacy))
        for mirror in entry.get("mirrors") or []:
            if isinstance(mirror, dict):
                add(mirror.get("destination"), mirror.get("percentage"))
        return found

    def service_default(self, service: Resource) -> tuple[str, Decision] | None:
        """What an in-mesh caller of a Service without routes gets: every pod it selects."""
        if not service.name:
            return None
        host = f"{service.name.lower()}.{namespace_of(service)}.{CLUSTER_DOMAIN}"
        target = self.target(host, None, None)
        shares = self.spread({target: Fraction(1)})
        decision = Decision({}, shares, resource=service, route_path=("spec",))
        return self.host(host), decision


def _percent(value: object) -> Fraction:
    """A `mirrorPercentage` ({value: 12.5}) or the old integer `mirrorPercent`; absent: 100."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None:
        return Fraction(100)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Fraction(0)
    return Fraction(str(value))  # the decimal written, not its binary approximation


def _condition(match: Mapping[str, Any]) -> dict[str, Any]:
    # An empty value matches like an absent one; so does a prefix of `/`: every path has it.
    return {
        k: v
        for k, v in match.items()
        if k not in ("name", "gateways")
        and v is not None
        and v is not False
        and v not in ({}, [])
        and not (k == "uri" and v == {"prefix": "/"})
    }


def _virtual_services(resources: Iterable[Resource]) -> list[Resource]:
    found = [r for r in resources if r.kind == "VirtualService" and api_group(r) in ISTIO]
    # Several VirtualServices of one host and gateway are merged by Istio in creation order,
    # which manifests do not hold; name order is at least the same on every run.
    return sorted(found, key=lambda r: (namespace_of(r), r.name))


def table(
    resources: Sequence[Resource],
    workload: Workload = lambda deployment: deployment.name,
    *,
    namespace: str | None = None,
) -> Table:
    """The decision table of `resources`.

    `workload` names a Deployment (two sets of manifests compare equal when their routes reach
    Deployments of the same names); `namespace`, when set, moves every object of `resources`
    there: hosts and gateways of their namespaces are read as in `namespace`.
    """
    reader = _Reader(resources, workload, namespace)
    routes = _Routes()
    for service in _virtual_services(resources):
        _read(reader, service, routes)
    _read_gateway_api(reader, resources, routes)
    defaults: dict[str, Decision] = {}
    for resource in resources:
        if resource.kind == "Service" and api_group(resource) in CORE:
            found = reader.service_default(resource)
            if found is not None:
                defaults.setdefault(*found)
    return Table(routes.decisions, defaults)


def _read(reader: _Reader, service: Resource, routes: _Routes) -> None:
    namespace = namespace_of(service)
    hosts = [
        reader.host(resolve_host(h, namespace))
        for _, h in items(service, "spec", "hosts")
        if isinstance(h, str) and h.strip()
    ]
    bound = [g for _, g in items(service, "spec", "gateways") if isinstance(g, str)] or [MESH]
    spec = service.get("spec") or {}
    scope = {k: v for k, v in spec.items() if k not in _VIRTUAL_SERVICE_ROUTING}
    for protocol in PROTOCOLS:
        for path, entry in items(service, "spec", protocol):
            if not isinstance(entry, dict):
                continue
            route_path = tuple(path)
            action, sources, weights = reader.action(entry.get("route"), route_path, namespace)
            options = {k: v for k, v in entry.items() if k not in _ROUTED | _COSMETIC}
            mirrors = reader.mirrors(entry, namespace) if protocol == "http" else {}
            matches = entry.get("match")
            conditions: list[tuple[Path, Mapping[str, Any]]] = (
                [
                    ((*route_path, "match", i), m)
                    for i, m in enumerate(matches)
                    if isinstance(m, dict)
                ]
                if isinstance(matches, list) and matches
                else [(route_path, {})]
            )
            for condition_path, match in conditions:
                decision = Decision(
                    _condition(match),
                    action,
                    mirrors,
                    options,
                    scope,
                    resource=service,
                    route_path=route_path,
                    condition_path=condition_path,
                    sources=sources,
                    weights=weights,
                )
                gateways = match.get("gateways")
                names = gateways if isinstance(gateways, list) and gateways else bound
                for gateway in names:
                    if not isinstance(gateway, str):
                        continue
                    gateway_name = reader.gateway(gateway, namespace)
                    for host in hosts:
                        routes.add((gateway_name, host, protocol), decision)


def _read_gateway_api(reader: _Reader, resources: Sequence[Resource], routes: _Routes) -> None:
    """Gateway API routes, each key's matches in the spec's precedence, not as written."""
    pending: dict[Key, list[tuple[routing_gateway.Rule, Decision]]] = {}
    count = 0
    for rule in routing_gateway.rules(resources):
        action, sources, weights = reader.backends(rule.backends)
        mirrors: dict[Target, Fraction] = {}
        for backend, share in rule.mirrors:
            target = reader.backend(backend)
            if share > 0:
                mirrors[target] = mirrors.get(target, Fraction(0)) + share
        namespace = namespace_of(rule.resource)
        for parent in rule.parents:
            decision = Decision(
                {**rule.condition, **parent.condition},
                action,
                mirrors,
                rule.options,
                parent.scope,
                resource=rule.resource,
                route_path=rule.route_path,
                condition_path=rule.condition_path,
                sources=sources,
                weights=weights,
            )
            gateway = reader.gateway(parent.gateway, namespace)
            for host in parent.hosts:
                key = (gateway, reader.host(host), rule.protocol)
                pending.setdefault(key, []).append((rule, decision))
                count += 1
                if count > MAX_DECISIONS:  # all are held before any is sorted: bound them here
                    raise _too_many(rule.resource)
    for key, entries in pending.items():
        kinds = {rule.resource.kind for rule, _ in entries}
        if {"HTTPRoute", "GRPCRoute"} <= kinds:
            entries = _one_kind_a_port(entries)
        for _, decision in sorted(entries, key=lambda e: e[0].rank):
            routes.add(key, decision)


def _one_kind_a_port(
    entries: list[tuple[routing_gateway.Rule, Decision]],
) -> list[tuple[routing_gateway.Rule, Decision]]:
    """On one listener (or Service port) and hostname, only the older of an HTTPRoute and a
    GRPCRoute is accepted (GRPCRoute's `hostnames`): taken kind against kind, per port; a
    route bound to no port in particular is on every port."""
    oldest: dict[tuple[str, object], tuple[object, ...]] = {}
    for rule, decision in entries:
        at = (rule.resource.kind, decision.condition.get("port"))
        age = routing_gateway.age(rule.resource)
        if at not in oldest or age < oldest[at]:
            oldest[at] = age

    def accepted(rule: routing_gateway.Rule, decision: Decision) -> bool:
        other = "GRPCRoute" if rule.resource.kind == "HTTPRoute" else "HTTPRoute"
        port, age = decision.condition.get("port"), routing_gateway.age(rule.resource)
        return not any(
            kind == other and (at is None or port is None or at == port) and rival < age
            for (kind, at), rival in oldest.items()
        )

    return [e for e in entries if accepted(*e)]


@dataclass(frozen=True)
class Request:
    """One HTTP request as route conditions see it (header names in lower case)."""

    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    authority: str = ""


def _meets(match: Mapping[str, Any], value: str | None) -> bool:
    """Whether `value` meets one string match ({exact|prefix|regex: ...}); None: absent."""
    ((kind, expected),) = match.items()
    if value is None:
        return False
    if kind == "exact":
        return bool(value == expected)
    if kind == "prefix":
        return value.startswith(expected)
    if kind == "regex":  # Envoy matches RE2 against the whole value
        return re.fullmatch(expected, value) is not None
    raise ValueError(f"no model of a {kind} match")


def meets(condition: Mapping[str, Any], request: Request) -> bool:
    """Whether `request` meets every part of a decision's condition.

    A part this model does not know (a field only one API has that is no match, such as a
    listener's own form) raises ValueError rather than guess.
    """
    for key, value in condition.items():
        if key == "uri":
            met = _meets(value, request.path)
        elif key == routing_gateway.ONLY + "pathPrefix":  # whole path elements
            met = request.path == value or request.path.startswith(f"{value}/")
        elif key == "method":
            met = _meets(value, request.method)
        elif key == "authority":
            met = _meets(value, request.authority)
        elif key == "headers":
            met = all(_meets(m, request.headers.get(name)) for name, m in value.items())
        elif key == "queryParams":
            met = all(_meets(m, request.query.get(name)) for name, m in value.items())
        elif key == "port":
            met = request.port == value
        else:
            raise ValueError(f"no model of the condition {key}")
        if not met:
            return False
    return True


def reached(decisions: Sequence[Decision], request: Request) -> Decision | None:
    """The decision that takes `request`: the first it meets, as both APIs take them once
    ordered (None: no route takes it, and the caller gets a 404)."""
    return next((d for d in decisions if meets(d.condition, request)), None)


def canonical(condition: Mapping[str, Any]) -> str:
    """A condition as text: equal conditions, equal texts."""
    return json.dumps(condition, sort_keys=True, default=str)


# A VirtualService is read as hosts by gateways by conditions decisions: a few of each in any
# real one, a product that never ends in a hostile one.
MAX_DECISIONS = 1_000_000


def _too_many(resource: Resource) -> InputError:
    return InputError(
        [
            Problem(
                resource.location(),
                f"these routes make more than {MAX_DECISIONS:,} routing decisions "
                "(hosts × gateways × match conditions)",
                "split them into fewer hosts, gateways or conditions",
            )
        ]
    )


class _Routes:
    """The decisions of each key, without those no request can reach."""

    def __init__(self) -> None:
        self.decisions: dict[Key, list[Decision]] = {}
        self._seen: dict[Key, set[str]] = {}
        self._count = 0

    def add(self, key: Key, decision: Decision) -> None:
        """Append, unless after a catch-all or behind the same condition (first match wins)."""
        decisions = self.decisions.setdefault(key, [])
        seen = self._seen.setdefault(key, set())
        text = canonical(decision.condition)
        if (decisions and decisions[-1].catch_all) or text in seen:
            return
        self._count += 1
        if self._count > MAX_DECISIONS and decision.resource is not None:
            raise _too_many(decision.resource)
        seen.add(text)
        decisions.append(decision)


@dataclass(frozen=True)
class Policy:
    """A DestinationRule's settings for a host: its own fields, and per-workload subset policies."""

    settings: Mapping[str, Any]  # the spec without `host` and `subsets`
    subsets: Mapping[tuple[str, ...], Any]  # workloads a subset selects → its trafficPolicy
    resource: Resource = field(compare=False)


def policies(
    resources: Sequence[Resource],
    workload: Workload = lambda deployment: deployment.name,
    *,
    namespace: str | None = None,
) -> dict[str, Policy]:
    """The DestinationRules' traffic policies by host, each subset's by what it selects."""
    reader = _Reader(resources, workload, namespace)
    found: dict[str, Policy] = {}
    for rule in resources:
        if rule.kind != "DestinationRule" or api_group(rule) not in ISTIO:
            continue
        host = rule.get("spec", "host")
        spec = rule.get("spec")
        if not isinstance(host, str) or not isinstance(spec, dict):
            continue
        resolved = resolve_host(host, namespace_of(rule))
        settings = {k: v for k, v in spec.items() if k not in ("host", "subsets")}
        per_subset = {
            reader.target(resolved, subset.name, None).workloads: policy
            for subset in subsets(rule)
            if (policy := rule.get(*subset.path, "trafficPolicy"))
        }
        found.setdefault(reader.host(resolved), Policy(settings, per_subset, rule))
    return found
