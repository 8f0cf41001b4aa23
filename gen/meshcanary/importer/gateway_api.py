"""The Gateway API shape → a release with `routing: gateway-api`: the inverse of
render/gateway_api.py.

Per-version Services (a Service that selects one version's pods, beside the Service that
selects them all) are the versions' Services, which the renderer makes of the base's; the
HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes that send to them become the release's
weights, pins, requests, options, mirror, ports, hosts and gateways, each route read by
`gateway_rules`. Routes bound to the Service itself (GAMMA) are `gateways: [mesh]`; routes bound
to Gateways name those, and their `hostnames` are the release's `hosts`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from meshcanary.importer import routes
from meshcanary.importer.context import Context, what
from meshcanary.importer.gateway_rules import OPTIONS, Reader, Rule, pin_entries
from meshcanary.importer.objects import name_only_metadata, schema_refused
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import MESH
from meshcanary.release.routing import condition
from meshcanary.render.gateway_api import rank

GROUP = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute")
# The versions import reads of each kind; the renderer writes v1.
API_VERSIONS = {
    "HTTPRoute": ("v1", "v1beta1"),
    "GRPCRoute": ("v1",),
    "TCPRoute": ("v1alpha2", "v1"),
    "TLSRoute": ("v1alpha2", "v1"),
    "Gateway": ("v1", "v1beta1"),
}
PROTOCOLS = {"HTTPRoute": "http", "GRPCRoute": "grpc", "TCPRoute": "tcp", "TLSRoute": "tls"}
_SPEC_KEYS = {
    "HTTPRoute": ("parentRefs", "hostnames", "rules"),
    "GRPCRoute": ("parentRefs", "hostnames", "rules"),
    "TCPRoute": ("parentRefs", "rules"),
    "TLSRoute": ("parentRefs", "hostnames", "rules"),
}
_PARENT_KEYS = ("group", "kind", "namespace", "name", "sectionName", "port")


def is_gateway_api(resource: Resource) -> bool:
    return resource.api_version.startswith(f"{GROUP}/")


def routes_to(ctx: Context, route: Resource, services: dict[str, str]) -> bool:
    """Whether a Gateway API route sends to one of the versions' Services, or to the Service,
    or is bound to the Service (GAMMA)."""
    names = {*services, ctx.service_name}
    for rule in _list(route.get("spec", "rules")):
        refs: list[Any] = [*_list(rule.get("backendRefs"))]
        refs += [
            (f.get("requestMirror") or {}).get("backendRef")
            for f in _list(rule.get("filters"))
            if isinstance(f.get("requestMirror"), dict)
        ]
        if any(isinstance(r, dict) and r.get("name") in names for r in refs):
            return True
    return any(
        p.get("kind") == "Service" and p.get("name") == ctx.service_name
        for p in _list(route.get("spec", "parentRefs"))
    )


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# One route in the release's words ----------------------------------------------------------


@dataclass
class _Parent:
    gateway: str  # MESH, or a Gateway's name (namespace/name in another namespace)
    port: int | None
    path: JsonPath


@dataclass
class _Route:
    resource: Resource
    protocol: str
    parents: list[_Parent]
    hostnames: list[str] | None  # None: not written
    weighted: Rule
    pins: list[dict[str, Any]] = field(default_factory=list)
    # Each pin's rule, for refusals, and whether it had matches of its own joined with later
    # conditions (the renderer's, read back as the pin alone).
    pin_paths: list[tuple[JsonPath, bool]] = field(default_factory=list)
    requests: list[tuple[dict[str, Any], JsonPath]] = field(default_factory=list)

    @property
    def gateways(self) -> set[str]:
        return {p.gateway for p in self.parents if p.gateway != MESH}

    @property
    def mesh(self) -> bool:
        return any(p.gateway == MESH for p in self.parents)

    def same(self) -> tuple[object, ...]:
        """What must be the same in every route of a release."""
        shares = routes.shares(self.weighted.targets)
        if self.protocol in ("tcp", "tls"):
            return (shares,)
        requests = [c for c, _ in self.requests]
        return (shares, requests, self.weighted.options, self.weighted.mirror, self.pins)


@dataclass
class Routing:
    """What a release takes from its Gateway API routes."""

    found: routes.Routes
    hosts: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    on_release: bool = False  # whether the release says `routing: gateway-api`


class _Import:
    def __init__(
        self,
        ctx: Context,
        services: dict[str, str],
        base: Resource,
        declared: dict[str, Resource],
        replicas: dict[str, int],
    ) -> None:
        self.ctx = ctx
        self.services = services
        self.replicas = replicas
        self.base = base
        self.declared = declared  # the imported Gateways, by name
        self.known = set(declared) | set((ctx.env_data or {}).get("gateways") or {})
        ports = [p for p in _list(base.get("spec", "ports")) if isinstance(p.get("port"), int)]
        self.service_ports = {p.get("name"): p["port"] for p in ports}

    @property
    def only_port(self) -> int | None:
        numbers = list(self.service_ports.values())
        return numbers[0] if len(numbers) == 1 else None

    def route(self, resource: Resource) -> _Route | None:
        ctx = self.ctx
        for key in resource.get("spec") or {}:
            if key not in _SPEC_KEYS[resource.kind]:
                ctx.refuse(
                    resource,
                    ["spec", key],
                    f"{resource.kind} field {key} has no place in a release",
                    key=True,
                )
        if not resource.get("spec", "parentRefs"):
            ctx.refuse(
                resource,
                ["spec"],
                f"{what(resource)} has no parentRefs: it is bound to nothing, so it routes "
                "nothing a release could say",
                'bind it to the Service (group: "", kind: Service) or to a Gateway, or leave '
                "it out",
            )
            return None
        parents = self._parents(resource)
        rules = Reader(ctx, resource, self.services, self.replicas).rules()
        if parents and not resource.get("spec", "rules"):
            ctx.refuse(resource, ["spec"], f"{what(resource)} has no rules: it routes nothing")
        if not parents or not rules:
            return None
        protocol = PROTOCOLS[resource.kind]
        hostnames = resource.get("spec", "hostnames")
        names = (
            [h for h in hostnames if isinstance(h, str)] if isinstance(hostnames, list) else None
        )
        if names is not None and not any(p.gateway != MESH for p in parents) and protocol != "tls":
            ctx.normalize(
                resource,
                ["spec", "hostnames"],
                f"{what(resource)} is bound to its Service only: the Service selects its "
                "requests, not hostnames (GAMMA), and the rendered route has none",
            )
            names = None
        if protocol == "tls" and names is None and any(p.gateway != MESH for p in parents):
            ctx.refuse(
                resource,
                ["spec", "parentRefs"],
                f"{what(resource)} is bound to Gateways without hostnames, so it takes every "
                "SNI name: a release's TLS route names its SNI hosts (ports[].sniHosts)",
                "list the SNI names the route takes under hostnames",
                key=True,
            )
            return None
        if protocol in ("tcp", "tls"):
            if rules[0].name is not None:
                ctx.normalize(
                    resource,
                    [*rules[0].path, "name"],
                    f"rule name {rules[0].name!r} only labels the rule: the rendered "
                    f"{resource.kind}'s rule has none",
                )
            for rule in rules[1:]:
                ctx.refuse(
                    resource,
                    rule.path,
                    f"a second rule of a {resource.kind}: a release splits a tcp or tls port "
                    "between its versions with one rule",
                )
            return _Route(resource, protocol, parents, names, rules[0])
        return self._http(resource, protocol, parents, names, rules)

    def _http(
        self,
        resource: Resource,
        protocol: str,
        parents: list[_Parent],
        names: list[str] | None,
        rules: list[Rule],
    ) -> _Route | None:
        ctx = self.ctx
        last = rules[-1]
        if len(last.targets) == 1 and not last.weighted and last.conditions:
            ctx.refuse(
                resource,
                last.path,
                "the last rule sends some requests to one version, and no rule takes the "
                "others: a release's weighted rule takes every request its pins do not",
                "add a rule without matches that sends to the versions with weights",
            )
            return None
        route = _Route(resource, protocol, parents, names, last, requests=last.conditions)
        for rule in rules:
            ports = [(rule.port, rule.port_path), *rule.ports] if rule is not last else rule.ports
            for port, at in ports:
                if port != last.port and at is not None:
                    ctx.refuse(
                        resource,
                        at,
                        f"port {port}, the weighted rule's backendRefs {last.port}: a release "
                        "sends each of its ports to one port of the versions' Services",
                    )
        for rule in rules[:-1]:
            number = rule.path[-1]
            if len(rule.targets) != 1:
                ctx.refuse(
                    resource,
                    rule.path,
                    f"rule {number} splits requests between versions before the last rule: a "
                    "release has one weighted rule, rendered last",
                )
                continue
            if not rule.conditions:
                ctx.refuse(
                    resource,
                    rule.path,
                    f"rule {number} takes every request, before the weighted rule: a release's "
                    "pins take the requests that meet their conditions",
                )
                continue
            if rule.mirror is not None:
                ctx.refuse(
                    resource,
                    [*rule.path, "filters"],
                    "mirroring on a rule to one version: a release mirrors the weighted rule only",
                    key=True,
                )
            if rule.weighted and not rule.targets[rule.version]:
                ctx.refuse(
                    resource,
                    [*rule.path, "backendRefs", 0, "weight"],
                    "the rule's only backendRef has weight 0: it answers the requests it takes "
                    "with an error, and a release's pin sends them to its version",
                )
                continue
            if rule.weighted:
                ctx.normalize(
                    resource,
                    [*rule.path, "backendRefs"],
                    "the rule's only backendRef takes every request whatever its weight",
                )
            own = self._pin_options(resource, rule, last)
            for entry in pin_entries(ctx, resource, rule, len(route.pins)):
                entry.update(copy.deepcopy(own))
                route.pins.append(entry)
                route.pin_paths.append((rule.path, len(rule.conditions) > 1))
        return route

    def _pin_options(self, resource: Resource, rule: Rule, weighted: Rule) -> dict[str, Any]:
        """The options a pin sets itself: those that differ from the weighted rule's."""
        own: dict[str, Any] = {}
        for key in OPTIONS:
            mine, theirs = rule.options.get(key), weighted.options.get(key)
            if mine == theirs:
                continue
            if mine is None:
                self.ctx.refuse(
                    resource,
                    rule.path,
                    f"this rule has no {key}, but the weighted rule's {theirs!r} would apply "
                    f"to it: a pin cannot say it has no {key}",
                    f"give the rule the same {key}",
                )
                continue
            own[key] = mine
        return own

    def _parents(self, resource: Resource) -> list[_Parent]:
        ctx = self.ctx
        found: list[_Parent] = []
        namespace = ctx.namespace(resource)
        for index, ref in enumerate(_list(resource.get("spec", "parentRefs"))):
            at: JsonPath = ["spec", "parentRefs", index]
            for key in ref:
                if key not in _PARENT_KEYS:
                    ctx.refuse(resource, [*at, key], f"parentRef field {key}", key=True)
            kind = ref.get("kind", "Gateway")
            group = ref.get("group", GROUP)
            port = ref.get("port") if isinstance(ref.get("port"), int) else None
            given = ref.get("namespace")
            if kind == "Service" and group == "":
                if ref.get("name") != ctx.service_name or given not in (None, namespace):
                    ctx.refuse(
                        resource,
                        at,
                        f"bound to Service {ref.get('name')}: a release's mesh routes are "
                        f"bound to its own Service, {ctx.service_name}",
                    )
                    continue
                port = self._section(resource, at, ref, port, self.service_ports)
                found.append(_Parent(MESH, port, at))
            elif kind == "Gateway" and group == GROUP and isinstance(ref.get("name"), str):
                name = ref["name"]
                gateway = self.declared.get(name) if given in (None, namespace) else None
                listeners = {
                    x.get("name"): x.get("port")
                    for x in _list(gateway.get("spec", "listeners") if gateway else None)
                }
                port = self._section(resource, at, ref, port, listeners)
                shown = name if given in (None, namespace) else f"{given}/{name}"
                if "/" not in shown and name not in self.known:
                    shown = f"{namespace}/{name}"
                    ctx.normalize(
                        resource,
                        [*at, "name"],
                        f"Gateway {name} is not among the imported Gateways nor declared in "
                        f"{ctx.env_path}: the release refers to it as {shown}, a Gateway "
                        "managed outside meshcanary",
                        f"declare it under gateways: in {ctx.env_path} and write {name}",
                    )
                found.append(_Parent(shown, port, at))
            elif kind == "Service":
                ctx.refuse(
                    resource,
                    at,
                    f"parentRef kind Service of group {group!r}: the Gateway API's default "
                    'group is gateway.networking.k8s.io, and "To set the core API group (such '
                    'as for a "Service" kind referent), Group must be explicitly set to "" '
                    '(empty string)": this route is bound to no Service',
                    'add group: "" to bind it to the Service (GAMMA)',
                )
            else:
                ctx.refuse(
                    resource,
                    at,
                    f"parentRef kind {kind} of group {group!r}: a release's routes are bound to "
                    "Gateways and to their Service",
                )
        return found

    def _section(
        self,
        resource: Resource,
        at: JsonPath,
        ref: dict[str, Any],
        port: int | None,
        named: dict[Any, Any],
    ) -> int | None:
        """A sectionName as the port it stands for: the renderer binds by port."""
        section = ref.get("sectionName")
        if section is None:
            return port
        number = named.get(section)
        numbers = list(named.values())
        if not isinstance(number, int) or numbers.count(number) != 1 or port not in (None, number):
            self.ctx.refuse(
                resource,
                [*at, "sectionName"],
                f"sectionName {section}: a release binds its routes by port, and no port of "
                f"{ref.get('kind', 'Gateway')} {ref.get('name')} is {section}'s alone",
            )
            return port
        self.ctx.normalize(
            resource,
            [*at, "sectionName"],
            f"sectionName {section} is port {number}, its only listener or port there: "
            f"rendered as port {number}",
        )
        return number


