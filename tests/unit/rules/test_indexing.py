"""The rules' shared indexes: resources by kind, each route and subset read once, and
`service-selects-all-versions` answering from them what a plain scan answers.

A large input in one namespace is where an index that scans (or one that is wrong) shows: the
findings must be those of a straightforward reference reading of the rule's documentation.
"""

from __future__ import annotations

import gc
import random

from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.mesh import (
    APPS,
    CORE,
    ISTIO,
    Kinds,
    Readings,
    api_group,
    destinations,
    labels,
    missing,
    namespace_of,
    of_kind,
    pod_labels,
    resolve_host,
    subsets,
)
from meshcanary.rules import Scope, run
from meshcanary.rules import service_selects_all_versions as rule

NAMESPACE = "shop"


def _resources(text: str) -> list[Resource]:
    parsed = Parsed()
    parse_text(text, "many.yaml", parsed)
    assert parsed.problems == []
    return parsed.resources


def _mesh_of_many(apps: int, seed: int) -> str:
    """Many apps in one namespace: some Services select on `version`, on a label only one
    version's pods carry, or on `app.kubernetes.io/name`; DestinationRules name subsets with and
    without Deployments, by full or short host."""
    choose = random.Random(seed)  # noqa: S311 - a fixed seed: the same mesh every run
    documents: list[str] = []
    for index in range(apps):
        app = f"app-{index}"
        selector = {"app": app}
        shape = choose.randrange(5)
        if shape == 1:
            selector["version"] = "v1"
        elif shape == 2:
            selector["track"] = "stable"
        elif shape == 3:
            selector = {"app.kubernetes.io/name": app}
        documents.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {NAMESPACE}}}\n"
            f"spec:\n  selector: {selector}\n  ports: [{{name: http, port: 80}}]\n"
        )
        for version in ("v1", "v2", "v3")[: 1 + choose.randrange(3)]:
            pod = {"app": app, "version": version, "app.kubernetes.io/name": app}
            if version == "v1" and shape == 2:
                pod["track"] = "stable"
            documents.append(
                f"apiVersion: apps/v1\nkind: Deployment\n"
                f"metadata: {{name: {app}-{version}, namespace: {NAMESPACE}}}\n"
                f"spec:\n  selector: {{matchLabels: {pod}}}\n"
                f"  template:\n    metadata: {{labels: {pod}}}\n"
            )
        subset_names = ("v1", "v2", "v3", "v4")[: 1 + choose.randrange(4)]
        host = f"{app}.{NAMESPACE}.svc.cluster.local" if choose.random() < 0.9 else app
        documents.append(
            f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            f"metadata: {{name: {app}, namespace: {NAMESPACE}}}\n"
            f"spec:\n  host: {host}\n  subsets:\n"
            + "".join(f"  - {{name: {v}, labels: {{version: {v}}}}}\n" for v in subset_names)
        )
    return "---\n".join(documents)


def _reference(resources: list[Resource]) -> list[tuple[str, tuple[str | int, ...], str]]:
    """The rule's documentation read literally, with a scan of every resource per question."""
    found: list[tuple[str, tuple[str | int, ...], str]] = []
    for service in resources:
        if service.kind != "Service" or api_group(service) != "":
            continue
        selector = labels(service.get("spec", "selector"))
        if not selector:
            continue
        if "version" in selector:
            found.append((service.name, ("spec", "selector", "version"), "version"))
        app = {k: v for k, v in selector.items() if k in rule.APP_LABELS}
        if not app:
            continue
        namespace = namespace_of(service)
        host = f"{service.name}.{namespace}.svc.cluster.local"
        deployments = [
            r
            for r in resources
            if r.kind == "Deployment" and api_group(r) in APPS and namespace_of(r) == namespace
        ]
        for destination_rule in resources:
            if destination_rule.kind != "DestinationRule":
                continue
            named = destination_rule.get("spec", "host")
            if resolve_host(str(named), namespace_of(destination_rule)) != host:
                continue
            for subset in subsets(destination_rule):
                if not subset.labels:
                    continue
                versions = [
                    d
                    for d in deployments
                    if not missing({**subset.labels, **app}, pod_labels(d))
                    and not missing(app, pod_labels(d))
                ]
                served = [
                    d
                    for d in deployments
                    if not missing(subset.labels, pod_labels(d))
                    and not missing(selector, pod_labels(d))
                ]
                if not versions or served:
                    continue
                lacking = missing(selector, pod_labels(versions[0]))
                if lacking == ["version"]:
                    continue
                found.append((service.name, ("spec", "selector", lacking[0]), subset.name))
    return found


def test_service_selects_all_versions_finds_what_a_plain_scan_finds_in_one_big_namespace() -> None:
    resources = _resources(_mesh_of_many(400, seed=16))
    expected = _reference(resources)
    assert len(expected) > 50, "the input must exercise the rule"
    got = [
        (
            f.resource.name,
            tuple(f.path),
            "version" if "selects on version" in f.message else f.message.split("'")[1],
        )
        for f in rule.check(Scope(resources))
    ]
    assert got == expected


def test_of_kind_reads_the_index_and_keeps_input_order_and_groups() -> None:
    resources = _resources(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: api}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: one}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: two}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
    )
    scope = Scope(resources)
    istio = of_kind(scope, ISTIO, "Gateway")
    assert [g.name for g in istio] == ["one", "two"]
    assert [s.name for s in of_kind(scope, CORE, "Service")] == ["a", "b"]
    assert [g.name for g in scope.of_kind("Gateway")] == ["api", "one", "two"]
    assert [r.name for r in scope.of_kind("Service", "Gateway")] == ["api", "one", "a", "two", "b"]
    # One index per scope, and callers get lists of their own to change.
    assert Kinds.of(scope) is Kinds.of(scope)
    istio.clear()
    assert [g.name for g in of_kind(scope, ISTIO, "Gateway")] == ["one", "two"]


def test_routes_and_subsets_are_read_once_per_scope_and_equal_a_fresh_reading() -> None:
    resources = _resources(_mesh_of_many(20, seed=3))
    scope = Scope(resources)
    readings = Readings.of(scope)
    assert Readings.of(scope) is readings
    for resource in resources:
        assert readings.destinations(resource) == tuple(destinations(resource))
        assert readings.subsets(resource) == tuple(subsets(resource))
        assert readings.subsets(resource) is readings.subsets(resource)


def test_the_rules_leave_the_cycle_collector_as_they_found_it() -> None:
    scope = Scope(_resources(_mesh_of_many(5, seed=1)))
    assert gc.isenabled()
    run(scope)
    assert gc.isenabled()
    gc.disable()
    try:
        run(scope)
        assert not gc.isenabled()
    finally:
        gc.enable()
