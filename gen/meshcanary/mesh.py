"""How Istio and Kubernetes relate the objects of a mesh, read once for the rules and import.

The shared reading of Istio host names, Kubernetes label selectors, DestinationRule subsets,
VirtualService routes, destinations and gateway references, and `Mesh`, which indexes one
scope's resources by kind, namespace and host once per `check` call so that rules relate
objects with dictionary look-ups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol, TypeVar

from meshcanary.manifest import JsonPath, Resource

ISTIO = ("networking.istio.io",)
APPS = ("apps", "extensions")
CORE = ("",)
CLUSTER_DOMAIN = "svc.cluster.local"
MESH = "mesh"
DEFAULT_NAMESPACE = "default"

Labels = dict[str, str]


class Scope(Protocol):
    """What `Mesh` reads of the rules' scope: its resources, and a place to keep the index."""

    @property
    def resources(self) -> Sequence[Resource]: ...

    @property
    def memo(self) -> dict[str, object]: ...


T = TypeVar("T")


def memoized(scope: Scope, key: str, kind: type[T], build: Callable[[], T]) -> T:
    """The scope's `key` index, built by the first rule that asks and shared by the others."""
    found = scope.memo.get(key)
    if not isinstance(found, kind):
        found = scope.memo[key] = build()
    return found


def api_group(resource: Resource) -> str:
    """`apps` for `apps/v1`, "" for the core group (`v1`)."""
    return resource.api_version.rpartition("/")[0]


def namespace_of(resource: Resource) -> str:
    """The namespace the object lands in; an object without one counts as "default"."""
    return resource.namespace or DEFAULT_NAMESPACE


class Kinds:
    """One scope's resources by kind, in input order: built once, so that each of the many
    rules that want one kind reads only those instead of scanning every resource."""

    @classmethod
    def of(cls, scope: Scope) -> Kinds:
        return memoized(scope, "kinds", cls, lambda: cls(scope.resources))

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.by_kind: dict[str, list[Resource]] = defaultdict(list)
        for resource in resources:
            self.by_kind[resource.kind].append(resource)
        self._in_groups: dict[tuple[str, tuple[str, ...]], list[Resource]] = {}

    def in_groups(self, groups: tuple[str, ...], kind: str) -> list[Resource]:
        """The resources of `kind` in one of `groups`; a new list the caller may change."""
        found = self._in_groups.get((kind, groups))
        if found is None:
            found = self._in_groups[kind, groups] = [
                r for r in self.by_kind.get(kind, ()) if api_group(r) in groups
            ]
        return list(found)


def of_kind(scope: Scope, groups: tuple[str, ...], kind: str) -> list[Resource]:
    """Resources of `kind` in one of the API `groups` (a Gateway API `Gateway` is no Istio one)."""
    return Kinds.of(scope).in_groups(groups, kind)


def items(resource: Resource, *path: str | int) -> list[tuple[list[str | int], Any]]:
    """Each entry of the list at `path`, with its own path; nothing when no list is there."""
    entries = resource.get(*path)
    if not isinstance(entries, list):
        return []  # most asks (a VirtualService's tcp and tls routes): no generator made
    return [([*path, index], entry) for index, entry in enumerate(entries)]


def describe(resource: Resource) -> str:
    """`Deployment shop/checkout-v1`, or the file and line when the object has no name."""
    name = resource.name
    if not name:
        loc = resource.location()
        return f"{resource.kind or 'object'} without a name ({loc.file}:{loc.line})"
    return f"{resource.kind} {namespace_of(resource)}/{name}"


def described_at(resource: Resource, path: JsonPath = ()) -> str:
    """`describe`, then where the object (or its field at `path`) is:
    `Service shop/reviews (app.yaml:3)`."""
    location = resource.location(path)
    return f"{describe(resource)} ({location.file}:{location.line})"


# Hosts ---------------------------------------------------------------------------------------