def read(
    ctx: Context,
    resources: list[Resource],
    services: dict[str, str],
    base: Resource,
    declared: dict[str, Resource],
    versions: list[Version],
) -> Routing:
    """The release's routing from the service's Gateway API routes; `declared`: the Gateways
    the environment declares, by name."""
    replicas = {v.name: v.replicas for v in versions}
    reader = _Import(ctx, services, base, declared, replicas)
    read_routes: list[_Route] = []
    for resource in resources:
        name_only_metadata(ctx, resource, renamed=False)  # _rendered_name says how
        # Refused there, and read all the same: the import fails, and says all it found.
        invalid = schema_refused(ctx, resource)
        try:
            route = reader.route(resource)
        except (TypeError, ValueError, AttributeError, ArithmeticError):
            if not invalid:
                raise  # a value its schema allows: meshcanary's own fault, not to hide
            continue  # what its schema refused (located above), read as it could not be
        if invalid:
            continue
        if route is not None:
            read_routes.append(route)
    found = routes.Routes()
    routing = Routing(found)
    if not read_routes:
        return routing
    first = next((r for r in read_routes if r.protocol in ("http", "grpc")), read_routes[0])
    for route in read_routes:
        if route is first:
            continue
        theirs, mine = first.same(), route.same()
        if mine != theirs[: len(mine)]:
            ctx.refuse(
                route.resource,
                ["spec", "rules"],
                f"{what(route.resource)} routes otherwise than {what(first.resource)}: a "
                "release has one set of weights, pins, requests and options for all its routes",
            )
    _take(ctx, first, found)
    routing.gateways = _gateways(read_routes)
    for route in read_routes:
        for parent in route.parents:
            if parent.gateway in routing.gateways:
                at = ("gateways", routing.gateways.index(parent.gateway))
                ctx.origins.add(at, route.resource.location(parent.path))
    routing.hosts = _hosts(ctx, read_routes)
    ports = _ports(ctx, reader, read_routes)
    if ports:
        found.extras["ports"] = ports
    for route in read_routes:
        _rendered_name(ctx, route, len(ports) > 1)
    found.extras = {k: found.extras[k] for k in routes.RELEASE_KEYS if k in found.extras}
    return routing


