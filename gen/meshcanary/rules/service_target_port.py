"""Each Service port's `targetPort` is a port the selected pods declare.

A Service forwards to `targetPort` on its pods (by number, or by the name of a
`containerPort`; without `targetPort`, to the same number as `port`). When no container
listens there, connections are refused and Istio reports 503s for every version at once; a
port *name* that no container declares leaves the Service without endpoints. The article
this project started from has exactly this: `targetPort: 9090` in front of a container
listening on 19090.

The port must match a `containerPort` (number) or a port `name` of a container (or a
native sidecar: an initContainer with `restartPolicy: Always`) of some workload whose pods the
Service selects: a Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Pod
or Argo Rollout. Services that select no workload in scope are skipped. Unlike Kubernetes, a
numeric `targetPort` must be declared as a `containerPort`: the API server lets a container
listen on a port it does not list, but then the manifests no longer say where traffic goes,
and meshcanary cannot check it.

Istio: none; istioctl analyze does not compare Services with the ports of their pods.

Fix: set `targetPort` to the container's port number or name (or declare the port the
container really listens on).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, describe, labels, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import Workload, Workloads, container_ports, owners

ID = "service-target-port"
SEVERITY = Severity.ERROR
SUMMARY = "each Service targetPort matches a containerPort of the pods it selects"
HINT = "set targetPort to a containerPort number or port name of the selected containers"
ISTIO_CODES: tuple[str, ...] = ()


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, CORE, "Service")
    if not services:
        return
    workloads = Workloads.of(scope)
    for service in services:
        selector = labels(service.get("spec", "selector"))
        ports = service.get("spec", "ports")
        if not selector or not isinstance(ports, list):
            continue
        selected = workloads.select(namespace_of(service), [selector])
        if not selected:
            continue
        numbers, names = _container_ports(selected)
        for index, port in enumerate(ports):
            if not isinstance(port, dict):
                continue
            field = "targetPort" if port.get("targetPort") is not None else "port"
            target = port.get(field)
            if isinstance(target, str) and target.isdigit():
                target = int(target)
            if isinstance(target, bool) or not isinstance(target, int | str):
                continue
            if target in (numbers if isinstance(target, int) else names):
                continue
            yield Finding(
                service,
                ["spec", "ports", index, field],
                _message(target, field, selected),
            )


def _message(target: int | str, field: str, selected: list[Workload]) -> str:
    # One entry per workload: a Deployment dumped with its Pods is shown once.
    shown = [
        next((w for w in selected if w.owner == owner and describe(w.resource) == owner), None)
        or next(w for w in selected if w.owner == owner)
        for owner in owners(selected)
    ]
    declared = ", ".join(
        f"{w.resource.name or 'unnamed'}: {_describe_ports(w.resource) or 'none'}"
        for w in shown[:3]
    )
    kinds = {w.owner.partition(" ")[0] for w in shown}
    noun = "Deployments" if kinds == {"Deployment"} else "workloads"
    what = "port name" if isinstance(target, str) else "containerPort"
    named = f"targetPort {target}" if field == "targetPort" else f"port {target} (no targetPort)"
    return f"{named} matches no {what} of the {noun} this Service selects ({declared})"


def _container_ports(workloads: list[Workload]) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for workload in workloads:
        for number, name in container_ports(workload.resource):
            if number is not None:
                numbers.add(number)
            if name is not None:
                names.add(name)
    return numbers, names


def _describe_ports(workload: Resource) -> str:
    return ", ".join(
        f"{number}/{name}" if name else str(number)
        for number, name in container_ports(workload)
        if number is not None
    )
