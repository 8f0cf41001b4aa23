"""A destination names its port when its Service has several and the port is not implied.

Without `destination.port`, Istio sends a request to the Service's only port when it has one;
when it has several, to the port the request arrived on. A sidecar receives a request on the
port of the Service that was called, so a mesh route to its own host needs no port. A gateway
receives it on its server's port (80, 443), and a route to another host arrives on the port of
the host that was called: when the destination's Service has no port of that number, Envoy
has no cluster for it and every request fails (503, `NC`).

Reported, at the destination's `host`, when the destination names no port, its Service or
ServiceEntry has more than one, and either the VirtualService is bound to a gateway other than
`mesh` or the destination's host is not one of the VirtualService's `hosts`.

Istio: IST0112 VirtualServiceDestinationPortSelectorRequired. Looser: istioctl reports, as an
error, every destination without a port to a multi-port Service, including mesh routes to their
own host, which work; meshcanary leaves those out, and warns rather than errs, since a Service
that happens to expose the gateway's port number still works.

Fix: add `port: {number: <service port>}` to the destination (in a release file: `ports:`).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import ISTIO, MESH, Readings, bound_gateways, describe, of_kind, own_hosts
from meshcanary.problem import Severity
from meshcanary.registry import Registry, lookup_destination
from meshcanary.rules import Finding, Scope

ID = "destination-port-required"
SEVERITY = Severity.WARNING
SUMMARY = "a destination to a multi-port Service names its port where the port is not implied"
HINT = "add `port: {number: <port>}` to the destination"
RELEASE_HINT = "list the Service's ports under `ports:` in the release file"
ISTIO_CODES = ("IST0112",)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    registry = Registry.of(scope)
    readings = Readings.of(scope)
    for service in services:
        gateways = [g for g in bound_gateways(service) if g != MESH]
        own = own_hosts(service)
        for destination, host in readings.sent_to(service):
            if service.get(*destination.path, "port") is not None:
                continue
            found = lookup_destination(registry, service, host)
            if not found.entries or len(found.entries[0].ports) < 2:
                continue
            if gateways:
                why = f"traffic from gateway {', '.join(gateways)} keeps the gateway's port"
            elif destination.host not in own:
                why = "traffic keeps the port of the host that was called"
            else:
                continue
            entry = found.entries[0]
            ports = ", ".join(str(p) for p in entry.ports)
            yield Finding(
                service,
                [*destination.path, "host"],
                f"{describe(entry.resource)} has several ports ({ports}) and this destination "
                f"names none: {why}, which the Service may not expose",
            )
