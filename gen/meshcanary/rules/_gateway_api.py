"""Gateway API routes read once for the rules: their parentRefs, backendRefs, and the Gateways'
listeners and ReferenceGrants they are checked against.

`Routes` indexes one scope's HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes (any version of
`gateway.networking.k8s.io`), each reference read with the defaults the API server fills in:
a parentRef is a Gateway of the route's namespace, a backendRef a Service of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    CORE,
    Labels,
    Mesh,
    Scope,
    items,
    labels,
    memoized,
    namespace_of,
    of_kind,
)
from meshcanary.rules._workloads import GATEWAY_API, gateway_api_gateways

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute")
GATEWAY_GROUP = GATEWAY_API[0]

# The route kinds a listener admits when `allowedRoutes.kinds` is empty, by its protocol.
DEFAULT_KINDS = {
    "HTTP": ("HTTPRoute", "GRPCRoute"),
    "HTTPS": ("HTTPRoute", "GRPCRoute"),
    "TLS": ("TLSRoute",),
    "TCP": ("TCPRoute",),
    "UDP": ("UDPRoute",),
}


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Ref:
    """A parentRef or backendRef of a route, its defaults filled in, and where it is."""

    route: Resource
    path: list[str | int]
    group: str
    kind: str
    name: str
    namespace: str  # the route's when the reference names none
    port: int | None
    section: str | None = None  # a parentRef's sectionName

    @property
    def is_service(self) -> bool:
        return self.group in CORE and self.kind == "Service"

    @property
    def is_gateway(self) -> bool:
        return self.group == GATEWAY_GROUP and self.kind == "Gateway"

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def shown(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _ref(
    route: Resource, path: list[str | int], value: object, group: str, kind: str
) -> Ref | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    section = value.get("sectionName")
    return Ref(
        route,
        path,
        _text(value.get("group"), group),
        _text(value.get("kind"), kind),
        value["name"],
        _text(value.get("namespace"), namespace_of(route)),
        _number(value.get("port")),
        section if isinstance(section, str) and section else None,
    )


def parent_refs(route: Resource) -> Iterator[Ref]:
    for path, value in items(route, "spec", "parentRefs"):
        found = _ref(route, path, value, GATEWAY_GROUP, "Gateway")
        if found is not None:
            yield found


def backend_refs(route: Resource) -> Iterator[list[Ref]]:
    """The backendRefs of each rule that has any."""
    for path, rule in items(route, "spec", "rules"):
        entries = rule.get("backendRefs") if isinstance(rule, dict) else None
        if not isinstance(entries, list) or not entries:
            continue
        found = [
            _ref(route, [*path, "backendRefs", i], e, "", "Service") for i, e in enumerate(entries)
        ]
        yield [ref for ref in found if ref is not None]


def mirror_refs(route: Resource) -> Iterator[Ref]:
    """The backendRef of each RequestMirror filter, of a rule or of one of its backendRefs."""
    for path, rule in items(route, "spec", "rules"):
        if not isinstance(rule, dict):
            continue
        holders = [(path, rule)]
        holders += [(p, b) for p, b in items(route, *path, "backendRefs") if isinstance(b, dict)]
        for where, holder in holders:
            filters = holder.get("filters")
            for index, entry in enumerate(filters if isinstance(filters, list) else []):
                mirror = entry.get("requestMirror") if isinstance(entry, dict) else None
                value = mirror.get("backendRef") if isinstance(mirror, dict) else None
                at = [*where, "filters", index, "requestMirror", "backendRef"]
                found = _ref(route, at, value, "", "Service")
                if found is not None:
                    yield found


@dataclass(frozen=True)
class Listener:
    """One entry of a Gateway's `spec.listeners`."""

    gateway: Resource
    name: str
    port: int | None
    hostname: str | None
    admits: str  # `allowedRoutes.namespaces.from`: Same, All or Selector
    kinds: tuple[str, ...]  # the route kinds it admits; empty: a protocol not known here, any


