"""VirtualServices, Gateways and DestinationRules pass Istio's own validation.

Istio's admission webhook checks more than the CRD's schema, and refuses the whole object
(`kubectl apply` fails, usually halfway through a release) when a check fails. The checks that
decide where traffic goes, which the schema cannot express:

- a VirtualService has http, tcp or tls routes; an HTTP route has a `route`, a `redirect`, a
  `directResponse` or a `delegate`, and not two of them (nor `fault` or `rewrite` with a
  redirect or direct response, nor `mirror` with `mirrors`); a redirect changes something
  (`uri`, `authority`, `scheme`, `port` or `derivePort`); a rewrite changes something (`uri`,
  `uriRegexRewrite` or `authority`), and not the path twice (`uri` and `uriRegexRewrite`); a
  `uriRegexRewrite` has both `match` and `rewrite`; retries with `attempts: 0` (retries off)
  set nothing else; a TCP or TLS route has a `route`;
- a TLS route has a `match`, and each of its matches `sniHosts`, each covered by a host of the
  VirtualService (`a.example.com` by `*.example.com` or `*`);
- a destination's host is not empty or `*`, and its subset name is a DNS label;
- a VirtualService bound to the mesh has no `*` host, and lists no host twice (`*.a.com`
  and `b.a.com` count as twice); a delegate (one without `hosts`) has no `gateways`, `tcp` or
  `tls`;
- a Gateway has servers; each server has hosts, no `targetPort`, a port name no other server
  uses, and TLS settings when its protocol is HTTPS or TLS;
- a DestinationRule names each subset once, with a DNS label.

A missing `port`, `hosts` or destination `host` is the schema's to report; weights that are
all 0 are `weights-sum-100`'s.

Istio: IST0106 SchemaValidationError, which is how istioctl analyze reports what Istio's
validation refuses. The same checks.

Fix: what the message says; each names the field to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, MESH, hosts_match, items, of_kind
from meshcanary.names import is_dns_label
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "istio-route-valid"
SEVERITY = Severity.ERROR
SUMMARY = "VirtualServices, Gateways and DestinationRules pass Istio's own validation"
HINT = "Istio refuses the whole object: change the field as the message says"
ISTIO_CODES = ("IST0106",)

TLS_PROTOCOLS = frozenset(("HTTPS", "TLS"))
REDIRECTS = ("uri", "authority", "scheme", "port", "derivePort")


def check(scope: Scope) -> Iterator[Finding]:
    for service in of_kind(scope, ISTIO, "VirtualService"):
        yield from _virtual_service(service)
    for gateway in of_kind(scope, ISTIO, "Gateway"):
        yield from _gateway(gateway)
    for rule in of_kind(scope, ISTIO, "DestinationRule"):
        yield from _destination_rule(rule)


# VirtualService ------------------------------------------------------------------------------


def _virtual_service(service: Resource) -> Iterator[Finding]:
    spec = service.get("spec")
    if (spec is None or isinstance(spec, dict)) and all(
        _absent(service.get("spec", p)) for p in ("http", "tcp", "tls")
    ):
        yield Finding(service, ["spec"], "VirtualService has no http, tcp or tls routes", key=True)
    yield from _hosts(service)
    for path, route in items(service, "spec", "http"):
        if isinstance(route, dict):
            yield from _http_route(service, path, route)
    for protocol in ("tcp", "tls"):
        for path, route in items(service, "spec", protocol):
            if not isinstance(route, dict):
                continue
            if _absent(route.get("route")):
                yield _at(service, path, "route", f"{protocol.upper()} route has no `route`")
            if protocol == "tls":
                yield from _tls_route(service, path, route)
    yield from _destinations(service)


def _hosts(service: Resource) -> Iterator[Finding]:
    gateways = service.get("spec", "gateways")
    hosts = [(p, h) for p, h in items(service, "spec", "hosts") if isinstance(h, str)]
    if not hosts:
        for key in ("gateways", "tcp", "tls"):
            if _listed(service.get("spec", key)):
                yield Finding(
                    service,
                    ["spec", key],
                    f"a delegate VirtualService (one without hosts) cannot have `{key}`",
                    key=True,
                )
        return
    mesh = not _listed(gateways) or (isinstance(gateways, list) and MESH in gateways)
    for number, (path, host) in enumerate(hosts):
        if mesh and host.strip() == "*":
            yield Finding(service, path, "a VirtualService bound to the mesh cannot have host *")
            continue
        earlier = next((h for _, h in hosts[:number] if hosts_match(h, host)), None)
        if earlier is not None and host.strip():
            yield Finding(
                service, path, f"host {host!r} duplicates host {earlier!r} of this VirtualService"
            )


def _http_route(
    service: Resource, path: list[str | int], route: dict[str, Any]
) -> Iterator[Finding]:
    routes = _listed(route.get("route"))
    if "delegate" in route:
        # The delegate's routes take the requests: a route of its own would be ignored.
        if routes:
            yield _at(service, path, "route", "a route that delegates cannot have `route`")
        if "redirect" in route:
            yield _at(service, path, "redirect", "a route that delegates cannot have `redirect`")
    elif "redirect" in route:
        if routes:
            yield _at(service, path, "redirect", "an HTTP route cannot both redirect and route")
        for key in ("fault", "rewrite", "directResponse"):
            if key in route:
                yield _at(service, path, key, f"an HTTP route cannot both redirect and `{key}`")
        redirect = route.get("redirect")
        if isinstance(redirect, dict) and not any(k in redirect for k in REDIRECTS):
            yield _at(
                service,
                path,
                "redirect",
                "redirect changes nothing: set uri, authority, scheme, port or derivePort",
            )
    elif "directResponse" in route:
        if routes:
            yield _at(
                service, path, "directResponse", "an HTTP route cannot both respond and route"
            )
        for key in ("fault", "rewrite"):
            if key in route:
                yield _at(service, path, key, f"an HTTP route cannot both respond and `{key}`")
    elif _absent(route.get("route")):
        yield _at(
            service,
            path,
            "route",
            "HTTP route has no route, redirect, directResponse or delegate: it sends requests "
            "nowhere",
        )
    if "mirror" in route and "mirrors" in route:
        yield _at(service, path, "mirrors", "an HTTP route cannot have both mirror and mirrors")
    rewrite = route.get("rewrite")
    if isinstance(rewrite, dict):
        yield from _rewrite(service, [*path, "rewrite"], rewrite)
    retries = route.get("retries")
    if isinstance(retries, dict) and retries.get("attempts") == 0:
        extra = [k for k in ("perTryTimeout", "retryOn", "retryRemoteLocalities") if k in retries]
        if extra:
            yield Finding(
                service,
                [*path, "retries", extra[0]],
                f"retries with attempts: 0 are off, so `{extra[0]}` cannot be set",
                key=True,
            )


def _rewrite(
    service: Resource, path: list[str | int], rewrite: dict[str, Any]
) -> Iterator[Finding]:
    uri, regex = rewrite.get("uri"), rewrite.get("uriRegexRewrite")
    if uri and regex is not None:
        yield Finding(
            service,
            [*path, "uriRegexRewrite"],
            "a rewrite sets the path with uri or uriRegexRewrite, not both",
            key=True,
        )
    if not uri and regex is None and not rewrite.get("authority"):
        yield Finding(
            service,
            path,
            "rewrite changes nothing: set uri, uriRegexRewrite or authority",
            key=True,
        )
    if isinstance(regex, dict) and not (regex.get("match") and regex.get("rewrite")):
        yield Finding(
            service,
            [*path, "uriRegexRewrite"],
            "uriRegexRewrite needs both `match` and `rewrite`",
            key=True,
        )


def _tls_route(
    service: Resource, path: list[str | int], route: dict[str, Any]
) -> Iterator[Finding]:
    if _absent(route.get("match")):
        yield _at(service, path, "match", "TLS route has no match")
        return
    hosts = [h for _, h in items(service, "spec", "hosts") if isinstance(h, str)]
    for at, match in items(service, *path, "match"):
        if not isinstance(match, dict):
            continue
        if _absent(match.get("sniHosts")):
            yield _at(service, at, "sniHosts", "TLS match has no sniHosts")
            continue
        for where, name in items(service, *at, "sniHosts"):
            if isinstance(name, str) and hosts and not any(_subset_of(name, h) for h in hosts):
                yield Finding(
                    service,
                    where,
                    f"SNI host {name!r} is not covered by a host of the VirtualService "
                    f"({', '.join(hosts)})",
                )


def _subset_of(name: str, host: str) -> bool:
    """Istio's host.Name.SubsetOf: `name` is `host`, or within `host`'s wildcard."""
    name, host = name.strip().lower(), host.strip().lower()
    if host == "*" or name == host:
        return True
    if host.startswith("*"):
        return name.endswith(host[1:])
    return False


def _destinations(service: Resource) -> Iterator[Finding]:
    found: list[tuple[list[str | int], object]] = []
    for protocol in ("http", "tcp", "tls"):
        for path, route in items(service, "spec", protocol):
            if not isinstance(route, dict):
                continue
            for at, entry in items(service, *path, "route"):
                if isinstance(entry, dict):
                    found.append(([*at, "destination"], entry.get("destination")))
            if protocol == "http":
                found.append(([*path, "mirror"], route.get("mirror")))
                for at, mirror in items(service, *path, "mirrors"):
                    if isinstance(mirror, dict):
                        found.append(([*at, "destination"], mirror.get("destination")))
    for path, destination in found:
        if not isinstance(destination, dict):
            continue
        host, subset = destination.get("host"), destination.get("subset")
        if isinstance(host, str) and host.strip() in ("", "*"):
            yield Finding(service, [*path, "host"], f"destination host {host!r} is not a host")
        if isinstance(subset, str) and subset and not is_dns_label(subset):
            yield Finding(
                service,
                [*path, "subset"],
                f"subset name {subset!r} is not a DNS label (lower-case letters, digits, '-')",
            )


# Gateway and DestinationRule -----------------------------------------------------------------


def _gateway(gateway: Resource) -> Iterator[Finding]:
    servers = list(items(gateway, "spec", "servers"))
    if not servers:
        yield Finding(gateway, ["spec", "servers"], "Gateway has no servers", key=True)
    names: dict[str, list[str | int]] = {}
    for path, server in servers:
        if not isinstance(server, dict):
            continue
        if server.get("hosts") == []:
            yield _at(gateway, path, "hosts", "Gateway server has no hosts")
        port = server.get("port")
        if not isinstance(port, dict):
            continue
        if port.get("targetPort"):
            yield Finding(
                gateway,
                [*path, "port", "targetPort"],
                "targetPort has no effect on a Gateway server: Istio refuses it",
            )
        name = port.get("name")
        if isinstance(name, str):
            if name in names:
                line = gateway.location([*names[name], "port", "name"]).line
                yield Finding(
                    gateway,
                    [*path, "port", "name"],
                    f"port name {name!r} is already used by the server at line {line}",
                )
            names.setdefault(name, path)
        protocol = port.get("protocol")
        if (
            isinstance(protocol, str)
            and protocol.upper() in TLS_PROTOCOLS
            and not server.get("tls")
        ):
            yield Finding(
                gateway,
                [*path, "port", "protocol"],
                f"a server with protocol {protocol} needs `tls` settings (mode and certificate)",
            )


def _destination_rule(rule: Resource) -> Iterator[Finding]:
    seen: set[str] = set()
    for path, subset in items(rule, "spec", "subsets"):
        name = subset.get("name") if isinstance(subset, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            yield Finding(rule, [*path, "name"], f"subset {name!r} is defined twice")
        elif not is_dns_label(name):
            yield Finding(
                rule,
                [*path, "name"],
                f"subset name {name!r} is not a DNS label (lower-case letters, digits, '-')",
            )
        seen.add(name)


def _listed(value: object) -> bool:
    return isinstance(value, list) and bool(value)


def _absent(value: object) -> bool:
    """Missing or empty: what another type is, the schema says."""
    return value is None or value == []


def _at(resource: Resource, path: list[str | int], key: str, message: str) -> Finding:
    """A finding at `key` of the mapping at `path`, or at the mapping when the key is absent."""
    if resource.get(*path, key) is None:
        return Finding(resource, path, message)
    return Finding(resource, [*path, key], message, key=True)
