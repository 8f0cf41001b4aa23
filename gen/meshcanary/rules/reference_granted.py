"""A route's backendRef into another namespace is allowed by a ReferenceGrant there.

A backendRef (or a RequestMirror filter's backendRef) may name a Service of another
namespace, but "a ReferenceGrant object is required in the referent namespace to allow that
namespace's owner to accept the reference". Without one the controller refuses the
reference (`ResolvedRefs: False`, reason `RefNotPermitted`) and the requests that backend
would get are answered with 500: the canary's share fails outright.

The grant must be in the target namespace, list in `from` the route's kind
(group `gateway.networking.k8s.io`) and namespace, and in `to` the backend's group and kind
(`""` and `Service` for a Service), with no `name` or the backend's. A parentRef needs no
grant: a Gateway's listeners admit routes of other namespaces themselves (`allowedRoutes`,
checked by `listener-allows-route`), and "ReferenceGrant is not applicable for governing
ParentRefs to Services". When the input holds nothing of the target namespace, its grants
may live elsewhere, and so may the Service: `reference-not-checked` already names that
backendRef at `info` (for `backend-exists`), and this rule stays quiet.

Istio: none; istioctl analyze does not read ReferenceGrants.

Fix: add a ReferenceGrant to the target namespace, or move the route (or the Service) so
that both are in one namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import namespace_of
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope, backend_exists
from meshcanary.rules._gateway_api import Routes

ID = "reference-granted"
SEVERITY = Severity.ERROR
SUMMARY = "a backendRef into another namespace is allowed by a ReferenceGrant there"
HINT = "add a ReferenceGrant in the backend's namespace from this route's kind and namespace"
ISTIO_CODES: tuple[str, ...] = ()


def check(scope: Scope) -> Iterator[Finding]:
    routes = Routes.of(scope)
    for ref in backend_exists.references(routes):
        own = namespace_of(ref.route)
        if ref.namespace == own or ref.namespace not in routes.namespaces:
            continue
        if routes.granted(ref.route, ref):
            continue
        message = f"no ReferenceGrant in namespace {ref.namespace} lets {ref.route.kind}s of "
        message += f"{own} refer to {ref.shown}: the reference is refused (RefNotPermitted)"
        yield Finding(ref.route, [*ref.path, "namespace"], message)
