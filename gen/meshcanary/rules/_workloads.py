"""Workloads (the objects that run pods) and Istio gateways' servers, read once for the rules.

`Workloads` indexes one scope's Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Pods and Argo Rollouts by namespace and pod label, and says what each
counts as (a Pod of a ReplicaSet of a Deployment is that Deployment); the rest reads containers
and their ports, the labels Istio adds to endpoints itself, gateway workloads, Gateway servers,
and the Gateway API `Gateway`s a VirtualService may bind to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    APPS,
    CORE,
    DEFAULT_NAMESPACE,
    ISTIO,
    Labels,
    Scope,
    api_group,
    describe,
    items,
    labels,
    memoized,
    namespace_of,
    of_kind,
)

# Gateway API ---------------------------------------------------------------------------------

GATEWAY_API = ("gateway.networking.k8s.io",)


def gateway_api_gateways(scope: Scope) -> dict[tuple[str, str], Resource]:
    """The scope's Gateway API `Gateway`s by (namespace, name): a VirtualService may bind to one."""
    found: dict[tuple[str, str], Resource] = {}
    for gateway in of_kind(scope, GATEWAY_API, "Gateway"):
        if gateway.name:
            found.setdefault((namespace_of(gateway), gateway.name), gateway)
    return found


# Workloads -----------------------------------------------------------------------------------

# Objects that run pods, by API group: what a Service, a subset or a Gateway's selector picks.
WORKLOAD_KINDS: dict[str, tuple[str, ...]] = {
    "Deployment": APPS,
    "StatefulSet": APPS,
    "DaemonSet": APPS,
    "ReplicaSet": APPS,
    "ReplicationController": CORE,
    "Pod": CORE,
    "Rollout": ("argoproj.io",),
}

# Labels Istio gives every endpoint from its node, cluster and network
# (`pilot/pkg/serviceregistry/util/label.AugmentLabels`): no manifest carries their values.
ISTIO_ADDED_LABELS = frozenset(
    (
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
        # The pre-1.17 names Kubernetes still sets on nodes.
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    )
)


def istio_added(label: str) -> bool:
    """Whether Istio sets `label` on endpoints itself (locality, cluster, network, host)."""
    return label in ISTIO_ADDED_LABELS or label.startswith("topology.istio.io/")


def is_workload(resource: Resource) -> bool:
    groups = WORKLOAD_KINDS.get(resource.kind)
    return groups is not None and api_group(resource) in groups


def pod_template(resource: Resource) -> dict[str, Any] | None:
    """The pod an object runs, as a mapping with `metadata` and `spec`: the Pod itself or its
    `spec.template`; None when it has none (an Argo Rollout with a `workloadRef`)."""
    if resource.kind == "Pod":
        return resource.data
    template = resource.get("spec", "template")
    return template if isinstance(template, dict) else None


def containers(resource: Resource) -> Iterator[dict[str, Any]]:
    """The serving containers of a workload's pods, native sidecars (restartPolicy: Always
    initContainers) included: the others exit before the pod serves."""
    template = pod_template(resource)
    spec = template.get("spec") if template else None
    if not isinstance(spec, dict):
        return
    for field in ("containers", "initContainers"):
        listed = spec.get(field)
        if not isinstance(listed, list):
            continue
        for container in listed:
            if not isinstance(container, dict):
                continue
            if field == "initContainers" and container.get("restartPolicy") != "Always":
                continue
            yield container


def container_ports(resource: Resource) -> Iterator[tuple[int | None, str | None]]:
    """(containerPort, name) of each port the workload's containers declare."""
    for container in containers(resource):
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


def _controller(resource: Resource) -> tuple[str, str] | None:
    """(kind, name) of the object that controls this one (a ReplicaSet's Deployment)."""
    owners = resource.metadata.get("ownerReferences")
    for owner in owners if isinstance(owners, list) else []:
        if isinstance(owner, dict) and owner.get("controller") is True:
            kind, name = owner.get("kind"), owner.get("name")
            if isinstance(kind, str) and isinstance(name, str) and kind and name:
                return kind, name
    return None


@dataclass(frozen=True)
class Workload:
    """An object that runs pods, the labels its pods carry, and the one it counts as.

    `owner` names the controller at the top of its `ownerReferences` (a Pod of a ReplicaSet of
    a Deployment counts as that Deployment), so that objects dumped from a cluster together
    with what created them count once.
    """

    resource: Resource
    labels: Labels
    owner: str  # `Kind namespace/name`

    @property
    def namespace(self) -> str:
        return namespace_of(self.resource)


