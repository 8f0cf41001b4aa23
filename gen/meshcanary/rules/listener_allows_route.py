"""A route attached to a Gateway is admitted by at least one of the listeners it names.

A Gateway's listeners decide which routes may attach: `allowedRoutes.namespaces.from` (Same,
the default: routes of the Gateway's namespace only; All; or a Selector over Namespaces),
`allowedRoutes.kinds` (by default what the protocol carries: HTTP and HTTPS take HTTPRoutes
and GRPCRoutes, TLS takes TLSRoutes, TCP takes TCPRoutes), and `hostname`. "If both the
Listener and HTTPRoute have specified hostnames, and none match [...] then the HTTPRoute is
not accepted." A route no listener admits is not attached: its status says `Accepted: False`,
and external traffic never sees its rules or the canary's weights.

The listeners a parentRef names are those of its `sectionName` and `port`, or all of the
Gateway's. The route counts as attached when one of them admits it ("If 1 of 2 Gateway
listeners accept attachment from the Route, the Route MUST be considered successfully
attached"). Hostnames intersect as the Gateway API defines it: equal, or a `*.` wildcard
label covering the other ("`*.example.com` would match both `test.example.com`, and
`foo.test.example.com`, but not `example.com`"); a listener or route without hostnames takes
any. The finding points at the parentRef, or at the route's `hostnames` when they alone keep
it out. Only parentRefs to Gateways in the input are checked (`parent-exists` reports the rest);
when the only listeners that might admit the route select namespaces by label, which cannot
be evaluated without the Namespace objects, `reference-not-checked` says so at `info`.

Istio: none; the analog of `hosts-gateways-agree` (IST0132) for Gateway API Gateways.

Fix: put the route in the Gateway's namespace (or allow its namespace on the listener), use a
route kind the listener takes, or give the route a hostname the listener serves.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import namespace_of
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules._gateway_api import (
    Listener,
    Routes,
    hostnames_intersect,
    listeners,
    parent_refs,
)

ID = "listener-allows-route"
SEVERITY = Severity.ERROR
SUMMARY = "a route attached to a Gateway is admitted by one of its listeners"
HINT = (
    "allow the route's namespace and kind on the listener, or give the route a hostname the "
    "listener serves"
)
RELEASE_HINT = (
    "add a host the gateway serves to `hosts:` in the release file, or allow the release's "
    "namespace on the gateway's listener in environment.yaml"
)
ISTIO_CODES: tuple[str, ...] = ()

# Route kinds whose `spec.hostnames` a listener's hostname is matched against.
NAMED_KINDS = frozenset(("HTTPRoute", "GRPCRoute", "TLSRoute"))

SERVES = "serves "  # how a refusal for hostnames begins
UNKNOWN = "unknown"  # a listener that may admit the route: its namespace selector decides


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """Attachments that only a listener's namespace selector could admit."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    routes = Routes.of(scope)
    for route in routes.routes:
        hostnames = _hostnames(route)
        for ref in parent_refs(route):
            gateway = routes.gateways.get(ref.key) if ref.is_gateway else None
            if gateway is None:
                continue
            named = [
                listener
                for listener in listeners(gateway)
                if ref.section in (None, listener.name) and ref.port in (None, listener.port)
            ]
            reasons = [_refusal(listener, route, hostnames) for listener in named]
            if not named or "" in reasons:
                continue
            shown = f"Gateway {ref.namespace}/{ref.name}"
            if UNKNOWN in reasons:
                message = f"{shown} admits this route only if its namespace "
                message += f"{namespace_of(route)} has the labels a listener selects: not checked"
                hint = "compare the namespace's labels with the listener's selector, or set "
                hint += "`reference-not-checked` to off"
                yield Finding(route, ref.path, message, hint=hint), False
                continue
            why = "; ".join(f"listener {x.name!r} {r}" for x, r in zip(named, reasons, strict=True))
            message = f"no listener of {shown} admits this route, so it is not attached: {why}"
            # Hostnames alone keep it out: the fix is in the route's hostnames.
            hosts = all(r.startswith(SERVES) for r in reasons)
            yield Finding(route, ["spec", "hostnames"] if hosts else ref.path, message), True


def _hostnames(route: Resource) -> list[str]:
    if route.kind not in NAMED_KINDS:
        return []
    listed = route.get("spec", "hostnames")
    return [h for h in listed if isinstance(h, str) and h] if isinstance(listed, list) else []


def _refusal(listener: Listener, route: Resource, hostnames: list[str]) -> str:
    """Why `listener` does not admit `route`; "" when it does, UNKNOWN when it cannot be told."""
    if listener.kinds and route.kind not in listener.kinds:
        return f"takes {', '.join(listener.kinds)}, not {route.kind}"
    served = listener.hostname
    if served and hostnames and not any(hostnames_intersect(served, h) for h in hostnames):
        return f"{SERVES}{served}, none of the route's hostnames"
    namespace, own = namespace_of(route), namespace_of(listener.gateway)
    if listener.admits == "Same" and namespace != own:
        return f"admits routes of namespace {own} only, not {namespace}"
    if listener.admits not in ("Same", "All"):
        return UNKNOWN
    return ""
