"""Gateway API objects of a release whose routing is `gateway-api`: its routes, with weighted
`backendRefs` to one Service per version, the DestinationRules that carry an Istio
`trafficPolicy` to those Services, and the environment's Gateways as gateway.networking.k8s.io
Gateways. Each with where its fields were decided (render/provenance.py).

A VirtualService takes its routes in order; the Gateway API orders the matches of every rule
by how specific they are (an exact path first, then the longest prefix, a method, the most
headers, the most query parameters) and only then by order. A pin ahead of a more specific
condition of the weighted route therefore also gets that condition with its own (`_pinned`),
so that the requests Istio would send to the pin go to the pin here too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from meshcanary.errors import InputError
from meshcanary.problem import Problem
from meshcanary.release import durations
from meshcanary.release.model import (
    MESH,
    Condition,
    Environment,
    Gateway,
    HeaderMatch,
    HeaderOperations,
    Port,
    QueryMatch,
    Release,
    RouteOptions,
)
from meshcanary.release.routing import re2_escape
from meshcanary.render.base import Base
from meshcanary.render.istio import fqdn, option_written
from meshcanary.render.provenance import Generated, Recorder

API_VERSION = "gateway.networking.k8s.io/v1"
Path = list[str | int]
# A Gateway API name of a rule or a listener (SectionName): a DNS subdomain.
_SECTION_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH_TYPES = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}
_MATCH_TYPES = {"exact": "Exact", "regex": "RegularExpression"}


def version_service(base: Base, version: str) -> str:
    """The Service of one version: the base's, with the version folder's name suffix."""
    return f"{base.service}-{version}"


@dataclass(frozen=True)
class _Ports:
    """The ports a release routes: each the Service port callers use and the one it sends to."""

    number: int | None  # None: the Service's only port, not named on the parent
    target: int
    protocol: str
    port: Port | None  # the release's entry, for where it was decided


def _ports(release: Release, base: Base) -> list[_Ports]:
    if release.ports:
        return [_Ports(p.number, p.target, p.protocol, p) for p in release.ports]
    numbers = [number for _, number, _ in base.service_ports]
    if len(numbers) != 1:
        raise InputError(
            [
                Problem(
                    release.source.location(["service"]),
                    f"the Service of base {base.path} has {len(numbers)} ports; a Gateway API "
                    "backendRef names one",
                    "list the ports to route under ports: in the release file",
                )
            ]
        )
    return [_Ports(None, numbers[0], "http", None)]


def _route_parents(release: Release) -> list[tuple[str, list[str]]]:
    """(route name, gateways) of each route: one bound to the Service itself for in-mesh
    callers (GAMMA routes by the Service, not by hostnames), one bound to the Gateways."""
    gateways = [g for g in release.gateways if g != MESH]
    found: list[tuple[str, list[str]]] = []
    if MESH in release.gateways:
        found.append((release.service, [MESH]))
    if gateways:
        found.append((f"{release.service}-gateways", gateways))
    return found


def _parent(gateway: str, base: Base, port: int | None) -> dict[str, Any]:
    if gateway == MESH:
        parent: dict[str, Any] = {"group": "", "kind": "Service", "name": base.service}
    else:
        namespace, _, name = gateway.rpartition("/")
        parent = {"name": name}
        if namespace:
            parent["namespace"] = namespace
    if port is not None:
        parent["port"] = port
    return parent


def _named(matches: Sequence[HeaderMatch | QueryMatch]) -> list[dict[str, str]]:
    """Header or query parameter matches; a prefix is a regular expression from the start."""
    found = []
    for match in matches:
        name = match.header if isinstance(match, HeaderMatch) else match.param
        if match.kind == "prefix":
            found.append(
                {"name": name, "type": "RegularExpression", "value": "^" + re2_escape(match.value)}
            )
        else:
            found.append({"name": name, "type": _MATCH_TYPES[match.kind], "value": match.value})
    return found


def _match(condition: Condition) -> dict[str, Any]:
    """One HTTPRouteMatch for a condition (load.py refused what has none)."""
    match: dict[str, Any] = {}
    if condition.uri is not None:
        match["path"] = {"type": _PATH_TYPES[condition.uri.kind], "value": condition.uri.value}
    if condition.headers:
        match["headers"] = _named(condition.headers)
    if condition.query_params:
        match["queryParams"] = _named(condition.query_params)
    if condition.method is not None:
        match["method"] = condition.method.value
    return match


def grpc_method(path: str) -> dict[str, str]:
    """A gRPC method match from a path: /package.Service/Method, or /package.Service/ for
    every method of the service (load.py refused other paths)."""
    service, _, method = path.strip("/").partition("/")
    return {"service": service, "method": method} if method else {"service": service}


def _grpc_match(condition: Condition) -> dict[str, Any]:
    """One GRPCRouteMatch: the gRPC method from `uri`, and the headers."""
    match: dict[str, Any] = {}
    if condition.uri is not None:
        match["method"] = {"type": "Exact", **grpc_method(condition.uri.value)}
    if condition.headers:
        match["headers"] = _named(condition.headers)
    return match


def rank(condition: Condition, grpc: bool = False) -> tuple[int, ...]:
    """How the Gateway API orders a match against others: higher first."""
    uri = condition.uri
    if grpc:  # the characters of the service, then of the method, then the headers
        method = grpc_method(uri.value) if uri is not None else {}
        return (
            len(method.get("service", "")),
            len(method.get("method", "")),
            len(condition.headers),
        )
    path = (0, 0)  # no path: PathPrefix "/"; a regular expression is left to the implementation
    if uri is not None and uri.kind == "exact":
        path = (2, len(uri.value))
    elif uri is not None and uri.kind == "prefix":
        path = (1, len(uri.value.rstrip("/")))
    return (
        *path,
        condition.method is not None,
        len(condition.headers),
        len(condition.query_params),
    )


def _both(first: Condition, second: Condition) -> Condition | None:
    """The requests meeting both conditions, as one condition; None when no request does (two
    methods). ValueError, naming the field, when one HTTPRouteMatch cannot hold both: two paths,
    or two conditions on one header or query parameter (the first entry of a name counts)."""
    joined: dict[str, Any] = {}
    for field in ("uri", "method"):
        mine, theirs = getattr(first, field), getattr(second, field)
        if mine is not None and theirs is not None and mine != theirs:
            if field == "uri":
                raise ValueError(field)
            return None
        joined[field] = mine if mine is not None else theirs
    headers = {h.header: h for h in second.headers}
    for header in first.headers:
        if headers.setdefault(header.header, header) != header:
            raise ValueError(f"headers.{header.header}")
    queries = {q.param: q for q in second.query_params}
    for query in first.query_params:
        if queries.setdefault(query.param, query) != query:
            raise ValueError(f"queryParams.{query.param}")
    return Condition(
        uri=joined["uri"],
        method=joined["method"],
        authority=None,
        headers=tuple(sorted(headers.values(), key=lambda h: h.header)),
        query_params=tuple(sorted(queries.values(), key=lambda q: q.param)),
    )


def _pinned(release: Release, index: int, grpc: bool) -> list[Condition]:
    """A pin's condition, and with it each later condition (of a later pin or of the weighted
    route) that the Gateway API would put ahead of it: Istio sends the requests meeting both
    to the pin, which comes first."""
    own = release.matches[index].condition
    later = [m.condition for m in release.matches[index + 1 :]] + list(release.requests)
    found = [own]
    for other in later:
        if rank(other, grpc) <= rank(own, grpc):
            continue  # not ahead of the pin: equal ranks keep the rules' order
        try:
            both = _both(own, other)
        except ValueError as exc:
            raise InputError(
                [
                    Problem(
                        release.source.location(["match", index]),
                        f"this pin and a later condition both set {exc.args[0]}: the Gateway "
                        "API orders matches by how specific they are, and one match cannot "
                        "hold both to keep the pin first",
                        "make the pin at least as specific as the conditions after it, or "
                        "keep this release on routing: istio",
                    )
                ]
            ) from None
        if both is not None and both not in found:
            found.append(both)
    return found


def _operations(operations: HeaderOperations) -> dict[str, Any]:
    written: dict[str, Any] = {}
    if operations.set:
        written["set"] = [{"name": name, "value": value} for name, value in operations.set]
    if operations.add:
        written["add"] = [{"name": name, "value": value} for name, value in operations.add]
    if operations.remove:
        written["remove"] = list(operations.remove)
    return written


def _filters(
    options: RouteOptions, conditions: Sequence[Condition]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The filters for a rule's options, and the release keys that decided each."""
    filters: list[dict[str, Any]] = []
    decided: list[str] = []
    for key, kind, operations in (
        ("requestHeaders", "RequestHeaderModifier", options.request_headers),
        ("responseHeaders", "ResponseHeaderModifier", options.response_headers),
    ):
        if operations is not None:
            field = kind[0].lower() + kind[1:]
            filters.append({"type": kind, field: _operations(operations)})
            decided.append(key)
    rewrite = options.rewrite
    if rewrite is not None and (rewrite.uri is not None or rewrite.authority is not None):
        written: dict[str, Any] = {}
        if rewrite.authority is not None:
            written["hostname"] = rewrite.authority
        if rewrite.uri is not None:
            # Istio replaces the matched prefix of a prefix match, else the whole path.
            prefixes = [c for c in conditions if c.uri is not None and c.uri.kind == "prefix"]
            if len(conditions) == 1 and prefixes:
                written["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite.uri}
            else:
                written["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rewrite.uri}
        filters.append({"type": "URLRewrite", "urlRewrite": written})
        decided.append("rewrite")
    if options.cors is not None:
        filters.append({"type": "CORS", "cors": cors(options.cors)})
        decided.append("corsPolicy")
    return filters, decided


def cors(policy: Any) -> dict[str, Any]:
    """Istio's CorsPolicy as the Gateway API's CORS filter (load.py refused what it has not)."""
    written: dict[str, Any] = {}
    if "allowOrigins" in policy:
        written["allowOrigins"] = [origin["exact"] for origin in policy["allowOrigins"]]
    for key in ("allowMethods", "allowHeaders", "exposeHeaders"):
        if key in policy:
            written[key] = list(policy[key])
    if "allowCredentials" in policy:
        written["allowCredentials"] = bool(policy["allowCredentials"])
    if "maxAge" in policy:
        written["maxAge"] = seconds(str(policy["maxAge"]))
    return written


def seconds(duration: str) -> int:
    """A Go duration such as 24h or 1m30s, in whole seconds (load.py refused what is not)."""
    return int(durations.seconds(duration))


class _Routes:
    """One release's routes as they are built, and where each part was decided."""

    def __init__(self, release: Release, base: Base, recorder: Recorder, grpc: bool) -> None:
        self.release = release
        self.base = base
        self.recorder = recorder
        self.grpc = grpc
        self.match = _grpc_match if grpc else _match

    def port_at(self, port: _Ports, at: Path) -> None:
        """Record a port field as the release's `ports` entry's (else the base's)."""
        if port.port is not None:
            self.recorder.add(at, ["ports", self.release.ports.index(port.port)])

    def backend(
        self, at: Path, version: str, port: _Ports, weight: int | None, named: Path | None = None
    ) -> dict[str, Any]:
        """A backendRef to `version`'s Service; `named`: the key that chose the version (a pin's
        `version`), else the version's own key under `versions`."""
        if named is None:
            self.recorder.add([*at, "name"], ["versions", version], key=True)
        else:
            self.recorder.add([*at, "name"], named)
        self.port_at(port, [*at, "port"])
        ref: dict[str, Any] = {"name": version_service(self.base, version), "port": port.target}
        if weight is not None:
            ref["weight"] = weight
            self.recorder.add([*at, "weight"], ["versions", version, "weight"])
        return ref

    def options(
        self, at: Path, rule: dict[str, Any], pin: int | None, conditions: Sequence[Condition]
    ) -> None:
        release = self.release
        merged = release.route_options(release.matches[pin] if pin is not None else None)

        def decided(key: str, field: str) -> Path:
            return option_written(release, pin, key, field)

        filters, keys = _filters(merged, conditions)
        if filters:
            rule.setdefault("filters", []).extend(filters)
            fields = {
                "requestHeaders": "request_headers",
                "responseHeaders": "response_headers",
                "rewrite": "rewrite",
                "corsPolicy": "cors",
            }
            start = len(rule["filters"]) - len(filters)
            for offset, key in enumerate(keys):
                self.recorder.add(
                    [*at, "filters", start + offset], decided(key, fields[key]), verbatim=True
                )
        if merged.timeout:
            rule["timeouts"] = {"request": merged.timeout}
            self.recorder.add([*at, "timeouts", "request"], decided("timeout", "timeout"))

    def pin(self, at: Path, index: int, port: _Ports) -> dict[str, Any]:
        release = self.release
        pinned = release.matches[index]
        written: Path = ["match", index]
        self.recorder.add(at, written)
        conditions = _pinned(release, index, self.grpc)
        rule: dict[str, Any] = {}
        if _SECTION_NAME.match(pinned.name):
            rule["name"] = pinned.name
        rule["matches"] = [self.match(c) for c in conditions]
        self.recorder.add([*at, "matches"], written)
        self.recorder.add([*at, "backendRefs"], [*written, "version"])
        rule["backendRefs"] = [
            self.backend([*at, "backendRefs", 0], pinned.version, port, None, [*written, "version"])
        ]
        self.options(at, rule, index, conditions)
        return rule

    def weighted(self, at: Path, port: _Ports) -> dict[str, Any]:
        release = self.release
        self.recorder.add(at, ["versions"], key=True)
        rule: dict[str, Any] = {"name": "weighted"}
        if release.requests:
            self.recorder.add([*at, "matches"], ["requests"])
            rule["matches"] = [self.match(c) for c in release.requests]
        rule["backendRefs"] = [
            self.backend([*at, "backendRefs", index], v.name, port, v.weight)
            for index, v in enumerate(release.versions)
        ]
        if release.mirror is not None:
            mirror = release.mirror
            share = Fraction(str(mirror.percent))
            target: dict[str, Any] = {
                "backendRef": {
                    "name": version_service(self.base, mirror.version),
                    "port": port.target,
                }
            }
            if share.denominator == 1:
                target["percent"] = int(share)
            else:
                fraction = share / 100
                target["fraction"] = {
                    "numerator": fraction.numerator,
                    "denominator": fraction.denominator,
                }
            rule["filters"] = [{"type": "RequestMirror", "requestMirror": target}]
            self.recorder.add([*at, "filters", 0], ["mirror"])
            self.recorder.add(
                [*at, "filters", 0, "requestMirror", "backendRef", "name"], ["mirror", "version"]
            )
            self.port_at(port, [*at, "filters", 0, "requestMirror", "backendRef", "port"])
        self.options(at, rule, None, release.requests)
        return rule

    def transport(self, at: Path, port: _Ports) -> dict[str, Any]:
        self.recorder.add(at, ["versions"], key=True)
        return {
            "backendRefs": [
                self.backend([*at, "backendRefs", index], v.name, port, v.weight)
                for index, v in enumerate(self.release.versions)
            ]
        }


_KINDS = {"http": "HTTPRoute", "grpc": "GRPCRoute", "tcp": "TCPRoute", "tls": "TLSRoute"}


def routes(release: Release, base: Base, hosts: tuple[str, ...]) -> list[Generated]:
    """The release's routes: per port, one bound to the Service for in-mesh callers and one
    bound to its Gateways; pins first, then the weighted rule."""
    found: list[Generated] = []
    ports = _ports(release, base)
    for name, gateways in _route_parents(release):
        for port in ports:
            recorder = Recorder(release.source)
            environment = release.environment
            recorder.add(["metadata", "namespace"], ["namespace"], source=environment.source)
            build = _Routes(release, base, recorder, port.protocol == "grpc")
            suffix = f"-{port.number}" if len(ports) > 1 and port.number is not None else ""
            recorder.add(["metadata", "name"], ["service"])
            if suffix:
                build.port_at(port, ["metadata", "name"])
            parents = [_parent(g, base, port.number) for g in gateways]
            recorder.add(
                ["spec", "parentRefs"],
                ["gateways"] if "gateways" in release.source.data else ["service"],
            )
            for index in range(len(parents)):
                build.port_at(port, ["spec", "parentRefs", index, "port"])
            spec: dict[str, Any] = {"parentRefs": parents}
            if port.protocol in ("http", "grpc"):
                if gateways != [MESH] and hosts != ("*",):
                    spec["hostnames"] = list(hosts)
                    recorder.add(
                        ["spec", "hostnames"],
                        ["hosts"] if "hosts" in release.source.data else ["base"],
                        verbatim="hosts" in release.source.data,
                    )
                rules = [
                    build.pin(["spec", "rules", i], i, port) for i in range(len(release.matches))
                ]
                rules.append(build.weighted(["spec", "rules", len(rules)], port))
            else:
                if port.protocol == "tls":
                    spec["hostnames"] = list(
                        port.port.sni_hosts if port.port and port.port.sni_hosts else hosts
                    )
                rules = [build.transport(["spec", "rules", 0], port)]
            spec["rules"] = rules
            body = {
                "apiVersion": API_VERSION,
                "kind": _KINDS[port.protocol],
                "metadata": {"name": f"{name}{suffix}"},
                "spec": spec,
            }
            found.append(Generated(body, recorder.origins([])))
    return found


def destination_rules(release: Release, base: Base) -> list[Generated]:
    """A release's `trafficPolicy`, for Istio, on each version's Service: a route to a
    version's Service reaches it through that Service's host."""
    if release.traffic_policy is None:
        return []
    environment = release.environment
    found = []
    for version in release.versions:
        name = version_service(base, version.name)
        recorder = Recorder(release.source)
        recorder.add(["metadata", "namespace"], ["namespace"], source=environment.source)
        if "istioApiVersion" in environment.source.data:
            recorder.add(["apiVersion"], ["istioApiVersion"], source=environment.source)
        recorder.add(["metadata", "name"], ["versions", version.name], key=True)
        recorder.add(["spec", "host"], ["versions", version.name], key=True)
        recorder.add(["spec", "trafficPolicy"], ["trafficPolicy"], verbatim=True)
        body = {
            "apiVersion": environment.istio_api_version,
            "kind": "DestinationRule",
            "metadata": {"name": name},
            "spec": {
                "host": fqdn(name, environment.namespace),
                "trafficPolicy": release.traffic_policy,
            },
        }
        found.append(Generated(body, recorder.origins(["trafficPolicy"])))
    return found


# Istio server protocols and the listener protocol each is in the Gateway API.
_LISTENER_PROTOCOLS = {
    "HTTP": "HTTP",
    "HTTP2": "HTTP",
    "GRPC": "HTTP",
    "HTTPS": "HTTPS",
    "TLS": "TLS",
    "TCP": "TCP",
}
# The keys of an Istio server's `tls` a listener has a place for.
_TLS_KEYS = {"mode", "credentialName"}
_SERVER_KEYS = {"port", "hosts", "tls", "name"}


def gateway(environment: Environment, declared: Gateway) -> Generated:
    """An environment's gateway as a Gateway API Gateway: a listener per server and host."""
    recorder = Recorder(environment.source)
    written: Path = ["gateways", declared.name]
    recorder.add(["metadata", "namespace"], ["namespace"])
    recorder.add(["metadata", "name"], written, key=True)
    recorder.add(
        ["spec", "gatewayClassName"],
        ["gatewayClassName"] if "gatewayClassName" in environment.source.data else written,
        key="gatewayClassName" not in environment.source.data,
    )
    problems: list[Problem] = []
    listeners: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, server in enumerate(declared.servers):
        at: Path = [*written, "servers", index]
        listeners += _listeners(environment, server, at, names, problems)
    if problems:
        raise InputError(problems)
    # Each listener is a server's, but not copied as written: the servers as a whole.
    recorder.add(["spec", "listeners"], [*written, "servers"])
    body = {
        "apiVersion": API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": declared.name},
        "spec": {"gatewayClassName": environment.gateway_class, "listeners": listeners},
    }
    return Generated(body, recorder.origins(written, key=True))


def _listeners(
    environment: Environment,
    server: dict[str, Any],
    at: Path,
    names: set[str],
    problems: list[Problem],
) -> list[dict[str, Any]]:
    where = environment.source.location
    hint = "keep the releases bound to this gateway on routing: istio"
    for key in sorted(set(server) - _SERVER_KEYS):
        problems.append(
            Problem(
                where([*at, key], key=True),
                f"{key}: a Gateway API listener has no such field",
                hint,
            )
        )
    port = server["port"]
    protocol = _LISTENER_PROTOCOLS.get(str(port.get("protocol", "")).upper())
    if protocol is None:
        problems.append(
            Problem(
                where([*at, "port", "protocol"]),
                f"protocol {port.get('protocol')}: a Gateway API listener is HTTP, HTTPS, TLS or TCP",
                hint,
            )
        )
        return []
    tls = server.get("tls") or {}
    for key in sorted(set(tls) - _TLS_KEYS):
        problems.append(
            Problem(
                where([*at, "tls", key], key=True),
                f"tls.{key}: a Gateway API listener has no such field",
                hint,
            )
        )
    mode = tls.get("mode", "SIMPLE" if protocol == "HTTPS" else None)
    listener_tls: dict[str, Any] | None = None
    if mode == "PASSTHROUGH":
        listener_tls = {"mode": "Passthrough"}
        protocol = "TLS"
    elif mode == "SIMPLE":
        listener_tls = {"mode": "Terminate"}
        if "credentialName" in tls:
            listener_tls["certificateRefs"] = [{"name": tls["credentialName"]}]
    elif mode is not None:
        problems.append(
            Problem(
                where([*at, "tls", "mode"]),
                f"tls mode {mode}: a Gateway API listener terminates (SIMPLE) or passes TLS through (PASSTHROUGH)",
                hint,
            )
        )
        return []
    base_name = str(port.get("name") or f"port-{port['number']}").lower()
    if not _SECTION_NAME.match(base_name):
        base_name = f"port-{port['number']}"
    found = []
    hosts = list(server.get("hosts") or ["*"])
    for index, host in enumerate(hosts):
        namespace, _, name = str(host).rpartition("/")
        if namespace not in ("", ".", "*", environment.namespace):
            problems.append(
                Problem(
                    where([*at, "hosts", index]),
                    f'host "{host}": a listener cannot narrow routes to namespace {namespace} by host',
                    hint,
                )
            )
            continue
        listener_name = base_name if len(hosts) == 1 else f"{base_name}-{index}"
        while listener_name in names:
            listener_name = f"{listener_name}-{len(names)}"
        names.add(listener_name)
        listener: dict[str, Any] = {
            "name": listener_name,
            "port": port["number"],
            "protocol": protocol,
        }
        if name != "*":
            listener["hostname"] = name
        if listener_tls is not None:
            listener["tls"] = listener_tls
        found.append(listener)
    return found
