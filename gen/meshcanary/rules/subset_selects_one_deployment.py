"""Each DestinationRule subset selects the pods of exactly one workload.

A subset is a version: its labels, together with the selector of the Service its host names,
pick the pods that get the subset's traffic. If they pick no workload's pods, every request
routed to the subset fails with 503 (no healthy upstream). If they pick the pods of two or
more workloads, the "canary" share is spread over versions you did not mean to mix, and the
weights stop meaning what they say.

The subset's labels are combined with the selector of the Service the host names (`name.ns
.svc.cluster.local` → Service `name` in `ns`) when that Service is in scope, and matched
against the pod labels of the workloads in that namespace: Deployments, StatefulSets,
DaemonSets, ReplicaSets, ReplicationControllers, Pods and Argo Rollouts. An object that
another one in the input controls (`ownerReferences`) counts as that one, so a Deployment
dumped from a cluster with its ReplicaSet and Pods is one workload. Hosts that name no
Kubernetes Service, and namespaces with no workload in scope, are skipped: their workloads are
managed elsewhere.

Labels Istio adds to every endpoint itself (`topology.kubernetes.io/region`,
`topology.kubernetes.io/zone`, `kubernetes.io/hostname` and `topology.istio.io/*`: subzone,
cluster, network) come from nodes and clusters, not from manifests: they are left out of the
match, and a subset with no other label (a locality subset, not a version) is not checked.

Istio: IST0173 DestinationRuleSubsetNotSelectPods, which reports a subset that selects no pod.
meshcanary is stricter: two or more workloads are reported too. istioctl reads only Pods, so
offline, on manifests, it reports every subset; meshcanary reads the pod templates.

Fix: give each version's workload a distinguishing pod label (usually `version`) and put
exactly that label in the subset's `labels`.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import (
    ISTIO,
    Labels,
    Mesh,
    Readings,
    labels,
    namespace_of,
    of_kind,
    resolve_host,
    service_key,
    show_labels,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import Workloads, istio_added, owners

ID = "subset-selects-one-deployment"
SEVERITY = Severity.ERROR
SUMMARY = "each DestinationRule subset selects the pods of exactly one workload"
HINT = "make the subset's labels match the pod labels of exactly one workload"
RELEASE_HINT = (
    "a version's subset selects the base's pod labels and `version`: give each service's base "
    "pod labels (`app`) no other Deployment of the namespace carries"
)
ISTIO_CODES = ("IST0173",)


def check(scope: Scope) -> Iterator[Finding]:
    rules = of_kind(scope, ISTIO, "DestinationRule")
    if not rules:
        return
    mesh = Mesh.of(scope)
    workloads = Workloads.of(scope)
    readings = Readings.of(scope)
    for rule in rules:
        host = rule.get("spec", "host")
        if not isinstance(host, str):
            continue
        key = service_key(resolve_host(host, namespace_of(rule)))
        if key is None or not workloads.holds(key[0]):
            continue
        service = mesh.services.get(key)
        selector: Labels = (labels(service.get("spec", "selector")) or {}) if service else {}
        via = f" with Service {key[1]}'s selector" if service is not None else ""
        for subset in readings.subsets(rule):
            own = {k: v for k, v in subset.labels.items() if not istio_added(k)}
            if subset.labels and not own:
                continue  # a locality subset: Istio fills its labels in from the nodes
            selected = owners(workloads.select(key[0], [own, selector]))
            if len(selected) == 1:
                continue
            has_labels = rule.get(*subset.path, "labels") is not None
            path = [*subset.path, "labels" if has_labels else "name"]
            if not selected:
                message = (
                    f"subset {subset.name!r} ({show_labels(subset.labels)}){via} selects no "
                    f"workload in namespace {key[0]}"
                )
            else:
                message = (
                    f"subset {subset.name!r} ({show_labels(subset.labels)}){via} selects "
                    f"{len(selected)} workloads: {', '.join(selected)}"
                )
            yield Finding(rule, path, message, key=has_labels)
