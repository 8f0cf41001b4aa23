"""A route Istio would never apply: a `tcp:` or `tls:` route on an HTTP port, and the like.

Istio builds one kind of filter chain per port and applies only one section of a
VirtualService there. The protocol comes from the Service port: its `appProtocol`, else its
name's prefix (`http`, `http2`, `grpc`, `grpc-web`; `https`, `tls`; `tcp`, `mongo`, `mysql`,
`redis`). On an HTTP port only `http:` routes apply: a `tcp:` or `tls:` route there is ignored
without a word, and requests follow the `http:` routes or the Service's default, whatever its
weights say. On an opaque TCP port only `tcp:` routes apply (the sidecar never reads a TLS
ClientHello there, so an SNI match of a `tls:` route never matches). On an `https` or `tls`
port only `tls:` routes apply: the sidecar passes the TLS through and routes it by SNI.

A route bound to `mesh` (no `gateways`, or `mesh` among them; a match's own `gateways` replace
the VirtualService's) is checked against the ports of the Services its VirtualService's
`hosts` name, where sidecars apply it: at `match[].port`, or, for a match without a port,
against every port of the Service (a finding when none of them takes the route). A route bound
to a Gateway of the input is checked against that Gateway's servers on the port: HTTP, HTTP2,
GRPC and TLS-terminating HTTPS servers take `http:` routes, passthrough servers (`tls.mode`
PASSTHROUGH) `tls:` routes, and TCP, MONGO and TLS-terminating TLS servers `tcp:` routes.
Ports whose protocol Istio has to sniff (no known name or appProtocol), UDP ports, hosts that
are no Service of the input, Gateways not in the input and AUTO_PASSTHROUGH servers are left
alone.

A `tls:` route is also checked where it sends: a destination port (its `port.number`, else
the Service's only port) that the destination Service declares HTTP, HTTP2, GRPC or GRPC-WEB
gets TLS bytes its sidecar tries to read as HTTP, and every connection fails.

Istio: none; istioctl analyze does not compare a route's section with its port's protocol,
and Istio accepts the VirtualService.

Fix: name the Service port (or set its `appProtocol`) for the traffic it carries, e.g.
`tcp-echo` or `tls-api`; or move the route to the section the port's protocol uses (`http:`
for http, http2, grpc).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, MESH, Mesh, describe, gateway_key, items, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.registry import istio_host
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import server_port, tcp_service_ports
from meshcanary.rules.port_name_protocol import PROTOCOLS

ID = "route-protocol-port"
SEVERITY = Severity.ERROR
SUMMARY = "each route is in the section (http, tcp, tls) Istio uses for its port's protocol"
HINT = (
    "name the Service port (or set appProtocol) for the traffic it carries, e.g. `tcp-echo` or "
    "`tls-api`; or move the route to the section the port's protocol uses"
)
RELEASE_HINT = (
    "make the port's `protocol:` under `ports:` what the base's Service port declares, or rename "
    "that Service port (`tcp-…`, `tls-…`, `http-…`) for the traffic it carries"
)
ISTIO_CODES: tuple[str, ...] = ()

# The convention's protocols (port-name-protocol's table), by the section Istio applies on
# them; `udp` takes none.
HTTP = frozenset(("http", "http2", "grpc", "grpc-web"))
TLS = frozenset(("https", "tls"))
TCP = PROTOCOLS - HTTP - TLS - {"udp"}
# appProtocol values Kubernetes defines, which Istio reads before the convention.
KUBERNETES = {
    "kubernetes.io/h2c": "http2",
    "kubernetes.io/ws": "http",
    "kubernetes.io/wss": "https",
}
SECTIONS = ("http", "tcp", "tls")
# How Istio proxies a port of each section, for messages.
PROXIED = {
    "http": "HTTP",
    "tcp": "opaque TCP",
    "tls": "TLS passed through and routed by SNI",
}


@dataclass(frozen=True)
class Declared:
    """What a Service port or a Gateway server says about its protocol, and where."""

    owner: str  # "Service shop/checkout"
    kind: str  # "port" or "server port"
    number: int
    written: str  # "name 'grpc'"
    section: str  # the routes Istio applies there: http, tcp or tls

    @property
    def what(self) -> str:
        return f"{self.kind} {self.number} of {self.owner}"


def protocol_section(protocol: str) -> str | None:
    """The section Istio applies on a port of `protocol` (a name's prefix or appProtocol)."""
    text = protocol.strip().lower()
    text = KUBERNETES.get(text, text)
    # As in Istio: `grpc-web` before the general split at the first `-`.
    prefix = "grpc-web" if text.startswith("grpc-web") else text.partition("-")[0]
    if prefix in HTTP:
        return "http"
    if prefix in TLS:
        return "tls"
    return "tcp" if prefix in TCP else None


def service_ports(service: Resource) -> Iterator[Declared | None]:
    """Each TCP port of a Service, with the protocol Istio reads in it (None: sniffed)."""
    for number, port in tcp_service_ports(service):
        app, name = port.get("appProtocol"), port.get("name")
        if isinstance(app, str) and app.strip():
            field, value = "appProtocol", app
        elif isinstance(name, str) and name:
            field, value = "name", name
        else:
            yield None
            continue
        section = protocol_section(value)
        yield (
            Declared(describe(service), "port", number, f"{field} {value!r}", section)
            if section
            else None
        )


def server_section(server: Mapping[str, Any]) -> tuple[str, str] | None:
    """The section a Gateway server applies, and how it is written; None when unknown."""
    port = server.get("port")
    protocol = port.get("protocol") if isinstance(port, dict) else None
    if not isinstance(protocol, str) or not protocol.strip():
        return None
    section = protocol_section(protocol)
    written = f"protocol {protocol!r}"
    if section in (None, "http"):
        return (section, written) if section else None
    tls = server.get("tls")
    # Istio's default mode is PASSTHROUGH; without `tls` the server terminates nothing.
    mode = tls.get("mode", "PASSTHROUGH") if isinstance(tls, dict) else None
    if mode == "AUTO_PASSTHROUGH" or (mode is not None and not isinstance(mode, str)):
        return None  # routed by SNI to clusters directly: no VirtualService applies
    if mode is not None:
        written += f" with tls.mode {mode}"
    if mode == "PASSTHROUGH":
        return "tls", written
    # A terminating HTTPS server routes the requests inside; TLS and TCP ones the bytes.
    return ("http" if protocol.strip().lower() == "https" else "tcp"), written


def gateway_servers(gateway: Resource) -> Iterator[Declared | None]:
    for _, server in items(gateway, "spec", "servers"):
        number = server_port(server) if isinstance(server, dict) else None
        if number is None:
            continue
        found = server_section(server)
        yield (
            Declared(describe(gateway), "server port", number, found[1], found[0])
            if found
            else None
        )


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    for service in services:
        namespace = namespace_of(service)
        hosts = service.get("spec", "hosts")
        targets = [
            found
            for host in (hosts if isinstance(hosts, list) else [])
            if isinstance(host, str) and "*" not in host
            if (found := mesh.service(istio_host(host, namespace))) is not None
        ]
        bound = _names(service.get("spec", "gateways")) or [MESH]
        for section in SECTIONS:
            for path, route in items(service, "spec", section):
                if isinstance(route, dict):
                    yield from _route(service, mesh, section, path, route, targets, bound)


def _names(value: object) -> list[str]:
    return [n for n in value if isinstance(n, str) and n] if isinstance(value, list) else []


def _route(
    service: Resource,
    mesh: Mesh,
    section: str,
    path: list[str | int],
    route: dict[str, Any],
    targets: list[Resource],
    bound: list[str],
) -> Iterator[Finding]:
    namespace = namespace_of(service)
    matches = route.get("match")
    listed = matches if isinstance(matches, list) and matches else [None]
    reported: set[tuple[str, int]] = set()
    applies = False  # whether some match may apply somewhere
    for index, match in enumerate(listed):
        if match is not None and not isinstance(match, dict):
            continue
        conditions = match or {}
        port = conditions.get("port")
        number = port if isinstance(port, int) and not isinstance(port, bool) else None
        at: list[str | int] = [*path, "match", index] if match is not None else list(path)
        if number is not None:
            at = [*at, "port"]
        listeners: list[list[Declared | None]] = []
        for name in _names(conditions.get("gateways")) or bound:
            if name == MESH:
                listeners += [list(service_ports(target)) for target in targets]
            else:
                gateway = mesh.gateways.get(gateway_key(name, namespace))
                if gateway is not None:
                    listeners.append(list(gateway_servers(gateway)))
        wrongs = [_wrong(ports, number, section) for ports in listeners]
        applies = applies or not listeners or None in wrongs
        for wrong in wrongs:
            if wrong is None or (wrong[0].owner, wrong[0].number) in reported:
                continue  # two hosts or bindings naming the same Service or Gateway: once
            reported.update((p.owner, p.number) for p in wrong)
            yield Finding(service, at, _message(section, wrong), _hint(section, wrong[0]))
    # Where the route never applies, no connection reaches its destinations.
    if section == "tls" and applies:
        yield from _destinations(service, mesh, path, route, reported)


def _wrong(ports: list[Declared | None], number: int | None, section: str) -> list[Declared] | None:
    """The ports the route would apply on, none of which takes it; None when one may take it
    or one's protocol is unknown."""
    if number is not None:
        ports = [p for p in ports if p is None or p.number == number]
    known = [p for p in ports if p is not None]
    if not known or len(known) < len(ports) or any(p.section == section for p in known):
        return None
    return known


def _message(section: str, ports: list[Declared]) -> str:
    port = ports[0]
    if len(ports) > 1:
        listed = "; ".join(f"{p.kind} {p.number}: {p.written}, {p.section}" for p in ports)
        return (
            f"this `{section}:` route never applies on {port.owner}: none of its ports takes "
            f"`{section}:` routes ({listed})"
        )
    message = (
        f"this `{section}:` route never applies on {port.what}: its {port.written} makes Istio "
        f"proxy it as {PROXIED[port.section]}, where only `{port.section}:` routes apply"
    )
    if port.section == "http":
        return message + " (its weights are ignored; requests follow the `http:` routes)"
    if section == "tls" and port.section == "tcp" and port.kind == "port":
        return message + " (the SNI match never sees a TLS ClientHello)"
    return message


def _hint(section: str, port: Declared) -> str:
    if port.kind == "server port":
        return (
            f"move the route to `{port.section}:`, or bind it to a Gateway server whose protocol "
            f"carries {section.upper()}"
        )
    if section == "http":
        return f"move the route to `{port.section}:`, or name the port `http-…` if it carries HTTP"
    return (
        f"name the Service port `{section}-…` (e.g. `{section}-echo`) or set its appProtocol to "
        f"{section}; or move the route to `{port.section}:`"
    )


def _destinations(
    service: Resource,
    mesh: Mesh,
    path: list[str | int],
    route: dict[str, Any],
    reported: set[tuple[str, int]],
) -> Iterator[Finding]:
    """A TLS route's destinations on ports their Service declares HTTP."""
    entries = route.get("route")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        destination = entry.get("destination") if isinstance(entry, dict) else None
        host = destination.get("host") if isinstance(destination, dict) else None
        if not isinstance(destination, dict) or not isinstance(host, str) or "*" in host:
            continue
        target = mesh.service(istio_host(host, namespace_of(service)))
        if target is None:
            continue
        ports = list(service_ports(target))
        port = destination.get("port")
        number = port.get("number") if isinstance(port, dict) else None
        at: list[str | int] = [*path, "route", index, "destination"]
        if isinstance(number, int) and not isinstance(number, bool):
            at += ["port", "number"]
        elif len(ports) == 1 and ports[0] is not None:
            number = ports[0].number
            at += ["host"]
        else:
            continue
        declared = next((p for p in ports if p is not None and p.number == number), None)
        if declared is None or declared.section != "http":
            continue
        if (declared.owner, declared.number) in reported:
            continue
        reported.add((declared.owner, declared.number))
        yield Finding(
            service,
            at,
            f"this `tls:` route sends TLS to {declared.what}, whose {declared.written} makes "
            "its sidecar read the port as HTTP: every connection fails",
            f"send it to a port named `tls-…` or `https-…` (or with appProtocol tls), or name "
            f"port {number} for the TLS it carries",
        )