def _take(ctx: Context, route: _Route, found: routes.Routes) -> None:
    resource, weighted = route.resource, route.weighted
    where: JsonPath = [*weighted.path, "backendRefs"]
    found.order = list(weighted.targets)
    found.weights = routes.hundred(ctx, resource, where, weighted.targets)
    for version in found.weights:
        ctx.origins.add(("versions", version, "weight"), resource.location(where))
    if route.protocol in ("tcp", "tls"):
        return
    if weighted.name not in (None, "weighted"):
        ctx.normalize(
            resource,
            [*weighted.path, "name"],
            f"rule name {weighted.name!r} only labels the rule: the weighted rule is rendered "
            "as weighted",
        )
    if route.requests:
        found.extras["requests"] = [c for c, _ in route.requests]
        for number, (_, at) in enumerate(route.requests):
            ctx.origins.add(("requests", number), resource.location(at))
    for key, value in weighted.options.items():
        found.extras[key] = value
        ctx.origins.add((key,), resource.location(weighted.path))
    if weighted.mirror is not None:
        found.extras["mirror"] = weighted.mirror
        ctx.origins.add(("mirror",), resource.location([*weighted.path, "filters"]))
        if weighted.mirror["version"] not in found.order:
            found.order.append(weighted.mirror["version"])
    if route.pins:
        # The Gateway API takes the most specific match first, whatever the rules' order; a
        # release's pins come in the order written: write them most specific first (equal
        # ones as they were).
        grpc = route.protocol == "grpc"
        ranked = sorted(
            zip(route.pins, route.pin_paths, strict=True),
            key=lambda pair: rank(condition(pair[0]), grpc),
            reverse=True,
        )
        route.pins = [pin for pin, _ in ranked]
        for pin, (at, joined) in ranked:
            # A condition of the weighted rule the Gateway API takes before this pin: a release
            # puts its pins first, so the requests meeting both would change sides (unless the
            # rule holds the join too, as the renderer writes it: verify judges those).
            if joined:
                continue
            mine = rank(condition(pin), grpc)
            ahead = [
                c
                for c, _ in route.requests
                if rank(condition(c), grpc) > mine and _may_meet(pin, c)
            ]
            if ahead:
                ctx.refuse(
                    resource,
                    at,
                    "the weighted rule's match is more specific than this rule's, so the Gateway "
                    "API takes it first for the requests both meet; a release's pins come before "
                    "its weighted route",
                    "make this rule's match at least as specific (add the weighted rule's path "
                    "to it), or keep these routes out of the import",
                )
        found.extras["match"] = route.pins
        for pin in route.pins:
            if pin["version"] not in found.order:
                found.order.append(pin["version"])


