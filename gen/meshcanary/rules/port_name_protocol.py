"""Service port names tell Istio the protocol: `<protocol>` or `<protocol>-<suffix>`.

Istio picks how to proxy a port from its name (explicit protocol selection): the part before
the first `-` must be one of grpc, grpc-web, http, http2, https, mongo, mysql, redis, tcp, tls
or udp (case does not matter). A port named otherwise (`web`, `api-http`) or not named at all
falls back to protocol sniffing, which cannot route server-first protocols and delays others;
for HTTP it also means that routes and weights meant for `http` may not apply as written.

A port with `appProtocol` set is skipped: Istio takes the protocol from that field instead of
the name. So are the platform's own Services, whose port names (`dns-tcp`, `status-port`,
`metrics`) are not yours to rename: those in the namespaces Istio's analyzer (`istioctl
analyze`, IST0118) calls system namespaces (kube-system, kube-public, kube-node-lease,
local-path-storage), those in istio-system, where the control plane lives, and those the
analyzer takes for the Istio control plane or its gateways wherever they run (an `istio` label,
or `release: istio`).

Istio: IST0118 PortNameIsNotUnderNamingConvention. The same check; meshcanary also skips
istio-system.

Fix: rename the port (`http`, `http-web`, `grpc-api`, …) or set `appProtocol`.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "port-name-protocol"
SEVERITY = Severity.WARNING
SUMMARY = "Service port names follow Istio's `<protocol>[-<suffix>]` convention"
HINT = (
    "name the port `<protocol>` or `<protocol>-<suffix>` with a protocol from grpc, grpc-web, "
    "http, http2, https, mongo, mysql, redis, tcp, tls, udp; or set appProtocol"
)
ISTIO_CODES = ("IST0118",)

# https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
# `grpc-web` is covered by its `grpc` prefix.
PROTOCOLS = frozenset(
    ("grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls", "udp")
)

# Istio's `util.IsSystemNamespace` (the namespaces its injector ignores), and istio-system, where
# the control plane lives.
SYSTEM_NAMESPACES = frozenset(
    ("kube-system", "kube-public", "kube-node-lease", "local-path-storage", "istio-system")
)


def check(scope: Scope) -> Iterator[Finding]:
    for service in of_kind(scope, CORE, "Service"):
        if namespace_of(service) in SYSTEM_NAMESPACES or _control_plane(service):
            continue
        ports = service.get("spec", "ports")
        if not isinstance(ports, list):
            continue
        for index, port in enumerate(ports):
            if not isinstance(port, dict):
                continue
            app_protocol = port.get("appProtocol")
            if isinstance(app_protocol, str) and app_protocol.strip():
                continue
            name = port.get("name")
            if not isinstance(name, str) or not name:
                yield Finding(
                    service,
                    ["spec", "ports", index],
                    f"port {port.get('port')} has no name, so Istio has to guess its protocol",
                )
                continue
            protocol = name.partition("-")[0].lower()
            if protocol not in PROTOCOLS:
                yield Finding(
                    service,
                    ["spec", "ports", index, "name"],
                    f"port name {name!r} does not start with a protocol Istio knows, so Istio "
                    "has to guess its protocol",
                )


def _control_plane(service: Resource) -> bool:
    """Istio's `util.IsIstioControlPlane`: an `istio` label, or `release: istio`."""
    labels = service.metadata.get("labels")
    return isinstance(labels, dict) and ("istio" in labels or labels.get("release") == "istio")
