"""Every Gateway a VirtualService binds to exists (or is the reserved `mesh`).

A VirtualService applies only to the gateways it names in `spec.gateways` (and, per route, in
`match[].gateways`). A name that matches no Gateway binds to nothing: Istio accepts the
object, but the routes are silently absent from the ingress, and the canary's weights never
reach external traffic.

`name` means a Gateway in the VirtualService's namespace (an object without a namespace counts
as being in "default"); `ns/name` a Gateway in `ns`; the older `name.ns.svc.cluster.local`
form is read as `ns/name`. Deliberately unlike Istio, which cannot know either, a `ns/name`
whose namespace has no resource at all in scope is not reported: a shared ingress gateway in
`istio-system` is typically managed by another repository.

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
from meshcanary.rules import Finding, Scope

ID = "gateway-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every gateway a VirtualService names is `mesh` or a Gateway in scope"
HINT = "name an existing Gateway (`name` or `namespace/name`), or `mesh`"
RELEASE_HINT = (
    "in `gateways:`, name a gateway environment.yaml declares, an existing one as "
    "`<namespace>/<name>`, or `mesh`"
)


def check(scope: Scope) -> Iterator[Finding]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    mesh = Mesh.of(scope)
    for service in services:
        namespace = namespace_of(service)
        for path, name in gateway_refs(service):
            if name == MESH:
                continue
            key = gateway_key(name, namespace)
            if key in mesh.gateways:
                continue
            if key[0] != namespace and key[0] not in mesh.namespaces:
                continue  # a namespace managed elsewhere
            near = sorted(f"{ns}/{n}" for ns, n in mesh.gateways if n == key[1])
            also = f" (there is {', '.join(near)})" if near else ""
            yield Finding(
                service,
                path,
                f"no Gateway {key[1]!r} in namespace {key[0]}{also}",
            )