def _may_meet(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether a request can meet both conditions (as written in a release file): False only
    where they plainly exclude each other (two paths, two methods, one header two ways)."""
    mine, theirs = first.get("uri") or {}, second.get("uri") or {}
    if mine and theirs:
        (kind, value), (other_kind, other) = next(iter(mine.items())), next(iter(theirs.items()))
        if kind == other_kind == "exact" and value != other:
            return False
        if {kind, other_kind} == {"exact", "prefix"}:
            exact, prefix = (value, other) if kind == "exact" else (other, value)
            if not exact.startswith(prefix):
                return False
        if kind == other_kind == "prefix" and not (
            value.startswith(other) or other.startswith(value)
        ):
            return False
    methods = [c.get("method", {}).get("exact") for c in (first, second)]
    if None not in methods and methods[0] != methods[1]:
        return False
    for name, match in (first.get("headers") or {}).items():
        other_match = (second.get("headers") or {}).get(name)
        theirs = other_match.get("exact") if isinstance(other_match, dict) else None
        if match.get("exact") is not None and theirs is not None and theirs != match["exact"]:
            return False
    return True


def _rendered_name(ctx: Context, route: _Route, by_port: bool) -> None:
    """The renderer names a release's routes `<service>` (bound to the Service) and
    `<service>-gateways`, with `-<port>` when it has several ports."""
    numbers = {p.port for p in route.parents if p.port is not None}
    suffix = f"-{numbers.pop()}" if by_port and len(numbers) == 1 else ""
    names = []
    if route.mesh:
        names.append(f"{ctx.service}{suffix}")
    if route.gateways:
        names.append(f"{ctx.service}-gateways{suffix}")
    resource = route.resource
    if resource.name and names and resource.name not in names:
        ctx.normalize(
            resource,
            ["metadata", "name"],
            f"{what(resource)} is rendered as {' and '.join(names)}",
            "the rendered routes replace this one: delete (or let Argo CD prune) it when the "
            "new ones are applied",
        )
    elif len(names) > 1:
        ctx.normalize(
            resource,
            ["spec", "parentRefs"],
            f"{what(resource)} is bound to its Service and to Gateways: rendered as "
            f"{' and '.join(names)}, one for each",
        )


def _gateways(read_routes: list[_Route]) -> list[str]:
    names: list[str] = []
    for route in read_routes:
        names += [p.gateway for p in route.parents if p.gateway != MESH]
    ordered = list(dict.fromkeys(names))
    if any(r.mesh for r in read_routes):
        ordered.append(MESH)
    return ordered


def _hosts(ctx: Context, read_routes: list[_Route]) -> list[str]:
    """The hostnames of the routes bound to Gateways, the same for each (`*` when none)."""
    found: list[str] | None = None
    first: _Route | None = None
    for route in read_routes:
        if not route.gateways or route.protocol not in ("http", "grpc"):
            continue
        names = list(dict.fromkeys(route.hostnames or ["*"]))
        if found is None:
            found, first = names, route
            for index, _ in enumerate(names):
                at: JsonPath = ["spec", "hostnames", index] if route.hostnames else ["spec"]
                ctx.origins.add(("hosts", index), route.resource.location(at))
        elif set(names) != set(found) and first is not None:
            ctx.refuse(
                route.resource,
                ["spec", "hostnames"] if route.hostnames is not None else ["spec"],
                f"{what(route.resource)} takes hostnames {', '.join(names)}, "
                f"{what(first.resource)} {', '.join(found)}: a release has one set of hosts",
            )
    return found or []


def _ports(ctx: Context, reader: _Import, read_routes: list[_Route]) -> list[dict[str, Any]]:
    """The release's `ports:`: one entry per port the routes are bound to, where the renderer
    would write them (several ports, a port that is not the Service's only one, or a protocol
    other than http)."""
    entries: dict[int, dict[str, Any]] = {}
    plain = all(
        r.protocol == "http" and all(p.port is None for p in r.parents) for r in read_routes
    )
    covered: set[tuple[bool, int | None]] = set()
    for route in read_routes:
        numbers = {p.port for p in route.parents}
        if len(numbers) > 1:
            ctx.refuse(
                route.resource,
                ["spec", "parentRefs"],
                f"{what(route.resource)} is bound to ports {sorted(n or 0 for n in numbers)}: "
                "a release binds each route to one port on each of its gateways",
            )
            continue
        number = numbers.pop()
        target = route.weighted.port
        if plain:
            if reader.only_port is None or target != reader.only_port:
                ctx.refuse(
                    route.resource,
                    route.weighted.port_path or route.weighted.path,
                    f"the route sends to port {target} and names no port of its own; a "
                    "release without ports: sends to the Service's only port"
                    + ("" if reader.only_port is None else f", {reader.only_port}"),
                    "bind the route to a port (parentRefs[].port)",
                )
            covered.update((p.gateway == MESH, None) for p in route.parents)
            continue
        if number is None:
            number = reader.only_port
            if number is None:
                ctx.refuse(
                    route.resource,
                    ["spec", "parentRefs"],
                    f"{what(route.resource)} names no port, and Service {ctx.service_name} has "
                    "several: a release lists its routes by port",
                )
                continue
            ctx.normalize(
                route.resource,
                ["spec", "parentRefs"],
                f"{what(route.resource)} names no port: it takes the Service's only port, {number}",
            )
        entry: dict[str, Any] = {"port": number, "protocol": route.protocol}
        if target is not None and target != number:
            entry["destinationPort"] = target
        if route.protocol == "tls" and route.hostnames:
            entry["sniHosts"] = list(route.hostnames)
        first = entries.setdefault(number, entry)
        if first != entry:
            ctx.refuse(
                route.resource,
                ["spec", "parentRefs"],
                f"port {number} is routed as {first}, and here as {entry}: a release routes "
                "each port one way",
            )
        covered.update((p.gateway == MESH, number) for p in route.parents)
        for index, _ in enumerate(entries):
            ctx.origins.add(("ports", index), route.resource.location(["spec", "parentRefs"]))
    sides = {mesh for mesh, _ in covered}
    numbers_seen = {number for _, number in covered}
    missing = [(m, n) for m in sides for n in numbers_seen if (m, n) not in covered]
    if missing:
        mesh, number = missing[0]
        ctx.refuse(
            read_routes[-1].resource,
            ["spec", "parentRefs"],
            f"no route binds port {number} to {'the Service' if mesh else 'the Gateways'}: a "
            "release routes every port it lists on each of its gateways",
        )
    return list(entries.values())