def resolve_host(host: str, namespace: str) -> str:
    """The fully qualified name Istio reads a short host as.

    `name` → `name.<namespace>.svc.cluster.local`, `name.ns` → `name.ns.svc.cluster.local`,
    `name.ns.svc` → `name.ns.svc.cluster.local`; wildcards and other names are kept.
    """
    host = host.strip().lower()
    if not host or "*" in host:
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{CLUSTER_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.{CLUSTER_DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host


def service_key(host: str) -> tuple[str, str] | None:
    """(namespace, name) of the Kubernetes Service a resolved host names, if it names one."""
    suffix = "." + CLUSTER_DOMAIN
    if not host.endswith(suffix):
        return None
    parts = host.removesuffix(suffix).split(".")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[1], parts[0]


def hosts_match(one: str, other: str) -> bool:
    """Istio's host matching: equal, or one's `*`/`*.suffix` wildcard covers the other."""
    one, other = one.lower(), other.lower()
    if one.startswith("*") and other.startswith("*"):
        shorter, longer = sorted((one[1:], other[1:]), key=len)
        return longer.endswith(shorter)
    if one.startswith("*"):
        return other.endswith(one[1:])
    if other.startswith("*"):
        return one.endswith(other[1:])
    return one == other


# Labels --------------------------------------------------------------------------------------


def _label_value(value: object) -> str:
    # YAML 1.1 reads `true` and `1` as bool and int; Kubernetes would see the text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def labels(value: object) -> Labels | None:
    """A label map from YAML, or None when `value` is not a mapping."""
    if not isinstance(value, dict):
        return None
    # Asked for every selector and pod template of a run: strings, the usual case, as they are.
    return {
        k if isinstance(k, str) else str(k): v if isinstance(v, str) else _label_value(v)
        for k, v in value.items()
    }


def pod_labels(workload: Resource) -> Labels:
    return labels(workload.get("spec", "template", "metadata", "labels")) or {}


def selects(selectors: Iterable[Mapping[str, str]], target: Mapping[str, str]) -> bool:
    """Whether every label of every selector is on `target` (selectors are ANDed)."""
    return all(target.get(k) == v for selector in selectors for k, v in selector.items())


def missing(selector: Mapping[str, str], target: Mapping[str, str]) -> list[str]:
    """The keys of `selector` whose value `target` lacks."""
    return [k for k, v in selector.items() if target.get(k) != v]


def show_labels(value: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items()) or "no labels"


def expression_matches(expression: Mapping[str, Any], target: Mapping[str, str]) -> bool | None:
    """A `matchExpressions` entry against labels; None when its operator is unknown."""
    key = str(expression.get("key", ""))
    operator = expression.get("operator")
    values = expression.get("values")
    allowed = {_label_value(v) for v in values} if isinstance(values, list) else set()
    if operator == "In":
        return key in target and target[key] in allowed
    if operator == "NotIn":
        return key not in target or target[key] not in allowed
    if operator == "Exists":
        return key in target
    if operator == "DoesNotExist":
        return key not in target
    return None


# DestinationRule subsets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Subset:
    """One entry of a DestinationRule's `spec.subsets`."""

    rule: Resource
    index: int
    name: str
    labels: Labels

    @property
    def path(self) -> list[str | int]:
        return ["spec", "subsets", self.index]


def subsets(rule: Resource) -> Iterator[Subset]:
    """The named subsets of a DestinationRule (one without a name cannot be routed to)."""
    entries = rule.get("spec", "subsets")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        yield Subset(rule, index, entry["name"], labels(entry.get("labels")) or {})


# Index ---------------------------------------------------------------------------------------


class Mesh:
    """One scope's Services, Deployments, DestinationRules and Gateways, indexed."""

    @classmethod
    def of(cls, scope: Scope) -> Mesh:
        return memoized(scope, "mesh", cls, lambda: cls(scope))

    def __init__(self, scope: Scope) -> None:
        self.deployments: dict[str, list[Resource]] = defaultdict(list)
        self.services: dict[tuple[str, str], Resource] = {}
        self.gateways: dict[tuple[str, str], Resource] = {}
        self._pods: dict[str, list[tuple[Resource, Labels]]] = defaultdict(list)
        # (namespace, label, value) → positions in `_pods[namespace]`, to select without a scan
        self._by_label: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self._rules: dict[str, list[Resource]] = defaultdict(list)
        self._wildcard_rules: list[tuple[str, Resource]] = []
        self._subsets: dict[tuple[str, str], Subset | None] = {}
        self._readings = Readings.of(scope)  # each rule's subsets, read once for every rule
        self.namespaces: set[str] = {r.namespace or DEFAULT_NAMESPACE for r in scope.resources}
        # Each kind's objects in input order, read from the scope's index by kind rather than
        # by a walk of every object.
        kinds = Kinds.of(scope)
        deployments, pods, by_label = self.deployments, self._pods, self._by_label
        for resource in kinds.in_groups(APPS, "Deployment"):
            namespace = resource.namespace or DEFAULT_NAMESPACE
            deployments[namespace].append(resource)
            template = pod_labels(resource)
            in_namespace = pods[namespace]
            position = len(in_namespace)
            for key, value in template.items():
                by_label[namespace, key, value].append(position)
            in_namespace.append((resource, template))
        for resource in kinds.in_groups(CORE, "Service"):
            if resource.name:
                self.services.setdefault((namespace_of(resource), resource.name), resource)
        for resource in kinds.in_groups(ISTIO, "Gateway"):
            if resource.name:
                self.gateways.setdefault((namespace_of(resource), resource.name), resource)
        for resource in kinds.in_groups(ISTIO, "DestinationRule"):
            host = resource.get("spec", "host")
            if not isinstance(host, str) or not host.strip():
                continue
            resolved = resolve_host(host, namespace_of(resource))
            if "*" in resolved:
                self._wildcard_rules.append((resolved, resource))
            else:
                self._rules[resolved].append(resource)

    def select(self, namespace: str, selectors: Iterable[Mapping[str, str]]) -> list[Resource]:
        """The Deployments in `namespace` whose pod template all `selectors` select."""
        wanted: Labels = {}
        for selector in selectors:
            for key, value in selector.items():
                if wanted.setdefault(key, value) != value:
                    return []  # two selectors disagree: no pod has both values
        pods = self._pods.get(namespace, [])
        if not wanted:
            return [deployment for deployment, _ in pods]
        postings = [self._by_label.get((namespace, k, v), []) for k, v in wanted.items()]
        if len(postings) == 1:  # the posting of the one label is the answer
            return [pods[i][0] for i in postings[0]]
        # `selects` as a comparison of item views (the values are label strings, never None).
        required = wanted.items()
        return [pods[i][0] for i in min(postings, key=len) if required <= pods[i][1].items()]

    def destination_rules(self, host: str) -> list[Resource]:
        """The DestinationRules for a resolved host: exact ones, else the most specific wildcard."""
        exact = self._rules.get(host)
        if exact:
            return exact
        matching = [(h, r) for h, r in self._wildcard_rules if hosts_match(h, host)]
        if not matching:
            return []
        longest = max(len(h) for h, _ in matching)
        return [r for h, r in matching if len(h) == longest]

    def service(self, host: str) -> Resource | None:
        key = service_key(host)
        return self.services.get(key) if key else None

    def subset(self, host: str, name: str) -> Subset | None:
        # Every route to a subset asks, often several rules the same question: answer it once.
        key = (host, name)
        if key in self._subsets:
            return self._subsets[key]
        found = next(
            (
                s
                for r in self.destination_rules(host)
                for s in self._readings.subsets(r)
                if s.name == name
            ),
            None,
        )
        self._subsets[key] = found
        return found

    def subset_deployments(self, host: str, subset: Subset) -> list[Resource] | None:
        """Deployments whose pod template the subset selects, with the host's Service selector.

        None when the host names no Kubernetes Service or its namespace has no Deployment in
        scope: the workloads live elsewhere, so there is nothing to count.
        """
        key = service_key(host)
        if key is None or not self.deployments.get(key[0]):
            return None
        selectors: list[Labels] = [subset.labels]
        service = self.services.get(key)
        if service is not None:
            selectors.append(labels(service.get("spec", "selector")) or {})
        return self.select(key[0], selectors)


# VirtualService routes -----------------------------------------------------------------------

PROTOCOLS = ("http", "tcp", "tls")


@dataclass(frozen=True)
class Destination:
    """A `destination` (or `mirror`) of a VirtualService, and where it sits."""

    service: Resource  # the VirtualService
    path: list[str | int]  # to the mapping with `host` and `subset`
    host: str  # resolved
    subset: str | None
    weight: int | None = None  # None for mirrors; the share of its route otherwise
    weight_path: list[str | int] | None = None
    written: str = field(default="", compare=False, repr=False)  # the host as written

    @property
    def subset_path(self) -> list[str | int]:
        return [*self.path, "subset"]


def destination(
    service: Resource,
    path: list[str | int],
    value: object,
    namespace: str | None = None,
    weight: int | None = None,
    weight_path: list[str | int] | None = None,
) -> Destination | None:
    """The `destination` or `mirror` mapping `value` found at `path`; None when it names no host.

    A short host is read in `namespace`, by default the VirtualService's own; an empty subset
    is none, as in Istio.
    """
    if not isinstance(value, dict):
        return None
    host, subset = value.get("host"), value.get("subset")
    if not isinstance(host, str):
        return None
    return Destination(
        service,
        path,
        resolve_host(host, namespace or namespace_of(service)),
        subset if isinstance(subset, str) and subset else None,
        weight,
        weight_path,
        host,
    )


def routes(service: Resource) -> Iterator[tuple[list[str | int], list[Any]]]:
    """Each `route` list of a VirtualService's http, tcp and tls routes, with its path."""
    for protocol in PROTOCOLS:
        for path, entry in items(service, "spec", protocol):
            route = entry.get("route") if isinstance(entry, dict) else None
            if isinstance(route, list):
                yield [*path, "route"], route


def destinations(service: Resource, namespace: str | None = None) -> Iterator[Destination]:
    """Route destinations with the share of traffic each gets (a lone one without weight: 100).

    `namespace` is where short hosts are read, as in `destination`.
    """
    for path, route in routes(service):
        for index, entry in enumerate(route):
            if not isinstance(entry, dict):
                continue
            weight = entry.get("weight")
            if weight is None and len(route) == 1:
                share: int | None = 100
            elif isinstance(weight, int) and not isinstance(weight, bool):
                share = weight
            else:
                share = None
            found = destination(
                service,
                [*path, index, "destination"],
                entry.get("destination"),
                namespace,
                share,
                [*path, index, "weight"] if weight is not None else None,
            )
            if found is not None:
                yield found


def mirrors(service: Resource) -> Iterator[Destination]:
    """`http[].mirror` and each `http[].mirrors[].destination`."""
    for path, entry in items(service, "spec", "http"):
        if not isinstance(entry, dict):
            continue
        found = destination(service, [*path, "mirror"], entry.get("mirror"))
        if found is not None:
            yield found
        listed = entry.get("mirrors")
        if not isinstance(listed, list):
            continue
        for number, mirror in enumerate(listed):
            value = mirror.get("destination") if isinstance(mirror, dict) else None
            found = destination(service, [*path, "mirrors", number, "destination"], value)
            if found is not None:
                yield found


class Readings:
    """Each VirtualService's destinations and mirrors and each DestinationRule's subsets, read
    once per scope: half a dozen rules walk the same routes, and would each read them again."""

    @classmethod
    def of(cls, scope: Scope) -> Readings:
        return memoized(scope, "readings", cls, cls)

    def __init__(self) -> None:
        # Keyed by the object itself: a Resource compares and hashes by identity.
        self._destinations: dict[Resource, tuple[Destination, ...]] = {}
        self._mirrors: dict[Resource, tuple[Destination, ...]] = {}
        self._subsets: dict[Resource, tuple[Subset, ...]] = {}
        self._sent_to: dict[Resource, tuple[tuple[Destination, str], ...]] = {}

    def destinations(self, service: Resource) -> tuple[Destination, ...]:
        """`destinations(service)`, read in the VirtualService's own namespace."""
        found = self._destinations.get(service)
        if found is None:
            found = self._destinations[service] = tuple(destinations(service))
        return found

    def mirrors(self, service: Resource) -> tuple[Destination, ...]:
        found = self._mirrors.get(service)
        if found is None:
            found = self._mirrors[service] = tuple(mirrors(service))
        return found

    def subsets(self, rule: Resource) -> tuple[Subset, ...]:
        found = self._subsets.get(rule)
        if found is None:
            found = self._subsets[rule] = tuple(subsets(rule))
        return found

    def sent_to(self, service: Resource) -> tuple[tuple[Destination, str], ...]:
        """Each destination and mirror with its host as written, when that names one host
        (is neither empty nor a wildcard: `istio-route-valid` reports those)."""
        found = self._sent_to.get(service)
        if found is None:
            found = self._sent_to[service] = tuple(
                (d, d.written)
                for d in chain(self.destinations(service), self.mirrors(service))
                if d.written.strip() and "*" not in d.written
            )
        return found


def own_hosts(service: Resource) -> set[str]:
    """A VirtualService's `spec.hosts`, short names read in its namespace."""
    namespace = namespace_of(service)
    return {
        resolve_host(h, namespace) for _, h in items(service, "spec", "hosts") if isinstance(h, str)
    }


def bound_gateways(service: Resource) -> list[str]:
    """The names in a VirtualService's `spec.gateways` (`mesh` included)."""
    return [g for _, g in items(service, "spec", "gateways") if isinstance(g, str)]


def gateway_refs(service: Resource) -> Iterator[tuple[list[str | int], str]]:
    """Names in `spec.gateways` and in `match[].gateways` of the http, tcp and tls routes."""
    for path, name in items(service, "spec", "gateways"):
        if isinstance(name, str):
            yield path, name
    for protocol in PROTOCOLS:
        for path, entry in items(service, "spec", protocol):
            matches = entry.get("match") if isinstance(entry, dict) else None
            if not isinstance(matches, list):
                continue
            for number, match in enumerate(matches):
                names = match.get("gateways") if isinstance(match, dict) else None
                if not isinstance(names, list):
                    continue
                for position, name in enumerate(names):
                    if isinstance(name, str):
                        yield [*path, "match", number, "gateways", position], name


def gateway_key(name: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a Gateway reference: `name`, `ns/name` or the old `name.ns…` form."""
    if "/" in name:
        gateway_namespace, _, gateway = name.partition("/")
        return gateway_namespace, gateway
    if "." in name:
        gateway, _, rest = name.partition(".")
        return rest.split(".")[0], gateway
    return namespace, name
