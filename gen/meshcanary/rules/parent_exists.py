"""Every parentRef of a Gateway API route names a Gateway (and listener) or a Service in scope.

A route applies only where its `parentRefs` attach it: to a Gateway's listeners for traffic
entering the cluster, or (GAMMA, the mesh) to a Service for traffic sent to that Service. A
parentRef that names nothing attaches the route nowhere: the API server accepts it, the
route's status says `Accepted: False`, and the canary's weights never reach the traffic.

A parentRef is a Gateway (`gateway.networking.k8s.io`, kind Gateway) unless it says otherwise,
in the route's namespace unless it names one. Its `sectionName` must name a listener of that
Gateway and its `port` the port of one ("When both Port and SectionName are specified, the
name and port of the selected listener must match both values"). A Service parent (group "",
kind Service) must name a Service of the input, and its `port` one of the Service's ports.

As `gateway-exists` does for Istio gateways, a Gateway that may live elsewhere is not
reported here: when the input holds no Gateway at all, or nothing of the parentRef's
namespace, `reference-not-checked` names the reference at `info`; so it does a Service parent
in a namespace whose Services the input does not hold, and a parent of another kind.

Istio: none for Gateway API routes; the analog of `gateway-exists` (IST0101
ReferencedResourceNotFound for a VirtualService's gateway).

Fix: correct the name, namespace or sectionName, or add the Gateway (or Service).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import items
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules._gateway_api import Ref, Routes, listeners, parent_refs

ID = "parent-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every parentRef of a Gateway API route names a Gateway and listener, or a Service"
HINT = "name an existing Gateway (and one of its listeners in sectionName), or Service"
RELEASE_HINT = (
    "in `gateways:`, name a gateway environment.yaml declares, an existing one as "
    "`<namespace>/<name>`, or `mesh`"
)
ISTIO_CODES: tuple[str, ...] = ()

UNCHECKED_HINT = (
    "give the Gateway (or the namespace's objects) to the same run to check the reference, or "
    "set `reference-not-checked` to off"
)


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """parentRefs to Gateways or Services the input cannot hold, and to other kinds."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    routes = Routes.of(scope)
    for route in routes.routes:
        for ref in parent_refs(route):
            if ref.is_gateway:
                yield from _gateway(routes, ref)
            elif ref.is_service:
                yield from _service(routes, ref)
            else:
                message = f"parent {ref.shown} ({ref.group or 'core'}) not checked: only "
                message += "Gateways and Services are"
                yield Finding(ref.route, ref.path, message, hint=UNCHECKED_HINT), False


def _gateway(routes: Routes, ref: Ref) -> Iterator[tuple[Finding, bool]]:
    gateway = routes.gateways.get(ref.key)
    if gateway is None:
        if not routes.gateways or ref.namespace not in routes.namespaces:
            where = "no Gateway at all" if not routes.gateways else f"nothing of {ref.namespace}"
            message = f"Gateway {ref.namespace}/{ref.name} not checked: the input holds {where}"
            yield Finding(ref.route, ref.path, message, hint=UNCHECKED_HINT), False
            return
        near = sorted(f"{ns}/{n}" for ns, n in routes.gateways if n == ref.name)
        also = f" (there is {', '.join(near)})" if near else ""
        message = f"no Gateway {ref.name!r} in namespace {ref.namespace}{also}: the route is "
        message += "attached to nothing"
        yield Finding(ref.route, [*ref.path, "name"], message), True
        return
    found = list(listeners(gateway))
    if ref.section is not None:
        found = [listener for listener in found if listener.name == ref.section]
        if not found:
            names = ", ".join(listener.name for listener in listeners(gateway)) or "none"
            message = f"Gateway {ref.namespace}/{ref.name} has no listener {ref.section!r} "
            message += f"(it has {names})"
            yield Finding(ref.route, [*ref.path, "sectionName"], message), True
            return
    if ref.port is not None and found and all(x.port != ref.port for x in found):
        ports = ", ".join(str(p) for p in sorted({x.port for x in found if x.port})) or "none"
        gateway_name = f"Gateway {ref.namespace}/{ref.name}"
        if ref.section:
            message = f"{gateway_name}'s listener {ref.section!r} is on port {ports}, not "
            message += f"{ref.port}"
        else:
            message = f"{gateway_name} has no listener on port {ref.port} (they are on {ports})"
        yield Finding(ref.route, [*ref.path, "port"], message), True


def _service(routes: Routes, ref: Ref) -> Iterator[tuple[Finding, bool]]:
    service = routes.services.get(ref.key)
    if service is None:
        if ref.namespace not in routes.service_namespaces:
            message = f"Service {ref.namespace}/{ref.name} not checked: the input holds no "
            message += f"Service of namespace {ref.namespace}"
            yield Finding(ref.route, ref.path, message, hint=UNCHECKED_HINT), False
            return
        message = f"no Service {ref.name!r} in namespace {ref.namespace}: the route is attached "
        message += "to nothing"
        yield Finding(ref.route, [*ref.path, "name"], message), True
        return
    ports = [p.get("port") for _, p in items(service, "spec", "ports") if isinstance(p, dict)]
    if ref.port is not None and ports and ref.port not in ports:
        shown = ", ".join(str(p) for p in ports)
        message = f"Service {ref.namespace}/{ref.name} has no port {ref.port} (it has {shown})"
        yield Finding(ref.route, [*ref.path, "port"], message), True
