"""Every Gateway a VirtualService binds to exists (or is the reserved `mesh`).

A VirtualService applies only to the gateways it names in `spec.gateways` (and, per route, in
`match[].gateways`). A name that matches no Gateway binds to nothing: Istio accepts the
object, but the routes are silently absent from the ingress, and the canary's weights never
reach external traffic.

`name` means a Gateway in the VirtualService's namespace (an object without a namespace counts
as being in "default"); `ns/name` a Gateway in `ns`; the older `name.ns.svc.cluster.local`
form is read as `ns/name`. An Istio Gateway (`networking.istio.io`) and a Gateway API Gateway
(`gateway.networking.k8s.io`) of that name both count. A `ns/name` whose namespace has no
resource at all in the input is not reported here: a shared ingress gateway in `istio-system`
is typically managed by another repository, and `reference-not-checked` says, at `info`,
that it was not checked.

Istio: IST0101 ReferencedResourceNotFound ("Referenced gateway not found"). The same check,
except that istioctl reports a gateway of a namespace it was not given, and does not read a
Gateway API Gateway as one.

Fix: correct the name (or add the namespace: `istio-system/public-gateway`), or add the
Gateway.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import (
    ISTIO,
    MESH,
    Mesh,
    gateway_key,
    gateway_refs,
    namespace_of,
    of_kind,
)
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules._workloads import gateway_api_gateways

ID = "gateway-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every gateway a VirtualService names is `mesh` or a Gateway in scope"
HINT = "name an existing Gateway (`name` or `namespace/name`), or `mesh`"
RELEASE_HINT = (
    "in `gateways:`, name a gateway environment.yaml declares, an existing one as "
    "`<namespace>/<name>`, or `mesh`"
)
ISTIO_CODES = ("IST0101",)

UNCHECKED_HINT = (
    "give the namespace's Gateways to the same run to check the reference, or set "
    "`reference-not-checked` to off"
)


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """References into namespaces the input holds nothing of: for `reference-not-checked`."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    kubernetes = gateway_api_gateways(scope)
    for service in services:
        namespace = namespace_of(service)
        for path, name in gateway_refs(service):
            if name == MESH:
                continue
            key = gateway_key(name, namespace)
            if key in mesh.gateways or key in kubernetes:
                continue
            if key[0] != namespace and key[0] not in mesh.namespaces:
                if key[0] and key[1]:
                    yield (
                        Finding(
                            service,
                            path,
                            f"Gateway {key[0]}/{key[1]} not checked: the input holds nothing "
                            f"of namespace {key[0]}",
                            hint=UNCHECKED_HINT,
                        ),
                        False,
                    )
                continue
            near = sorted({f"{ns}/{n}" for ns, n in [*mesh.gateways, *kubernetes] if n == key[1]})
            also = f" (there is {', '.join(near)})" if near else ""
            yield Finding(service, path, f"no Gateway {key[1]!r} in namespace {key[0]}{also}"), True
