"""The rules over Gateway API routes: the renderer's shape passes every rule, hostnames
intersect as the Gateway API defines it, malformed routes never make a rule raise, and a large
rendered input yields exactly the findings planted in it."""

from __future__ import annotations

import pytest

from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Problem
from meshcanary.rules import Scope, run
from meshcanary.rules._gateway_api import hostnames_intersect
from tests.support import ROOT

RENDERED = ROOT / "tests" / "rules" / "service-selects-all-versions" / "pass"
SAMPLE = RENDERED / "gateway-api-rendered.yaml"


def _resources(text: str, file: str = "routes.yaml") -> list[Resource]:
    parsed = Parsed()
    parse_text(text, file, parsed)
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    return parsed.resources


def _shown(problems: list[Problem]) -> str:
    return "\n".join(f"[{p.rule}] {p.format()}" for p in problems)


def test_the_rendered_gateway_api_shape_has_no_finding_at_all() -> None:
    resources = _resources(SAMPLE.read_text(encoding="utf-8"), str(SAMPLE))
    assert {r.kind for r in resources} >= {"Gateway", "HTTPRoute", "Service", "Deployment"}
    problems = run(Scope(resources))  # every rule, info included
    assert problems == [], _shown(problems)


def _line(text: str, *steps: str) -> int:
    """The line (1-based) of the last of `steps`, each found after the one before."""
    at = 0
    for step in steps:
        at = text.index(step, at)
    return text.count("\n", 0, at) + 1


def test_a_per_version_service_no_route_names_still_breaks_service_selects_all_versions() -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("- name: micro-api-v1\n", "- name: x\n")
    problems = [p for p in run(Scope(_resources(text))) if p.rule == "service-selects-all-versions"]
    # micro-api-v1's selector, which no backendRef names now
    assert [p.location.line for p in problems] == [
        _line(text, "name: micro-api-v1", "selector:", "version: v1")
    ]


@pytest.mark.parametrize(
    ("listener", "route", "intersect"),
    [
        # The examples of HTTPRoute's `hostnames` description.
        ("test.example.com", "test.example.com", True),
        ("test.example.com", "*.example.com", True),
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "test.example.com", True),
        ("*.example.com", "foo.test.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "test.example.net", False),
        ("test.example.com", "Test.Example.com", True),
        ("*.example.com", "*.foo.example.com", True),
        ("*.foo.example.com", "*.bar.example.com", False),
        ("test.example.com", "best.example.com", False),
        ("*.example.com", "notexample.com", False),
    ],
)
def test_hostnames_intersect_as_the_gateway_api_defines(
    listener: str, route: str, intersect: bool
) -> None:
    assert hostnames_intersect(listener, route) is intersect
    assert hostnames_intersect(route, listener) is intersect


MALFORMED = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: shop}
spec:
  parentRefs: [null, 3, {name: 4}, {name: nope}, {name: g, port: "x", sectionName: 5}, {kind: Service, group: "", name: s, port: true}]
  hostnames: [null, 3, ""]
  rules:
    - null
    - {backendRefs: 3, matches: 4}
    - backendRefs: [null, {name: 3}, {name: x, weight: "a", port: "x"}, {name: y, kind: 5, group: [1]}]
    - matches: [null, {headers: 3, path: 5, queryParams: [null, 4]}, {1: a, path: {value: 2}}]
      filters: [null, {requestMirror: 3}, {requestMirror: {backendRef: [1]}}]
      backendRefs: [{name: s, port: 80, filters: 7}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: broken, namespace: shop}
