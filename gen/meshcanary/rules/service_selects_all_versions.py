"""A Service selects the pods of every version, and never selects on `version`.

Istio splits traffic between versions *behind* one Service: the Service's selector decides
which pods are endpoints at all, and the DestinationRule's subsets then divide those
endpoints by version. A Service that selects on `version` (or on any label one version's pods
lack) hides the other versions from the mesh, so routes to their subsets find no endpoints and
fail with 503, and callers outside the mesh only ever reach one version.

Two findings: a Service whose selector has a `version` key; and, for each subset of a
DestinationRule for the Service's host (`name.ns.svc.cluster.local`), a Service that selects
none of its own app's Deployments whose pod template carries the subset's labels. The app is
what the selector says with the labels Istio names a workload's service by (`app`,
`app.kubernetes.io/name`, `service.istio.io/canonical-name`): Deployments of other apps in the
namespace are not versions of this one, even when they carry the subset's `version`. A Service
that selects on none of those labels is checked for `version` only, and Services without a
selector (endpoints managed by hand) are skipped.

With Gateway API routing a version *is* a Service: a route's `backendRefs` name one Service per
version (`<service>-<version>`, selecting `app` and `version`) and split the weights between
them, while the base Service keeps selecting every version. A Service that a backendRef (or a
RequestMirror filter) of an HTTPRoute, GRPCRoute, TCPRoute or TLSRoute names is therefore not
checked here; `backend-selects-one-version` checks that it selects one version when a
rule splits weights over it.

Fix: select on the labels all versions share (usually just `app`) and leave `version` to the
DestinationRule's subsets (or to per-version Services named only by routes' backendRefs).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import (
    CLUSTER_DOMAIN,
    CORE,
    Mesh,
    Readings,
    labels,
    missing,
    namespace_of,
    of_kind,
    pod_labels,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._gateway_api import Routes

ID = "service-selects-all-versions"
SEVERITY = Severity.ERROR
SUMMARY = "a Service selects the pods of every version and does not select on `version`"
HINT = "select only on labels every version's pods share (e.g. `app`); subsets pick versions"

# The labels Istio takes a workload's service name from: they say which app a Deployment is.
APP_LABELS = frozenset(("app", "app.kubernetes.io/name", "service.istio.io/canonical-name"))


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, CORE, "Service")
    if not services:
        return
    mesh = Mesh.of(scope)
    readings = Readings.of(scope)
    per_version = Routes.of(scope).backend_services()
    for service in services:
        selector = labels(service.get("spec", "selector"))
        if not selector or (namespace_of(service), service.name) in per_version:
            continue
        if "version" in selector:
            yield Finding(
                service,
                ["spec", "selector", "version"],
                f"Service selects on version={selector['version']}, so only that version's "
                "pods are its endpoints",
                key=True,
            )
        app = {key: value for key, value in selector.items() if key in APP_LABELS}
        # A selector of app labels alone selects what its app labels do: no subset to lose.
        if not app or len(app) == len(selector):
            continue
        namespace = namespace_of(service)
        host = f"{service.name}.{namespace}.{CLUSTER_DOMAIN}"
        for rule in mesh.destination_rules(host):
            for subset in readings.subsets(rule):
                if not subset.labels:
                    continue
                versions = mesh.select(namespace, [subset.labels, app])
                if not versions or mesh.select(namespace, [subset.labels, selector]):
                    continue
                first = versions[0]
                lacking = missing(selector, pod_labels(first))
                if lacking == ["version"]:
                    continue  # said above: the Service selects on version
                shown = ", ".join(f"{k}={selector[k]}" for k in lacking)
                yield Finding(
                    service,
                    ["spec", "selector", lacking[0]],
                    f"Service selects no pod of subset {subset.name!r} of DestinationRule "
                    f"{rule.name}: Deployment {first.name}'s pod template lacks {shown}",
                    key=True,
                )
