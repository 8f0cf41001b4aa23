"""A DestinationRule's host is a Service or a ServiceEntry host.

A DestinationRule applies to the service its `host` names. When no Kubernetes Service and no
ServiceEntry has that host, it applies to nothing: its subsets, TLS settings, load balancing
and circuit breakers are silently absent, and the routes to its subsets fail with 503s. The
usual causes are a typo, a short name read in the wrong namespace (`reviews` in a
DestinationRule of namespace `istio-config` is `reviews.istio-config.svc.cluster.local`), or
a host written `name.namespace`, which Istio reads as written: only a name without dots is
expanded.

Hosts are read as Istio reads them. A wildcard host is not checked. A cluster host
(`name.ns.svc.cluster.local`) must be a Service of the input when the input holds Services of
`ns`; otherwise the namespace is managed elsewhere and `reference-not-checked` says, at
`info`, that it was not checked. Any other host must be a host of a ServiceEntry of the input
(exactly, or covered by a wildcard one) when the input holds ServiceEntries; otherwise it is
not checked either. Where the Service is exported to (`exportTo`) is not looked at.

Istio: IST0174 UnknownDestinationRuleHost. The same check, except that istioctl reports a
host of a namespace it was not given, and compares `exportTo`.

Fix: correct the host, write it in full (`reviews.bookinfo.svc.cluster.local`), or add the
ServiceEntry that declares an external host.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.mesh import ISTIO, Mesh, namespace_of, of_kind, resolve_host, service_key
from meshcanary.problem import Severity
from meshcanary.registry import Registry, istio_host
from meshcanary.rules import Finding, Scope, verdicts
from meshcanary.rules.destination_host_exists import UNCHECKED_HINT

ID = "destination-rule-host"
SEVERITY = Severity.WARNING
SUMMARY = "a DestinationRule's host is a Service or a ServiceEntry host"
HINT = "write the host of an existing Service in full, or add a ServiceEntry for it"
RELEASE_HINT = (
    "the release file renders the DestinationRule's host from its base's Service: a generated "
    "file edited by hand is rendered again with `meshcanary render --force`"
)
ISTIO_CODES = ("IST0174",)


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """Hosts of namespaces (or outside the cluster) the input holds no Service (entry) of."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    rules = of_kind(scope, ISTIO, "DestinationRule")
    if not rules:
        return
    registry = Registry.of(scope)
    mesh = Mesh.of(scope)
    for rule in rules:
        written = rule.get("spec", "host")
        if not isinstance(written, str) or not written.strip() or "*" in written:
            continue
        namespace = namespace_of(rule)
        host = istio_host(written, namespace)
        if registry.lookup(host):
            continue
        path = ["spec", "host"]
        key = service_key(host)
        if key is not None:
            if key[0] in registry.service_namespaces:
                near = sorted(f"{ns}/{n}" for ns, n in mesh.services if n == key[1])
                also = f" (there is {', '.join(near)})" if near else ""
                yield Finding(rule, path, f"no Service {key[1]} in namespace {key[0]}{also}"), True
            else:
                yield (
                    Finding(
                        rule,
                        path,
                        f"host {host} not checked: the input holds no Service of namespace "
                        f"{key[0]}",
                        hint=UNCHECKED_HINT,
                    ),
                    False,
                )
            continue
        resolved = resolve_host(written, namespace)
        if resolved != host and registry.lookup(resolved):
            yield (
                Finding(
                    rule,
                    path,
                    f"host {written.strip()} names no service: Istio expands only a name without "
                    f"dots, so it is not read as {resolved}",
                    hint=f"write the host in full: {resolved}",
                ),
                True,
            )
        elif registry.service_entries:
            yield Finding(rule, path, f"no Service or ServiceEntry has host {host}"), True
        else:
            yield (
                Finding(
                    rule,
                    path,
                    f"host {host} not checked: the input holds no ServiceEntry",
                    hint=UNCHECKED_HINT,
                ),
                False,
            )
