"""Each DestinationRule subset selects the pods of exactly one Deployment.

A subset is a version: its labels, together with the selector of the Service its host names,
pick the pods that get the subset's traffic. If they pick no Deployment's pods, every request
routed to the subset fails with 503 (no healthy upstream). If they pick the pods of two or
more Deployments, the "canary" share is spread over versions you did not mean to mix, and the
weights stop meaning what they say.

The subset's labels are combined with the selector of the Service the host names (`name.ns
.svc.cluster.local` → Service `name` in `ns`) when that Service is in scope, and matched
against the pod template labels of the Deployments in that namespace. Hosts that name no
Kubernetes Service, and namespaces with no Deployment in scope, are skipped: their workloads
are managed elsewhere. Only Deployments count; pods of StatefulSets, DaemonSets or Argo
Rollouts are not looked at.

Fix: give each version's Deployment a distinguishing pod label (usually `version`) and put
exactly that label in the subset's `labels`.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import (
    ISTIO,
    Mesh,
    describe,
    namespace_of,
    of_kind,
    resolve_host,
    service_key,
    show_labels,
    subsets,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "subset-selects-one-deployment"
SEVERITY = Severity.ERROR
SUMMARY = "each DestinationRule subset selects the pods of exactly one Deployment"
HINT = "make the subset's labels match the pod template labels of exactly one Deployment"
RELEASE_HINT = (
    "a version's subset selects the base's pod labels and `version`: give each service's base "
    "pod labels (`app`) no other Deployment of the namespace carries"
)


def check(scope: Scope) -> Iterator[Finding]:
    rules = of_kind(scope, ISTIO, "DestinationRule")
    if not rules:
        return
    mesh = Mesh.of(scope)
    for rule in rules:
        host = rule.get("spec", "host")
        if not isinstance(host, str):
            continue
        resolved = resolve_host(host, namespace_of(rule))
        key = service_key(resolved)
        for subset in subsets(rule):
            selected = mesh.subset_deployments(resolved, subset)
            if selected is None or len(selected) == 1 or key is None:
                continue
            has_labels = rule.get(*subset.path, "labels") is not None
            path = [*subset.path, "labels" if has_labels else "name"]
            service = mesh.services.get(key)
            via = f" with Service {key[1]}'s selector" if service is not None else ""
            if not selected:
                yield Finding(
                    rule,
                    path,
                    f"subset {subset.name!r} ({show_labels(subset.labels)}){via} selects no "
                    f"Deployment in namespace {key[0]}",
                    key=has_labels,
                )
            else:
                names = ", ".join(describe(d) for d in selected)
                yield Finding(
                    rule,
                    path,
                    f"subset {subset.name!r} ({show_labels(subset.labels)}){via} selects "
                    f"{len(selected)} Deployments: {names}",
                    key=has_labels,
                )