class Workloads:
    """One scope's objects that run pods (Deployments, StatefulSets, DaemonSets, ReplicaSets,
    ReplicationControllers, Pods, Argo Rollouts), indexed by namespace and pod label."""

    @classmethod
    def of(cls, scope: Scope) -> Workloads:
        return memoized(scope, "workloads", cls, lambda: cls(scope))

    def __init__(self, scope: Scope) -> None:
        self.all: list[Workload] = []
        self._namespaces: dict[str, list[int]] = defaultdict(list)
        self._by_label: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self._answers: dict[
            tuple[str | None, frozenset[tuple[str, str]]], tuple[Workload, ...]
        ] = {}
        # Most objects are no workload, and their kind alone says so: no call for those.
        found = [r for r in scope.resources if r.kind in WORKLOAD_KINDS and is_workload(r)]
        names = {(namespace_of(r), r.kind, r.name): r for r in found if r.name}
        every, namespaces, by_label = self.all, self._namespaces, self._by_label
        for resource in found:
            template = pod_template(resource)
            if template is None:
                continue
            metadata = template.get("metadata")
            pod = labels(metadata.get("labels") if isinstance(metadata, dict) else None) or {}
            namespace = resource.namespace or DEFAULT_NAMESPACE
            position = len(every)
            every.append(Workload(resource, pod, self._owner(resource, names)))
            namespaces[namespace].append(position)
            for key, value in pod.items():
                by_label[namespace, key, value].append(position)

    @staticmethod
    def _owner(resource: Resource, names: Mapping[tuple[str, str, str], Resource]) -> str:
        if not resource.name:
            return describe(resource)
        namespace = namespace_of(resource)
        kind, name = resource.kind, resource.name
        for _ in range(4):  # Pod → ReplicaSet → Deployment; a cycle must not hang
            current = names.get((namespace, kind, name))
            controller = _controller(current) if current is not None else None
            if controller is None:
                break
            kind, name = controller
        return f"{kind} {namespace}/{name}"

    def holds(self, namespace: str) -> bool:
        """Whether the scope has any workload in `namespace`."""
        return bool(self._namespaces.get(namespace))

    def select(
        self, namespace: str | None, selectors: Iterable[Mapping[str, str]]
    ) -> list[Workload]:
        """The workloads whose pods all `selectors` select, in `namespace` or (None) anywhere."""
        wanted: Labels = {}
        for selector in selectors:
            for key, value in selector.items():
                if wanted.setdefault(key, value) != value:
                    return []  # two selectors disagree: no pod has both values
        # Many Gateways share one selector: answer each question once.
        asked = (namespace, frozenset(wanted.items()))
        if asked in self._answers:
            return list(self._answers[asked])
        spaces = [namespace] if namespace is not None else sorted(self._namespaces)
        required = wanted.items()
        chosen: list[Workload] = []
        for space in spaces:
            if not wanted:
                positions = self._namespaces.get(space, [])
            else:
                postings = [self._by_label.get((space, k, v), []) for k, v in wanted.items()]
                positions = min(postings, key=len)
            if len(wanted) < 2:  # all of the namespace, or the posting of the one label
                chosen.extend(self.all[i] for i in positions)
                continue
            # `selects` as a comparison of item views (the values are label strings).
            chosen.extend(self.all[i] for i in positions if required <= self.all[i].labels.items())
        self._answers[asked] = tuple(chosen)
        return chosen


def owners(workloads: Iterable[Workload]) -> list[str]:
    """The distinct things the workloads count as, in order: `Deployment shop/checkout-v1`."""
    return list(dict.fromkeys(w.owner for w in workloads))


def is_gateway_workload(workload: Workload) -> bool:
    """Whether the workload runs an Istio gateway (an Envoy `router`) rather than an app.

    Gateways installed by Helm or by Istio for a Gateway API `Gateway` are injected with the
    `gateway` template; those installed by istioctl run the `proxyv2` image as `router`.
    """
    template = pod_template(workload.resource) or {}
    metadata = template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        templates = annotations.get("inject.istio.io/templates")
        if isinstance(templates, str) and "gateway" in templates.split(","):
            return True
    if "gateway.istio.io/managed" in workload.labels:
        return True
    for container in containers(workload.resource):
        image, args = container.get("image"), container.get("args")
        proxy = isinstance(image, str) and "proxyv2" in image
        if proxy and isinstance(args, list) and "router" in args:
            return True
    return False


# Gateway servers -----------------------------------------------------------------------------


def gateway_selector(gateway: Resource) -> Labels | None:
    """An Istio Gateway's `spec.selector`; None when it has none (or an empty one)."""
    return labels(gateway.get("spec", "selector")) or None


def selecting_gateways(scope: Scope) -> tuple[list[Resource], list[set[str]]]:
    """The scope's Istio Gateways with a selector and, when there are two or more to compare,
    the workloads (as `owners`) each one's selector picks."""
    gateways = [g for g in of_kind(scope, ISTIO, "Gateway") if gateway_selector(g)]
    if len(gateways) < 2:
        return gateways, []
    workloads = Workloads.of(scope)
    picked = [set(owners(workloads.select(None, [gateway_selector(g) or {}]))) for g in gateways]
    return gateways, picked


def server_hosts(server: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """Each host of a Gateway server with its index, without its `namespace/` prefix."""
    hosts = server.get("hosts")
    for index, host in enumerate(hosts if isinstance(hosts, list) else []):
        if isinstance(host, str) and host.strip():
            yield index, host.rpartition("/")[2].strip().lower()


def server_port(server: Mapping[str, Any]) -> int | None:
    port = server.get("port")
    number = port.get("number") if isinstance(port, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def tcp_service_ports(service: Resource) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each TCP port of a Service (the only ones Istio routes), with its number."""
    for _, port in items(service, "spec", "ports"):
        if not isinstance(port, dict) or str(port.get("protocol") or "TCP").upper() != "TCP":
            continue
        number = port.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            yield number, port
