"""Every host a route sends to is a Service or ServiceEntry, with the port the route names.

A VirtualService destination (`route[].destination`, `mirror`, `mirrors[].destination`) must
name a host of Istio's service registry: a Kubernetes Service or a ServiceEntry host exported to
the VirtualService's namespace. Istio accepts any name, but has no cluster for an unknown one,
and every request the route gets fails (503, `NR`/`NC`). A destination `port.number` must be a
port of that Service or ServiceEntry, for the same reason.

Hosts are read as Istio reads them: only a name without dots is expanded
(`reviews` → `reviews.<namespace of the VirtualService>.svc.cluster.local`). `reviews.prod`
stays `reviews.prod`, which no Service is called: the finding says to write
`reviews.prod.svc.cluster.local`. A ServiceEntry's `exportTo`, and a Service's
`networking.istio.io/exportTo` annotation, limit where its hosts can be routed to.

Istio: IST0101 ReferencedResourceNotFound, for `host`, `mirror host` and `host:port`.
Deliberately looser: istioctl reports every host it cannot find, so that on a repository of
routing config alone it reports every Service deployed from elsewhere. meshcanary reports a
cluster host only when the input holds Services of that namespace, and another host only when
it holds ServiceEntries; `reference-not-checked` names the hosts left unchecked, at `info`.

Fix: correct the host (prefer the fully qualified name), add the Service or ServiceEntry, or
route to a port the Service exposes.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.mesh import CLUSTER_DOMAIN, ISTIO, Readings, described_at, of_kind, service_key
from meshcanary.problem import Severity
from meshcanary.registry import Lookup, Registry, RegistryHost, lookup_destination
from meshcanary.rules import Finding, Scope, verdicts

ID = "destination-host-exists"
SEVERITY = Severity.ERROR
SUMMARY = "every destination host is a Service or ServiceEntry, with the port the route names"
HINT = "route to an existing Service or ServiceEntry host (prefer its FQDN), or add it"
RELEASE_HINT = (
    "the release file routes to its base's Service: a generated file edited by hand is "
    "rendered again with `meshcanary render --force`"
)
ISTIO_CODES = ("IST0101",)


UNCHECKED_HINT = (
    "give the namespace's Services (or the ServiceEntries) to the same run to check the host, "
    "or set `reference-not-checked` to off"
)


def check(scope: Scope) -> Iterator[Finding]:
    yield from verdicts(scope, _verdicts)[0]


def unchecked(scope: Scope) -> Iterator[Finding]:
    """Hosts whose Service (entry) the input cannot hold: for `reference-not-checked`."""
    yield from verdicts(scope, _verdicts)[1]


def _verdicts(scope: Scope) -> Iterator[tuple[Finding, bool]]:
    services = of_kind(scope, ISTIO, "VirtualService")
    if not services:
        return
    registry = Registry.of(scope)
    readings = Readings.of(scope)
    for service in services:
        said: set[str] = set()  # "not checked" once per VirtualService and host
        for destination, host in readings.sent_to(service):
            path = [*destination.path, "host"]
            found = lookup_destination(registry, service, host)
            if found.entries:
                yield from ((f, True) for f in _port(service, destination.path, found.entries))
            elif found.checked:
                yield _missing(service, path, host, found, registry), True
            elif found.host not in said:
                said.add(found.host)
                yield _unchecked(service, path, found.host), False


def _unchecked(service: Resource, path: list[str | int], host: str) -> Finding:
    key = service_key(host)
    why = f"no Service of namespace {key[0]}" if key else "no ServiceEntry"
    return Finding(
        service, path, f"host {host} not checked: the input holds {why}", hint=UNCHECKED_HINT
    )


def _missing(
    service: Resource, path: list[str | int], host: str, found: Lookup, registry: Registry
) -> Finding:
    if found.hidden:
        entry = found.hidden[0]
        seen = ", ".join(sorted(entry.visible or ())) or "no namespace"
        return Finding(
            service,
            path,
            f"host {host} is {described_at(entry.resource)}, which is exported to {seen}, not "
            f"to namespace {service.namespace or 'default'}",
            hint="export the host to this namespace (exportTo), or route from a namespace "
            "that sees it",
        )
    if found.expanded is not None:
        return Finding(
            service,
            path,
            f"host {host!r} is not in the registry: Istio expands only a name without dots, "
            f"so it does not reach {described_at(found.expanded.resource)}",
            hint=f"write the fully qualified name {found.expanded.host}",
        )
    key = service_key(found.host)
    if key is None:
        return Finding(
            service,
            path,
            f"no ServiceEntry for host {found.host}: Istio has no cluster for it and requests "
            "routed here fail",
            hint=f"add a ServiceEntry with host {found.host}, or correct the host",
        )
    namespace, name = key
    elsewhere = sorted(
        f"{ns}/{name}"
        for ns in registry.service_namespaces - {namespace}
        if any(
            e.resource.kind == "Service" for e in registry.lookup(f"{name}.{ns}.{CLUSTER_DOMAIN}")
        )
    )
    also = f" (there is Service {', '.join(elsewhere)})" if elsewhere else ""
    return Finding(
        service,
        path,
        f"no Service {name!r} in namespace {namespace} and no ServiceEntry for {found.host}: "
        f"requests routed here fail{also}",
    )


def _port(
    service: Resource, path: list[str | int], entries: tuple[RegistryHost, ...]
) -> Iterator[Finding]:
    number = service.get(*path, "port", "number")
    if not isinstance(number, int) or isinstance(number, bool):
        return
    known = sorted({p for e in entries for p in e.ports})
    if not known or number in known:
        return
    yield Finding(
        service,
        [*path, "port", "number"],
        f"{described_at(entries[0].resource)} has no port {number} "
        f"(it has {', '.join(map(str, known))})",
        hint="route to a port the Service exposes",
    )
