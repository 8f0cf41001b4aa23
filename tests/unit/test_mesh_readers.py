"""The fast paths of the rules' readers answer what the plain readings they replace answer.

`Resource.get`, `items`, `Mesh.select`, `Workloads.select`, `Readings.sent_to` and
`Mesh.subset` take short cuts (a type test before isinstance, a list instead of a generator,
one label's posting as the answer, item views compared, answers remembered); each is checked
here against a straightforward reading, on generated values and on the repository's manifests.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshcanary.manifest import Document, Parsed, Resource, parse_text
from meshcanary.mesh import (
    ISTIO,
    Mesh,
    Readings,
    destinations,
    items,
    mirrors,
    namespace_of,
    of_kind,
    resolve_host,
    selects,
    service_key,
    subsets,
)
from meshcanary.rules import Scope
from meshcanary.rules._workloads import Workloads
from tests.support import DATA, ROOT

KEYS = st.sampled_from(["spec", "hosts", "http", "0", "route", "metadata"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3))
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)
# Rules ask for indexes from 0 (and a bool is an int to Python: asked, it must answer alike).
PATHS = st.lists(st.one_of(KEYS, st.integers(0, 3), st.booleans()), max_size=4)


def _plain_get(data: Any, path: list[Any]) -> Any:
    """`Resource.get` as it read before its fast path."""
    node = data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


class _Labels(dict[str, Any]):
    """A mapping that is not exactly a dict, as objects made in Python may hold."""


def _resource(data: dict[str, Any]) -> Resource:
    return Resource(data, Document("generated.yaml", "", 1, 0))


@settings(max_examples=200)
@given(VALUES, PATHS, st.booleans())
def test_get_answers_what_the_plain_walk_answers(value: Any, path: list[Any], wrap: bool) -> None:
    data = {"spec": _Labels(value=value) if wrap else value, "0": value}
    resource = _resource(data)
    assert resource.get(*path) == _plain_get(data, path)
    assert resource.get("spec", *path) == _plain_get(data, ["spec", *path])


@settings(max_examples=200)
@given(VALUES, PATHS)
def test_items_are_the_entries_of_the_list_with_their_paths(value: Any, path: list[Any]) -> None:
    resource = _resource({"spec": value})
    entries = _plain_get(resource.data, ["spec", *path])
    expected = (
        [(["spec", *path, i], e) for i, e in enumerate(entries)]
        if isinstance(entries, list)
        else []
    )
    assert items(resource, "spec", *path) == expected


LABEL_KEYS = st.sampled_from(["app", "version", "tier", "team"])
LABEL_VALUES = st.sampled_from(["a", "b", "v1"])
LABEL_MAPS = st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=3)


def _deployment(index: int, namespace: str, pod: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"d{index}", "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": pod}}},
    }


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), LABEL_MAPS), max_size=8),
    st.lists(LABEL_MAPS, max_size=3),
    st.sampled_from(["a", "b", "c"]),
)
def test_select_answers_what_a_scan_of_the_namespace_answers(
    pods: list[tuple[str, dict[str, str]]], selectors: list[dict[str, str]], namespace: str
) -> None:
    resources = [_resource(_deployment(i, ns, pod)) for i, (ns, pod) in enumerate(pods)]
    scope = Scope(resources)
    wanted: dict[str, str] = {}
    agree = all(wanted.setdefault(k, v) == v for one in selectors for k, v in one.items())

    def scan(where: list[Resource]) -> list[Resource]:
        return [r for r in where if agree and selects(selectors, _pod(r))]

    in_namespace = scan([r for r in resources if namespace_of(r) == namespace])
    assert Mesh.of(scope).select(namespace, selectors) == in_namespace
    workloads = Workloads.of(scope)
    assert [w.resource for w in workloads.select(namespace, selectors)] == in_namespace
    everywhere = sorted(scan(resources), key=lambda r: (namespace_of(r), resources.index(r)))
    assert [w.resource for w in workloads.select(None, selectors)] == everywhere


def _pod(resource: Resource) -> dict[str, str]:
    pod: dict[str, str] = resource.data["spec"]["template"]["metadata"]["labels"]
    return pod


# Hosts `sent_to` leaves out (a wildcard, an empty one, one that is no string) beside two it
# keeps, and a mirror: the repository's manifests route to none of the first.
AWKWARD_ROUTES = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: awkward, namespace: shop}
spec:
  hosts: [awkward]
  http:
  - route:
    - destination: {host: "*.example.com"}
    - destination: {host: " "}
    - destination: {host: 3}
    - destination: {host: reviews, subset: v1}
    mirror: {host: ratings}
"""


def _manifests() -> list[Resource]:
    parsed = Parsed()
    parse_text(AWKWARD_ROUTES, "awkward.yaml", parsed)
    for path in sorted(chain(DATA.rglob("*.yaml"), (ROOT / "examples").rglob("*.yaml"))):
        parse_text(path.read_text(encoding="utf-8"), path.as_posix(), parsed)
    return parsed.resources


def _plain_sent_to(service: Resource) -> list[tuple[Any, str]]:
    """`Readings.sent_to` as a generator read it before it was remembered."""
    found = []
    for destination in chain(destinations(service), mirrors(service)):
        host = service.get(*destination.path, "host")
        if isinstance(host, str) and host.strip() and "*" not in host:
            found.append((destination, host))
    return found


def test_routes_and_subsets_read_once_are_those_read_each_time() -> None:
    resources = _manifests()
    scope = Scope(resources)
    services = of_kind(scope, ISTIO, "VirtualService")
    assert len(services) > 50  # the repository's manifests route enough to compare
    readings, mesh = Readings.of(scope), Mesh.of(scope)
    asked = 0
    for service in services:
        assert list(readings.sent_to(service)) == _plain_sent_to(service)
        assert readings.sent_to(service) is readings.sent_to(service)
        for destination in readings.destinations(service):
            if destination.subset is None:
                continue
            asked += 1
            expected = next(
                (
                    s
                    for r in mesh.destination_rules(destination.host)
                    for s in subsets(r)
                    if s.name == destination.subset
                ),
                None,
            )
            assert mesh.subset(destination.host, destination.subset) == expected
    assert asked > 20


def test_the_repository_manifests_select_as_a_scan_does() -> None:
    resources = _manifests()
    scope = Scope(resources)
    mesh, workloads = Mesh.of(scope), Workloads.of(scope)
    compared = 0
    for rule in of_kind(scope, ISTIO, "DestinationRule"):
        host = rule.get("spec", "host")
        if not isinstance(host, str):
            continue
        key = service_key(resolve_host(host, namespace_of(rule)))
        if key is None:
            continue
        namespace = key[0]
        for subset in subsets(rule):
            pods = [
                (d, d.get("spec", "template", "metadata", "labels") or {})
                for d in mesh.deployments.get(namespace, [])
            ]
            expected = [d for d, pod in pods if selects([subset.labels], pod)]
            assert mesh.select(namespace, [subset.labels]) == expected
            chosen = workloads.select(namespace, [subset.labels])
            assert [w.resource for w in chosen if w.resource.kind == "Deployment"] == expected
            compared += 1
    assert compared > 20