def listeners(gateway: Resource) -> Iterator[Listener]:
    for _, entry in items(gateway, "spec", "listeners"):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        protocol = _text(entry.get("protocol"), "").upper()
        allowed = entry.get("allowedRoutes")
        allowed = allowed if isinstance(allowed, dict) else {}
        namespaces = allowed.get("namespaces")
        admits = _text(namespaces.get("from") if isinstance(namespaces, dict) else None, "Same")
        listed = allowed.get("kinds")
        if isinstance(listed, list) and listed:
            kinds = tuple(
                k["kind"]
                for k in listed
                if isinstance(k, dict)
                and isinstance(k.get("kind"), str)
                and _text(k.get("group"), GATEWAY_GROUP) == GATEWAY_GROUP
            )
        else:
            kinds = DEFAULT_KINDS.get(protocol, ())
        hostname = entry.get("hostname")
        yield Listener(
            gateway,
            entry["name"],
            _number(entry.get("port")),
            hostname.lower() if isinstance(hostname, str) and hostname else None,
            admits,
            kinds,
        )


def hostnames_intersect(one: str, other: str) -> bool:
    """Whether two Gateway API hostnames share a host: equal, or a `*.` label covering the
    other ("`*.example.com` would match both `test.example.com`, and `foo.test.example.com`,
    but not `example.com`")."""
    one, other = one.lower(), other.lower()
    if one == other:
        return True
    if one.startswith("*.") and other.endswith(one[1:]):
        return True
    return other.startswith("*.") and one.endswith(other[1:])


class Routes:
    """One scope's Gateway API routes, Gateways, Services and ReferenceGrants, indexed."""

    @classmethod
    def of(cls, scope: Scope) -> Routes:
        return memoized(scope, "gateway-api-routes", cls, lambda: cls(scope))

    def __init__(self, scope: Scope) -> None:
        self.routes: list[Resource] = [
            route for kind in ROUTE_KINDS for route in of_kind(scope, GATEWAY_API, kind)
        ]
        self.gateways: dict[tuple[str, str], Resource] = {}
        self.namespaces: set[str] = set()
        self.services: dict[tuple[str, str], Resource] = {}
        self.service_namespaces: set[str] = set()
        # (namespace, from kind, from namespace, to group, to kind, to name or "") of each grant
        self._grants: set[tuple[str, str, str, str, str, str]] = set()
        if not self.routes:
            return
        self.gateways = gateway_api_gateways(scope)
        mesh = Mesh.of(scope)
        self.namespaces = mesh.namespaces
        self.services = mesh.services
        # Where the input holds Services: a Service missing there is missing, not elsewhere.
        self.service_namespaces = {namespace for namespace, _ in mesh.services}
        for grant in of_kind(scope, GATEWAY_API, "ReferenceGrant"):
            sources = [s for _, s in items(grant, "spec", "from") if isinstance(s, dict)]
            targets = [t for _, t in items(grant, "spec", "to") if isinstance(t, dict)]
            for source in sources:
                if source.get("group") != GATEWAY_GROUP:
                    continue
                for target in targets:
                    name = target.get("name")
                    self._grants.add(
                        (
                            namespace_of(grant),
                            str(source.get("kind")),
                            str(source.get("namespace")),
                            _text(target.get("group"), ""),
                            str(target.get("kind")),
                            name if isinstance(name, str) else "",
                        )
                    )

    def granted(self, route: Resource, ref: Ref) -> bool:
        """Whether a ReferenceGrant in the namespace `ref` points into lets `route` refer to it."""
        grant = (ref.namespace, route.kind, namespace_of(route), ref.group, ref.kind)
        return (*grant, "") in self._grants or (*grant, ref.name) in self._grants

    def selector(self, ref: Ref) -> Labels | None:
        """The selector of the Service a backendRef names; None when it names no Service of
        the input, or one that selects nothing."""
        service = self.services.get(ref.key) if ref.is_service else None
        return (labels(service.get("spec", "selector")) or None) if service else None

    def backend_services(self) -> set[tuple[str, str]]:
        """(namespace, name) of every Service a route's backendRefs or mirrors name."""
        found: set[tuple[str, str]] = set()
        for route in self.routes:
            for backends in backend_refs(route):
                found.update(ref.key for ref in backends if ref.is_service)
            found.update(ref.key for ref in mirror_refs(route) if ref.is_service)
        return found
