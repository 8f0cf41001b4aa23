"""Services that select the same pods agree on each pod port: one protocol, one service port.

The sidecar of a pod configures each port it receives traffic on once, from the Services that
select the pod. When two Services send to the same pod port with different protocols (one
port named `http`, the other `tcp`; or TCP and UDP), Istio can apply only one of them: the
other Service's traffic is parsed with the wrong protocol, which breaks HTTP routing or
telemetry for it. When they reach the same pod port through different service port numbers
(`80 → 8080` in one Service, `9090 → 8080` in another), Istio cannot tell which service port
the pod port belongs to.

For each workload of the input (a Deployment, StatefulSet, …; see
`subset-selects-one-deployment`), the Services of its namespace whose selector picks its pods
are compared, port by port. A port's pod port is its `targetPort` (a name is read as the
containerPort of that name; no `targetPort` is `port`). Its protocol is the Kubernetes
`protocol` (TCP by default) and, when its `appProtocol` or its name says one, the Istio
protocol, compared by family: http, http2, grpc and grpc-web are HTTP; https and tls are TLS;
tcp, mongo, mysql and redis are TCP. Only ports of two different Services are compared.
Workloads whose pods are not injected (`sidecar.istio.io/inject: "false"`) are skipped.

Istio: IST0116 DeploymentAssociatedToMultipleServices and IST0137
DeploymentConflictingPorts. Broader: istioctl compares the Kubernetes protocol only, of
Deployments only. Looser in one way: istioctl compares Service ports by their own number,
which does not conflict when the pod ports differ; meshcanary compares pod ports.

Fix: name (or set `appProtocol` of) the ports that reach one pod port alike in every Service,
and give them one service port number; or drop the extra Service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, labels, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import Workload, Workloads, container_ports, pod_template

ID = "workload-ports-agree"
SEVERITY = Severity.WARNING
SUMMARY = "Services selecting the same pods agree on each pod port's protocol and service port"
HINT = "give every Service port that reaches this pod port the same protocol and port number"
ISTIO_CODES = ("IST0116", "IST0137")

FAMILIES = {
    "http": "HTTP",
    "http2": "HTTP",
    "grpc": "HTTP",
    "grpc-web": "HTTP",
    "https": "TLS",
    "tls": "TLS",
    "tcp": "TCP",
    "mongo": "TCP",
    "mysql": "TCP",
    "redis": "TCP",
    "udp": "UDP",
    # Kubernetes' own appProtocol values.
    "kubernetes.io/h2c": "HTTP",
    "kubernetes.io/ws": "HTTP",
    "kubernetes.io/wss": "TLS",
}


@dataclass(frozen=True)
class ServicePort:
    """One entry of a Service's `spec.ports`, read for comparison."""

    service: Resource
    index: int
    number: int
    transport: str  # TCP, UDP, SCTP
    family: str | None  # HTTP, TLS, TCP, UDP; None when neither appProtocol nor name says

    @property
    def name(self) -> str:
        return f"{namespace_of(self.service)}/{self.service.name}"

    @property
    def protocol(self) -> str:
        if not self.family or self.family == self.transport:
            return self.transport
        return self.family if self.transport == "TCP" else f"{self.family} over {self.transport}"


def check(scope: Scope) -> Iterator[Finding]:
    services = [s for s in of_kind(scope, CORE, "Service") if labels(s.get("spec", "selector"))]
    if len(services) < 2:
        return
    workloads = Workloads.of(scope)
    # Owner → one of its workloads, and the Services that select its pods.
    selecting: dict[str, tuple[Workload, list[Resource]]] = {}
    for service in services:
        selector = labels(service.get("spec", "selector")) or {}
        for workload in workloads.select(namespace_of(service), [selector]):
            found = selecting.setdefault(workload.owner, (workload, []))[1]
            if service not in found:
                found.append(service)
    reported: dict[tuple[int, int], Finding] = {}
    for workload, chosen in selecting.values():
        if len(chosen) < 2 or not _injected(workload):
            continue
        by_pod_port: dict[int | str, list[ServicePort]] = defaultdict(list)
        for service in chosen:
            for port, target in _ports(service, workload):
                by_pod_port[target].append(port)
        for target, ports in by_pod_port.items():
            for port in ports:
                others = [p for p in ports if p.service is not port.service]
                message = _conflict(port, others, target, workload.owner)
                key = (id(port.service), port.index)
                if message and key not in reported:
                    reported[key] = Finding(port.service, ["spec", "ports", port.index], message)
    yield from reported.values()


def _conflict(port: ServicePort, others: list[ServicePort], target: int | str, owner: str) -> str:
    """Why `port` disagrees with the others reaching the same pod port; "" when it does not."""
    clash = [
        o
        for o in others
        if o.transport != port.transport or (o.family and port.family and o.family != port.family)
    ]
    if clash:
        shown = ", ".join(f"Service {o.name} sends {o.protocol} to" for o in clash)
        return (
            f"port {port.number} sends {port.protocol} to pod port {target} of {owner}, which "
            f"{shown}: a pod port has one protocol"
        )
    renumbered = [o for o in others if o.number != port.number]
    if renumbered:
        shown = ", ".join(f"Service {o.name} reaches as port {o.number}" for o in renumbered)
        return (
            f"port {port.number} reaches pod port {target} of {owner}, which {shown}: Istio "
            "needs one service port number per pod port"
        )
    return ""


def _injected(workload: Workload) -> bool:
    """Whether the pods get a sidecar: not when the pod opts out with `sidecar.istio.io/inject`."""
    template = pod_template(workload.resource) or {}
    metadata = template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    inject = annotations.get("sidecar.istio.io/inject") if isinstance(annotations, dict) else None
    if inject is None:
        inject = workload.labels.get("sidecar.istio.io/inject")
    return str(inject).lower() != "false"


def _ports(service: Resource, workload: Workload) -> Iterator[tuple[ServicePort, int | str]]:
    """Each port of the Service, and the pod port of `workload` it sends to."""
    named = {n: c for c, n in container_ports(workload.resource) if c and n}
    listed = service.get("spec", "ports")
    for index, port in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(port, dict):
            continue
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool):
            continue
        target = port.get("targetPort")
        if isinstance(target, str):
            target = int(target) if target.isdigit() else named.get(target, target)
        if not isinstance(target, int | str) or isinstance(target, bool):
            target = number
        transport = str(port.get("protocol") or "TCP").upper()
        yield ServicePort(service, index, number, transport, _family(port)), target


def _family(port: dict[str, object]) -> str | None:
    app = port.get("appProtocol")
    if isinstance(app, str) and app.strip():
        return FAMILIES.get(app.strip().lower())
    name = port.get("name")
    if isinstance(name, str) and name:
        return FAMILIES.get(name.partition("-")[0].lower()) or FAMILIES.get(name.lower())
    return None
