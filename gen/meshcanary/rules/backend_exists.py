"""Every backendRef of a Gateway API route names a Service of the input, and one of its ports.

An HTTPRoute, GRPCRoute, TCPRoute or TLSRoute sends each rule's requests to its `backendRefs`
(and copies them to the `backendRef` of a `RequestMirror` filter). A backendRef that names no
Service is invalid: "500 status codes MUST be returned for requests that would have otherwise
been routed to an invalid backend", so a canary's share of the traffic fails outright. The
`port` is "the service port number, not the target port": a number the Service does not
expose leaves the backend without endpoints.

A backendRef is a Service (group "", kind Service) unless it says otherwise, in the route's
namespace unless it names one (which then needs a ReferenceGrant: `reference-granted`). A
backendRef to another kind (a ServiceImport, an implementation's own backend), or into a
namespace whose Services the input does not hold, cannot be checked here:
`reference-not-checked` names it at `info`. A Service backendRef without a `port` is refused
by the API server ("Must have port for Service reference"), which the `schema` check reports.

Istio: none for Gateway API routes; the analog of `destination-host-exists` (IST0101
ReferencedResourceNotFound for a VirtualService's destination host).

Fix: name an existing Service and one of its `ports[].port`, or add the Service.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import items
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules._gateway_api import Ref, Routes, backend_refs, mirror_refs

ID = "backend-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every backendRef of a Gateway API route names a Service in scope and one of its ports"
HINT = "name an existing Service and one of its service ports (`ports[].port`)"
RELEASE_HINT = (
    "the route's backendRefs are the release's per-version Services: a generated route edited "
    "by hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES: tuple[str, ...] = ()

UNCHECKED_HINT = (
    "give the namespace's Services to the same run to check the reference, or set "
    "`reference-not-checked` to off"
)


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """backendRefs to other kinds, or into namespaces without Services in the input."""
    yield from verdicts(scope, _verdicts)[1]


def references(routes: Routes) -> Iterator[Ref]:
    """Every backendRef of every route: the rules' and the mirrors'."""
    for route in routes.routes:
        for backends in backend_refs(route):
            yield from backends
        yield from mirror_refs(route)


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    routes = Routes.of(scope)
    for ref in references(routes):
        if not ref.is_service:
            group = ref.group or "core"
            yield (
                Finding(
                    ref.route,
                    ref.path,
                    f"backendRef to {ref.kind} {ref.namespace}/{ref.name} ({group}) not checked: "
                    "only Services are",
                    hint="give the route Services as backends, or set `reference-not-checked` "
                    "to off",
                ),
                False,
            )
            continue
        service = routes.services.get(ref.key)
        if service is None:
            if ref.namespace not in routes.service_namespaces:
                yield (
                    Finding(
                        ref.route,
                        ref.path,
                        f"Service {ref.namespace}/{ref.name} not checked: the input holds no "
                        f"Service of namespace {ref.namespace}",
                        hint=UNCHECKED_HINT,
                    ),
                    False,
                )
                continue
            effect = (
                "the mirror copies nothing"
                if "requestMirror" in ref.path
                else "requests this backend gets are answered with 500"
            )
            yield (
                Finding(
                    ref.route,
                    [*ref.path, "name"],
                    f"no Service {ref.name!r} in namespace {ref.namespace}: {effect}",
                ),
                True,
            )
            continue
        ports = [p.get("port") for _, p in items(service, "spec", "ports") if isinstance(p, dict)]
        if ref.port is not None and ports and ref.port not in ports:
            shown = ", ".join(str(p) for p in ports)
            yield (
                Finding(
                    ref.route,
                    [*ref.path, "port"],
                    f"Service {ref.namespace}/{ref.name} has no port {ref.port} (it has {shown}): "
                    "a backendRef's port is the service port, not the target port",
                ),
                True,
            )
