"""Each Service port's `targetPort` is a port the selected pods declare.

A Service forwards to `targetPort` on its pods (by number, or by the name of a
`containerPort`; without `targetPort`, to the same number as `port`). When no container
listens there, connections are refused and Istio reports 503s for every version at once; a
port *name* that no container declares leaves the Service without endpoints. The article
this project started from has exactly this: `targetPort: 9090` in front of a container
listening on 19090.

The port must match a `containerPort` (number) or a port `name` of a container (or a
native sidecar: an initContainer with `restartPolicy: Always`) of some Deployment whose pod
template the Service selects. Services that select no Deployment in scope are skipped.
Unlike Kubernetes, a numeric `targetPort` must be declared as a `containerPort`: the API
server lets a container listen on a port it does not list, but then the manifests no longer
say where traffic goes, and meshcanary cannot check it.

Fix: set `targetPort` to the container's port number or name (or declare the port the
container really listens on).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CORE, Mesh, labels, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "service-target-port"
SEVERITY = Severity.ERROR
SUMMARY = "each Service targetPort matches a containerPort of the pods it selects"
HINT = "set targetPort to a containerPort number or port name of the selected containers"


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, CORE, "Service")
    if not services:
        return
    mesh = Mesh.of(scope)
    for service in services:
        selector = labels(service.get("spec", "selector"))
        ports = service.get("spec", "ports")
        if not selector or not isinstance(ports, list):
            continue
        selected = mesh.select(namespace_of(service), [selector])
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
            declared = ", ".join(
                f"{d.name or 'unnamed'}: {_describe_ports(d) or 'none'}" for d in selected[:3]
            )
            what = "port name" if isinstance(target, str) else "containerPort"
            shown = (
                f"targetPort {target}"
                if field == "targetPort"
                else f"port {target} (no targetPort)"
            )
            yield Finding(
                service,
                ["spec", "ports", index, field],
                f"{shown} matches no {what} of the Deployments this Service selects ({declared})",
            )


def _containers(deployment: Resource) -> Iterator[dict[str, object]]:
    spec = deployment.get("spec", "template", "spec")
    if not isinstance(spec, dict):
        return
    for field in ("containers", "initContainers"):
        listed = spec.get(field)
        if not isinstance(listed, list):
            continue
        for container in listed:
            if not isinstance(container, dict):
                continue
            # Only native sidecars among init containers keep serving.
            if field == "initContainers" and container.get("restartPolicy") != "Always":
                continue
            yield container


def _ports(deployment: Resource) -> Iterator[tuple[int | None, str | None]]:
    for container in _containers(deployment):
        listed = container.get("ports")
        if not isinstance(listed, list):
            continue
        for port in listed:
            if not isinstance(port, dict):
                continue
            number = port.get("containerPort")
            name = port.get("name")
            yield (
                number if isinstance(number, int) and not isinstance(number, bool) else None,
                name if isinstance(name, str) else None,
            )


def _container_ports(deployments: list[Resource]) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for deployment in deployments:
        for number, name in _ports(deployment):
            if number is not None:
                numbers.add(number)
            if name is not None:
                names.add(name)
    return numbers, names


def _describe_ports(deployment: Resource) -> str:
    return ", ".join(
        f"{number}/{name}" if name else str(number)
        for number, name in _ports(deployment)
        if number is not None
    )
