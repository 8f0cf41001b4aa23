"""Each Service a route splits weights over selects the pods of exactly one workload.

With Gateway API routing a version is a Service: the route's rule divides requests between
its `backendRefs` by weight, and each backendRef's Service picks the pods that get its share.
When a rule splits over several backendRefs and one of their Services selects the pods of two
or more workloads (the base Service, which selects every version), the "canary" share is
spread over versions you did not mean to mix, and the weights stop meaning what they say.
When it selects no workload's pods, its share fails with 503 (no healthy upstream).

Only rules with two or more backendRefs are checked: a rule with one sends everything to it,
whatever it selects. The Service's selector is matched against the pod labels of the
workloads of its namespace, as in `subset-selects-one-deployment` (Deployments, StatefulSets,
DaemonSets, ReplicaSets, ReplicationControllers, Pods and Argo Rollouts; an object another one
controls counts as that one). Services without a selector, Services not in the input
(`backend-exists`), and namespaces with no workload in scope are skipped.

Istio: IST0173 DestinationRuleSubsetNotSelectPods is the analog for subsets; istioctl has none
for Gateway API backendRefs.

Fix: give each version its own Service whose selector adds the version's label (`app` and
`version`), and name those Services in the weighted backendRefs.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import show_labels
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Routes, backend_refs
from meshcanary.rules._workloads import Workloads, owners

ID = "backend-selects-one-version"
SEVERITY = Severity.ERROR
SUMMARY = "each Service a route's rule splits weights over selects exactly one workload's pods"
HINT = "name per-version Services (selecting `app` and `version`) in the weighted backendRefs"
RELEASE_HINT = (
    "a version's Service selects the base's pod labels and `version`: give each service's base "
    "pod labels (`app`) no other Deployment of the namespace carries"
)
ISTIO_CODES: tuple[str, ...] = ()


def check(scope: Scope) -> Iterator[Finding]:
    routes = Routes.of(scope)
    if not routes.routes:
        return
    workloads = Workloads.of(scope)
    for route in routes.routes:
        for backends in backend_refs(route):
            if len(backends) < 2:
                continue
            for ref in backends:
                selector = routes.selector(ref)
                if not selector or not workloads.holds(ref.namespace):
                    continue
                selected = owners(workloads.select(ref.namespace, [selector]))
                if len(selected) == 1:
                    continue
                shown = f"Service {ref.namespace}/{ref.name} ({show_labels(selector)})"
                if selected:
                    message = (
                        f"{shown} selects {len(selected)} workloads: {', '.join(selected)}; "
                        "the weights of this rule do not split versions"
                    )
                else:
                    message = (
                        f"{shown} selects no workload in namespace {ref.namespace}: its share "
                        "of this rule fails with 503"
                    )
                yield Finding(route, [*ref.path, "name"], message)
