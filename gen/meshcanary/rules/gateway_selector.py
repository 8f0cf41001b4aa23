"""A Gateway's selector picks workloads of the input, when the input holds gateway workloads.

A Gateway configures the gateway pods its `selector` picks, in any namespace (Istio's
default). When it picks none, its servers are configured nowhere: nothing listens for its
hosts and ports, and every VirtualService bound to it routes nothing. Usually a label was
mistyped (`istio: ingress` for `istio: ingressgateway`), or the Gateway was copied from a
cluster whose ingress is labelled otherwise.

Checked only when the input holds gateway workloads: objects that run Istio gateway pods
(injected with the `gateway` template, as the Helm chart and Gateway API deployments are, or
running the `proxyv2` image as `router`, as istioctl installs them). The selector is then
matched against the pod labels of every workload of the input, in every namespace. When the
input holds no gateway workload, the ingress is installed by another repository, as it
usually is, and nothing is reported, not even at `info`: that is the normal case of an
application repository, and a note on every Gateway would be noise.

Istio: IST0101 ReferencedResourceNotFound, for a Gateway's `selector`. istioctl matches Pods
only, so that offline, on manifests, it reports every Gateway; meshcanary reads the pod
templates of Deployments, DaemonSets and the rest, and says nothing when the ingress is not
in the input.

Fix: make the selector match the labels of the gateway pods (`kubectl get pods -n
istio-system --show-labels`), or deploy the gateway it names.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import ISTIO, of_kind, show_labels
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope
from meshcanary.rules._workloads import (
    Workloads,
    gateway_selector,
    is_gateway_workload,
    owners,
)

ID = "gateway-selector"
SEVERITY = Severity.ERROR
SUMMARY = "a Gateway's selector picks gateway pods of the input, when it holds any"
HINT = "make the selector match the pod labels of a gateway workload"
RELEASE_HINT = (
    "make the gateway's `selector:` in environment.yaml match the pod labels of the ingress gateway"
)
ISTIO_CODES = ("IST0101",)


def check(scope: Scope) -> Iterator[Finding]:
    gateways = of_kind(scope, ISTIO, "Gateway")
    if not gateways:
        return
    workloads = Workloads.of(scope)
    ingress = [w for w in workloads.all if is_gateway_workload(w)]
    if not ingress:
        return  # the gateways run elsewhere
    shown = "; ".join(
        f"{owner} ({show_labels(next(w.labels for w in ingress if w.owner == owner))})"
        for owner in owners(ingress)[:3]
    )
    for gateway in gateways:
        selector = gateway_selector(gateway)
        if selector is None or workloads.select(None, [selector]):
            continue
        # Point at the first label no gateway pod carries: usually the mistyped one.
        wrong = next(
            (k for k, v in selector.items() if not any(w.labels.get(k) == v for w in ingress)),
            None,
        )
        yield Finding(
            gateway,
            ["spec", "selector", wrong] if wrong is not None else ["spec", "selector"],
            f"selector {show_labels(selector)} picks no pod of the input; its gateway "
            f"workloads are {shown}",
            key=True,
        )
