"""A VirtualService bound to a Gateway shares at least one host with it.

The Gateway's servers decide which hosts it accepts; a VirtualService bound to it applies only
to the hosts both list. When none of the VirtualService's hosts is exposed by the Gateway,
the binding does nothing: external requests never see the routes or the canary's weights,
and Istio accepts the object without a word.

Hosts match the way Istio matches them: equal names, or a wildcard (`*`, `*.example.com`) on
either side covering the other, compared case-insensitively. A Gateway host may be written
`ns/host`: the VirtualService must then be in namespace `ns` (`*` is any namespace, `.` the
Gateway's own). Short VirtualService hosts are tried as written and resolved
(`name` → `name.<namespace>.svc.cluster.local`). Only bindings in `spec.gateways` to Istio
Gateways in scope are checked; `gateway-exists` reports the missing ones, and a binding to a
Gateway API Gateway, whose listeners Istio turns into servers itself, is not checked.

Istio: IST0132 VirtualServiceHostNotFoundInGateway. Deliberately looser: istioctl warns about
each host the Gateway does not expose, while a VirtualService often lists an in-mesh host for
`mesh` next to the public one for the Gateway; meshcanary reports a binding that shares no
host at all, as an error, since it routes nothing.

Fix: add the public host to the VirtualService's `hosts`, or expose it on the Gateway.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    ISTIO,
    MESH,
    Mesh,
    gateway_key,
    hosts_match,
    namespace_of,
    of_kind,
    resolve_host,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "hosts-gateways-agree"
SEVERITY = Severity.ERROR
SUMMARY = "a VirtualService bound to a Gateway has a host the Gateway exposes"
HINT = "add a host the Gateway's servers expose to spec.hosts, or expose the host on the Gateway"
RELEASE_HINT = (
    "add a host the Gateway exposes to `hosts:` in the release file, or expose the host in the "
    "gateway's `servers:` in environment.yaml"
)
ISTIO_CODES = ("IST0132",)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    for service in services:
        gateways = service.get("spec", "gateways")
        listed = service.get("spec", "hosts")
        if not isinstance(gateways, list) or not isinstance(listed, list):
            continue
        namespace = namespace_of(service)
        hosts = [h.strip().lower() for h in listed if isinstance(h, str) and h.strip()]
        candidates = {*hosts, *(resolve_host(h, namespace) for h in hosts)}
        for index, name in enumerate(gateways):
            if not isinstance(name, str) or name == MESH:
                continue
            gateway = mesh.gateways.get(gateway_key(name, namespace))
            if gateway is None:
                continue
            written = _written(gateway)
            exposed = list(_exposed(gateway, namespace))
            if not written or any(hosts_match(h, g) for h in candidates for g in exposed):
                continue
            if exposed:
                message = (
                    f"Gateway {name} exposes {', '.join(written)}; none of this "
                    f"VirtualService's hosts ({', '.join(hosts) or 'none'}) match, so the "
                    "binding routes nothing"
                )
            else:
                message = (
                    f"Gateway {name} exposes its hosts ({', '.join(written)}) to other "
                    f"namespaces only, not to {namespace}"
                )
            yield Finding(service, ["spec", "gateways", index], message)


def _written(gateway: Resource) -> list[str]:
    """Every server host of the Gateway, as written."""
    servers = gateway.get("spec", "servers")
    found: list[str] = []
    for server in servers if isinstance(servers, list) else []:
        hosts = server.get("hosts") if isinstance(server, dict) else None
        if isinstance(hosts, list):
            found.extend(h for h in hosts if isinstance(h, str))
    return found


def _exposed(gateway: Resource, namespace: str) -> Iterator[str]:
    """The Gateway's hosts that VirtualServices in `namespace` may bind to."""
    for host in _written(gateway):
        allowed, _, name = host.rpartition("/")
        if allowed == ".":
            allowed = namespace_of(gateway)
        if allowed in ("", "*", namespace):
            yield name