spec:
  parentRefs: {a: b}
  rules: [{matches: [{method: {1: 2, service: x}}, {method: 3}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: odd}
spec: [1, 2]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: shop}
spec:
  listeners:
    - null
    - {name: 3}
    - {name: a, allowedRoutes: 3, hostname: 4, port: "x", protocol: 5}
    - {name: b, allowedRoutes: {namespaces: 3, kinds: [null, {kind: 3}, {kind: HTTPRoute, group: 4}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: h, namespace: shop}
spec: {listeners: {a: b}}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: broken, namespace: other}
spec: {from: 3, to: [null]}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: broken2, namespace: other}
spec: {from: [null, {group: 3}], to: [{group: null, kind: Service}]}
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: shop}
spec: {selector: [a], ports: [null, {port: "x"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: other}
"""


def test_rules_never_raise_on_malformed_gateway_api_objects() -> None:
    problems = run(Scope(_resources(MALFORMED)))
    assert all(isinstance(p, Problem) for p in problems)
    # The well-formed parts are still read.
    assert {"parent-exists", "backend-exists"} <= {p.rule for p in problems}


def _service(app: str, version: str | None = None) -> str:
    name = f"{app}-{version}" if version else app
    selector = f"{{app: {app}, version: {version}}}" if version else f"{{app: {app}}}"
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  selector: {selector}\n  ports: [{{name: http, port: 80}}]\n"
    )


def _deployment(app: str, version: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {app}-{version}, "
        f"namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: {app}, version: {version}}}}}\n"
        f"  template:\n    metadata: {{labels: {{app: {app}, version: {version}}}}}\n"
        f"    spec: {{containers: [{{name: {app}, image: 'shop/{app}:1.0', "
        f"ports: [{{containerPort: 80}}]}}]}}\n"
    )


def _route(name: str, parent: str, hostnames: str, first: str, weights: tuple[int, int]) -> str:
    app = name.rpartition("-")[0]
    return (
        f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  parentRefs: [{parent}]\n  hostnames: [{hostnames}]\n  rules:\n"
        f"    - backendRefs:\n        - {{name: {first}, port: 80, weight: {weights[0]}}}\n"
        f"        - {{name: {app}-v2, port: 80, weight: {weights[1]}}}\n"
    )


def test_a_large_rendered_input_yields_exactly_the_planted_findings() -> None:
    gateway = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
        "metadata: {name: public, namespace: shop}\nspec:\n  gatewayClassName: istio\n"
        "  listeners: [{name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}]\n"
    )
    documents = [gateway]
    for index in range(400):
        app = f"app-{index}"
        documents += [_service(app), _service(app, "v1"), _service(app, "v2")]
        documents += [_deployment(app, "v1"), _deployment(app, "v2")]
        host = f"{app}.example.com" if index != 7 else f"{app}.example.net"
        first = f"{app}-v1" if index != 11 else app  # the base Service: both versions
        weights = (90, 10) if index != 13 else (95, 10)
        documents.append(_route(f"{app}-public", "{name: public}", host, first, weights))
        mesh = "{group: '', kind: Service, name: " + app + "}"
        documents.append(_route(f"{app}-mesh", mesh, "", f"{app}-v1", (90, 10)))
    # A second route for app-3's hostname on the listener the first takes with the Gateway.
    second = "{name: public, sectionName: http}"
    documents.append(_route("app-3-again", second, "app-3.example.com", "app-3-v1", (50, 50)))
    problems = run(Scope(_resources("---\n".join(documents))))
    found = sorted((p.rule, p.resource.name if p.resource else "") for p in problems)
    assert found == [
        ("backend-selects-one-version", "app-11-public"),
        ("listener-allows-route", "app-7-public"),
        ("routes-conflict", "app-3-again"),
        ("weights-sum-100", "app-13-public"),
    ], _shown(problems)


def test_the_rendered_shape_without_its_mesh_route_leaves_in_mesh_callers_unweighted() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    # The east-west route is bound to the Gateway instead of the Service: both routes are.
    gamma = '    - group: ""\n      kind: Service\n      name: micro-api\n      port: 19090\n'
    assert gamma in text
    text = text.replace(gamma, "    - name: micro-gateway\n")
    problems = [p for p in run(Scope(_resources(text))) if p.rule == "mesh-unweighted"]
    assert [p.location.line for p in problems] == [
        _line(text, "name: micro-api\n", "parentRefs:"),
        _line(text, "name: micro-api-gateways", "parentRefs:"),
    ], _shown(problems)
    assert "in-mesh callers of Service micro-api bypass" in problems[0].message
    assert problems[0].hint.startswith("add the Service to parentRefs")


def test_the_rendered_shape_with_its_new_version_scaled_to_zero_sends_it_no_weight() -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("replicas: 2", "replicas: 0")
    problems = [p for p in run(Scope(_resources(text))) if p.rule == "weight-without-replicas"]
    # micro-api-v2, at weight 100 in both routes
    assert [p.location.line for p in problems] == [
        _line(text, "name: micro-api\n", "name: micro-api-v2", "weight: 100"),
        _line(text, "name: micro-api-gateways", "name: micro-api-v2", "weight: 100"),
    ], _shown(problems)
    assert problems[0].message.startswith("weight 100 goes to Service micro-dev/micro-api-v2")


def test_many_gateway_routes_report_exactly_the_services_no_route_is_bound_to() -> None:
    documents = []
    for index in range(400):
        app = f"app-{index}"
        documents += [_service(app), _service(app, "v1"), _service(app, "v2")]
        documents += [_deployment(app, "v1"), _deployment(app, "v2")]
        documents.append(_route(f"{app}-public", "{name: public}", "", f"{app}-v1", (90, 10)))
        if index % 100 != 0:
            mesh = "{group: '', kind: Service, name: " + app + "}"
            documents.append(_route(f"{app}-mesh", mesh, "", f"{app}-v1", (90, 10)))
    problems = run(Scope(_resources("---\n".join(documents))))
    found = sorted(p.resource.name for p in problems if p.rule == "mesh-unweighted" and p.resource)
    assert found == ["app-0-public", "app-100-public", "app-200-public", "app-300-public"]
