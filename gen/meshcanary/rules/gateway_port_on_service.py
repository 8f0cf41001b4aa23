"""Each port a Gateway's servers use is a port of the Service in front of its gateway pods.

A Gateway server listens on `port.number` in the gateway pods, but clients reach those pods
through the Service that selects them (the `istio-ingressgateway` LoadBalancer). A server on a
port the Service does not expose is unreachable from outside: its hosts time out although
Istio accepted the Gateway.

The gateway pods are the workloads of the input the Gateway's `selector` picks (in any
namespace); the Services are those of the input that select them, in their namespace. A
server port counts as exposed when it is a TCP port of one of these Services, as `port` or as
`targetPort` (a named `targetPort` is read as the containerPort of that name): Istio
translates a Service port to its target port itself. When the input holds no such pods, or no
Service in front of them, nothing is checked: the ingress is installed elsewhere, or exposed
without a Service (host network, a NodePort managed by hand).

Istio: IST0162 GatewayPortNotDefinedOnService. The same check, except that istioctl matches
Pods only, so that offline, on manifests, it checks nothing.

Fix: use a port the ingress Service exposes (80 and 443, or their target ports 8080 and 8443,
on a default install), or add the port to the Service.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, ISTIO, items, labels, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import (
    Workload,
    Workloads,
    container_ports,
    gateway_selector,
    server_port,
    tcp_service_ports,
)

ID = "gateway-port-on-service"
SEVERITY = Severity.WARNING
SUMMARY = "a Gateway's server ports are ports of the Service in front of its gateway pods"
HINT = "use a port the ingress Service exposes, or add this port to that Service"
RELEASE_HINT = (
    "in the gateway's `servers:` in environment.yaml, use a port the ingress Service exposes"
)
ISTIO_CODES = ("IST0162",)


def check(scope: Scope) -> Iterator[Finding]:
    gateways = of_kind(scope, ISTIO, "Gateway")
    if not gateways:
        return
    workloads = Workloads.of(scope)
    fronts = _fronting(scope, workloads)
    for gateway in gateways:
        selector = gateway_selector(gateway)
        pods = workloads.select(None, [selector]) if selector else []
        # The Services in front of the gateway pods, each with the pods it fronts.
        fronting: dict[int, tuple[Resource, list[Workload]]] = {}
        for pod in pods:
            for service in fronts.get(id(pod), []):
                fronting.setdefault(id(service), (service, []))[1].append(pod)
        if not fronting:
            continue
        exposed: dict[int, str] = {}
        for service, picked in fronting.values():
            exposed.update(_exposed(service, picked))
        names = ", ".join(sorted(f"{namespace_of(s)}/{s.name}" for s, _ in fronting.values()))
        listed = ", ".join(dict.fromkeys(exposed[n] for n in sorted(exposed))) or "none"
        for path, server in items(gateway, "spec", "servers"):
            number = server_port(server) if isinstance(server, dict) else None
            if number is None or number in exposed:
                continue
            yield Finding(
                gateway,
                [*path, "port", "number"],
                f"port {number} is not a port of Service {names} in front of the gateway pods "
                f"(it exposes {listed})",
            )


def _fronting(scope: Scope, workloads: Workloads) -> dict[int, list[Resource]]:
    """id() of each workload → the Services of the input that select its pods."""
    found: dict[int, list[Resource]] = {}
    for service in of_kind(scope, CORE, "Service"):
        selector = labels(service.get("spec", "selector"))
        if not selector:
            continue
        for workload in workloads.select(namespace_of(service), [selector]):
            found.setdefault(id(workload), []).append(service)
    return found


def _exposed(service: Resource, pods: list[Workload]) -> dict[int, str]:
    """Gateway port numbers the Service reaches (its ports and target ports) → how it shows."""
    named = {n: c for p in pods for c, n in container_ports(p.resource) if c and n}
    found: dict[int, str] = {}
    for number, port in tcp_service_ports(service):
        target = port.get("targetPort")
        if isinstance(target, str):
            target = int(target) if target.isdigit() else named.get(target)
        retargeted = isinstance(target, int) and target != number
        shown = f"{number} (target {target})" if retargeted else str(number)
        found[number] = shown
        if isinstance(target, int) and not isinstance(target, bool):
            found.setdefault(target, shown)
    return found
