"""Istio's service registry: the hosts a route may send to, as Istio builds them from
Kubernetes Services and ServiceEntries, and what each is exported to (`Registry`); how a
route's host is looked up in it (`lookup_destination`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from meshcanary.manifest import Resource
from meshcanary.mesh import (
    CLUSTER_DOMAIN,
    CORE,
    ISTIO,
    Scope,
    api_group,
    hosts_match,
    items,
    memoized,
    namespace_of,
    resolve_host,
    service_key,
)

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
EVERY_NAMESPACE = "*"


def istio_host(host: str, namespace: str) -> str:
    """The host as Istio itself reads it: only a name without dots is expanded.

    Unlike `resolve_host`, `name.ns` stays `name.ns`: Istio looks it up literally.
    """
    host = host.strip().lower()
    if host and "." not in host and "*" not in host:
        return f"{host}.{namespace}.{CLUSTER_DOMAIN}"
    return host


def exported_to(entries: object, namespace: str) -> frozenset[str] | None:
    """The namespaces an `exportTo` list makes an object visible in; None for all of them."""
    if not isinstance(entries, list) or not entries:
        return None
    names = {namespace if e == "." else str(e).strip() for e in entries if e is not None}
    if EVERY_NAMESPACE in names:
        return None
    return frozenset(names - {"~"})


@dataclass(frozen=True)
class RegistryHost:
    """One host of Istio's service registry: a Kubernetes Service's, or a ServiceEntry's."""

    resource: Resource
    host: str  # as Istio reads it; a ServiceEntry's may be a wildcard
    ports: tuple[int, ...]
    visible: frozenset[str] | None  # namespaces it is exported to; None: every namespace

    def visible_from(self, namespaces: Iterable[str]) -> bool:
        """Whether a VirtualService seen in `namespaces` (`*`: all of them) may use it.

        As in Istio, `*` only sees hosts exported to every namespace.
        """
        if self.visible is None:
            return True
        return any(n != EVERY_NAMESPACE and n in self.visible for n in namespaces)


def _port_numbers(entries: object, key: str) -> tuple[int, ...]:
    if not isinstance(entries, list):
        return ()
    numbers = (e.get(key) for e in entries if isinstance(e, dict))
    return tuple(n for n in numbers if isinstance(n, int) and not isinstance(n, bool))


class Registry:
    """The hosts a route may send to, as Istio builds them: Services and ServiceEntries."""

    @classmethod
    def of(cls, scope: Scope) -> Registry:
        return memoized(scope, "registry", cls, lambda: cls(scope))

    def __init__(self, scope: Scope) -> None:
        self._exact: dict[str, list[RegistryHost]] = defaultdict(list)
        self._wildcards: list[RegistryHost] = []
        # Where the input holds Services: a host missing there is missing, not elsewhere.
        self.service_namespaces: set[str] = set()
        self.service_entries = 0
        # A route usually names a handful of hosts many times: look each up once.
        self.lookups: dict[tuple[str, str, frozenset[str]], Lookup] = {}
        for resource in scope.resources:
            kind = resource.kind
            if kind != "Service" and kind != "ServiceEntry":
                continue  # the two kinds in input order: a host's entries keep that order
            group, namespace = api_group(resource), namespace_of(resource)
            if kind == "Service" and group in CORE and resource.name:
                self.service_namespaces.add(namespace)
                annotations = resource.metadata.get("annotations")
                export = (
                    annotations.get(EXPORT_TO_ANNOTATION) if isinstance(annotations, dict) else None
                )
                self._add(
                    RegistryHost(
                        resource,
                        f"{resource.name.lower()}.{namespace}.{CLUSTER_DOMAIN}",
                        _port_numbers(resource.get("spec", "ports"), "port"),
                        exported_to(export.split(","), namespace)
                        if isinstance(export, str)
                        else None,
                    )
                )
            elif kind == "ServiceEntry" and group in ISTIO:
                self.service_entries += 1
                ports = _port_numbers(resource.get("spec", "ports"), "number")
                visible = exported_to(resource.get("spec", "exportTo"), namespace)
                for _, host in items(resource, "spec", "hosts"):
                    if isinstance(host, str) and host.strip():
                        self._add(
                            RegistryHost(resource, istio_host(host, namespace), ports, visible)
                        )

    def _add(self, entry: RegistryHost) -> None:
        if entry.host.startswith("*"):
            self._wildcards.append(entry)
        else:
            self._exact[entry.host].append(entry)

    def lookup(self, host: str) -> list[RegistryHost]:
        """The entries for `host` (as Istio reads it): exact ones, then wildcards covering it."""
        return [
            *self._exact.get(host, []),
            *(e for e in self._wildcards if hosts_match(e.host, host)),
        ]


def seen_from(resource: Resource) -> set[str]:
    """The namespaces whose proxies see `resource`, read from its `spec.exportTo` (`*`: all)."""
    namespace = namespace_of(resource)
    entries = resource.get("spec", "exportTo")
    if not isinstance(entries, list) or not entries:
        return {namespace}
    return {namespace if e == "." else str(e) for e in entries if e is not None}


@dataclass(frozen=True)
class Lookup:
    """What the registry holds for one destination host of a VirtualService."""

    host: str  # as Istio reads it
    entries: tuple[RegistryHost, ...]  # visible where the VirtualService is
    hidden: tuple[RegistryHost, ...]  # defined, but not exported to where it is
    expanded: RegistryHost | None  # the Service cluster DNS would read a `name.ns` as
    checked: bool  # False when the input holds nothing that could define the host


def lookup_destination(registry: Registry, service: Resource, host: str) -> Lookup:
    """Look up a destination `host` of the VirtualService `service` as Istio does.

    The host counts as checked when the input holds Services in the namespace a cluster host
    names, or (for any other host) ServiceEntries: the objects that would define it live here.
    """
    namespace = namespace_of(service)
    where = seen_from(service)
    known = registry.lookups.get((host, namespace, frozenset(where)))
    if known is not None:
        return known
    istio = istio_host(host, namespace)
    found = registry.lookup(istio)
    dns = resolve_host(host, namespace)
    expanded = None
    if not found and dns != istio:
        expanded = next(iter(registry.lookup(dns)), None)
    key = service_key(istio) or service_key(dns)
    checked = (
        bool(found)
        or expanded is not None
        or (key is not None and key[0] in registry.service_namespaces)
        or (key is None and registry.service_entries > 0)
    )
    looked = registry.lookups[host, namespace, frozenset(where)] = Lookup(
        istio,
        tuple(e for e in found if e.visible_from(where)),
        tuple(e for e in found if not e.visible_from(where)),
        expanded,
        checked,
    )
    return looked
