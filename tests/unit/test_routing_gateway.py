"""Gateway API routes in routing's decision tables, side by side with the Istio routes that
send every request to the same Deployments with the same probabilities."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from meshcanary import routing
from meshcanary.errors import InputError
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.routing import Target

DATA = Path(__file__).parent.parent / "data" / "routing-gateway"
WORKLOADS = """\
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v1, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: api, version: v1}}
  template: {metadata: {labels: {app: api, version: v1}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v2, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: api, version: v2}}
  template: {metadata: {labels: {app: api, version: v2}}}
"""
SUBSETS = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
"""
PER_VERSION = """\
apiVersion: v1
kind: Service
metadata: {name: api-v1, namespace: shop}
spec:
  selector: {app: api, version: v1}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api-v2, namespace: shop}
spec:
  selector: {app: api, version: v2}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: shop}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
"""
MESH_PARENT = '{group: "", kind: Service, name: api, port: 8080}'
MESH = ("mesh", "api.shop.svc.cluster.local", "http")
PUBLIC = ("shop/public", "api.example.com", "http")
V1, V2 = Target(("api-v1",)), Target(("api-v2",))
WEIGHTED = (
    "    - route:\n"
    "        - {destination: {host: api, subset: v1}, weight: %d}\n"
    "        - {destination: {host: api, subset: v2}, weight: %d}\n"
)
BACKENDS = (
    "    - backendRefs:\n"
    "        - {name: api-v1, port: 8080, weight: %d}\n"
    "        - {name: api-v2, port: 8080, weight: %d}\n"
)
PIN = (
    "    - match: [{headers: {x-canary: {exact: always}}}]\n"
    "      route: [{destination: {host: api, subset: v2}}]\n"
)
PIN_RULE = (
    "    - matches: [{headers: [{name: X-Canary, type: Exact, value: always}]}]\n"
    "      backendRefs: [{name: api-v2, port: 8080}]\n"
)
COOKIE = "^(.*?;)?(canary=always)(;.*)?$"


def read(*texts: str) -> list[Resource]:
    parsed = Parsed()
    for number, text in enumerate(texts):
        parse_text(text, f"inline-{number}.yaml", parsed)
    assert parsed.problems == []
    return parsed.resources


def istio(http: str, gateways: str = "[mesh]", hosts: str = "[api]") -> dict[routing.Key, list]:
    service = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: api, namespace: shop}\n"
        f"spec:\n  hosts: {hosts}\n  gateways: {gateways}\n  http:\n{http}"
    )
    return routing.table(read(WORKLOADS, SUBSETS, service)).routes


def http_route(rules: str, parent: str = MESH_PARENT, extra: str = "", name: str = "api") -> str:
    return (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  parentRefs: [{parent}]\n{extra}  rules:\n{rules}"
    )


def gateway_api(rules: str, parent: str = MESH_PARENT, extra: str = "") -> dict[routing.Key, list]:
    return routing.table(read(WORKLOADS, PER_VERSION, http_route(rules, parent, extra))).routes


def test_weights_on_the_mesh_are_the_same_shares() -> None:
    assert gateway_api(BACKENDS % (90, 10)) == istio(WEIGHTED % (90, 10))
    (decision,) = gateway_api(BACKENDS % (90, 10))[MESH]
    assert decision.catch_all
    assert decision.action == {V1: Fraction(9, 10), V2: Fraction(1, 10)}
    assert decision.sources[V2] == ("spec", "rules", 0, "backendRefs", 1, "weight")
    # Weights are shares of their total, as Istio's are.
    assert gateway_api(BACKENDS % (9, 1)) == istio(WEIGHTED % (90, 10))


def test_other_weights_are_another_table() -> None:
    assert gateway_api(BACKENDS % (80, 20)) != istio(WEIGHTED % (90, 10))
    assert gateway_api(BACKENDS % (90, 10)) != istio(WEIGHTED % (100, 0))


def test_a_backend_without_weight_counts_one_and_weight_zero_none() -> None:
    even = "    - backendRefs: [{name: api-v1, port: 8080}, {name: api-v2, port: 8080}]\n"
    assert gateway_api(even) == istio(WEIGHTED % (50, 50))
    assert gateway_api(BACKENDS % (0, 100)) == istio(WEIGHTED % (0, 100))
    # A rule with no weight left returns 500s: it reaches nothing, as Istio's would.
    (nothing,) = gateway_api(BACKENDS % (0, 0))[MESH]
    assert nothing.action == {}


def test_a_header_pin_ahead_of_weights() -> None:
    assert gateway_api(PIN_RULE + BACKENDS % (90, 10)) == istio(PIN + WEIGHTED % (90, 10))
    pin, weighted = gateway_api(PIN_RULE + BACKENDS % (90, 10))[MESH]
    assert pin.condition == {"headers": {"x-canary": {"exact": "always"}}}
    assert pin.action == {V2: 1} and weighted.catch_all
    # The pin to another version is another table.
    other = PIN_RULE.replace("api-v2", "api-v1")
    assert gateway_api(other + BACKENDS % (90, 10)) != istio(PIN + WEIGHTED % (90, 10))


def test_a_cookie_pin_is_a_regex_on_the_cookie_header() -> None:
    rule = (
        f"    - matches: [{{headers: [{{name: cookie, type: RegularExpression, value: '{COOKIE}'}}]}}]\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    pin = (
        f"    - match: [{{headers: {{cookie: {{regex: '{COOKIE}'}}}}}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
    )
    assert gateway_api(rule + BACKENDS % (90, 10)) == istio(pin + WEIGHTED % (90, 10))
    exact = pin.replace("regex:", "exact:")
    assert gateway_api(rule + BACKENDS % (90, 10)) != istio(exact + WEIGHTED % (90, 10))


def test_a_gateway_route_with_hostnames() -> None:
    hosts = "  hostnames: [api.example.com, API.shop.example.com]\n"
    found = gateway_api(BACKENDS % (90, 10), "{name: public}", hosts)
    expected = istio(WEIGHTED % (90, 10), "[public]", "[api.example.com, api.shop.example.com]")
    assert found == expected
    assert set(found) == {PUBLIC, ("shop/public", "api.shop.example.com", "http")}
    # Without hostnames, a route takes every host of its listeners: `*`, as Istio writes it.
    assert gateway_api(BACKENDS % (90, 10), "{name: public}") == istio(
        WEIGHTED % (90, 10), "[public]", "['*']"
    )
    # A Gateway of the same name in another namespace is another key.
    elsewhere = gateway_api(BACKENDS % (90, 10), "{name: public, namespace: edge}", hosts)
    assert set(elsewhere) == {
        ("edge/public", h, "http") for h in ("api.example.com", "api.shop.example.com")
    }


def test_a_route_the_gateway_does_not_accept_routes_nothing() -> None:
    hosts = "  hostnames: [api.example.com]\n"
    assert gateway_api(BACKENDS % (90, 10), "{name: public, sectionName: https}", hosts) == {}
    assert gateway_api(BACKENDS % (90, 10), "{name: public, port: 443}", hosts) == {}
    # The Gateway's only listener, named or by port, narrows nothing.
    for parent in ("{name: public, sectionName: http}", "{name: public, port: 80}"):
        assert gateway_api(BACKENDS % (90, 10), parent, hosts) == istio(
            WEIGHTED % (90, 10), "[public]", "[api.example.com]"
        )
    # A listener takes routes of its own namespace unless it says otherwise.
    outside = http_route(BACKENDS % (90, 10), "{name: public, namespace: shop}", hosts)
    outside = outside.replace("namespace: shop}", "namespace: edge}", 1)
    assert routing.table(read(WORKLOADS, PER_VERSION, outside)).routes == {}
    every = PER_VERSION.replace(
        "protocol: HTTP}", "protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}"
    )
    assert set(routing.table(read(WORKLOADS, every, outside)).routes) == {PUBLIC}
    # ... and routes of the kinds its protocol carries: no TCPRoute on an HTTP listener.
    tcp = outside.replace("kind: HTTPRoute", "kind: TCPRoute").replace(
        "namespace: edge}", "namespace: shop}"
    )
    assert routing.table(read(WORKLOADS, PER_VERSION, tcp)).routes == {}


def test_a_listener_among_several_is_a_port_condition() -> None:
    two = PER_VERSION.replace(
        "listeners: [{name: http, port: 80, protocol: HTTP}]",
        "listeners: [{name: http, port: 80, protocol: HTTP}, {name: alt, port: 8000, protocol: HTTP}]",
    )
    route = http_route(
        BACKENDS % (90, 10), "{name: public, sectionName: alt}", "  hostnames: [api.example.com]\n"
    )
    found = routing.table(read(WORKLOADS, two, route)).routes
    expected = istio(
        "    - match: [{port: 8000}]\n"
        + (WEIGHTED % (90, 10)).replace("    - route", "      route"),
        "[public]",
        "[api.example.com]",
    )
    assert found == expected
    assert found[PUBLIC][0].condition == {"port": 8000}


def test_mirroring_a_tenth() -> None:
    def mirrored(percent: str) -> str:
        return (
            BACKENDS % (100, 0)
            + "      filters:\n"
            + "        - type: RequestMirror\n"
            + f"          requestMirror: {{backendRef: {{name: api-v2, port: 8080}}{percent}}}\n"
        )

    mirror = WEIGHTED % (100, 0) + "      mirror: {host: api, subset: v2}\n"
    tenth = mirror + "      mirrorPercentage: {value: 10}\n"
    assert gateway_api(mirrored(", percent: 10")) == istio(tenth)
    assert gateway_api(mirrored(", fraction: {numerator: 1, denominator: 10}")) == istio(tenth)
    assert gateway_api(mirrored(", fraction: {numerator: 10}")) == istio(tenth)
    assert gateway_api(mirrored(", percent: 20")) != istio(tenth)
    # Neither says a percentage: every request is copied.
    assert gateway_api(mirrored("")) == istio(mirror)
    assert gateway_api(mirrored(", percent: 100")) == istio(mirror)
    assert gateway_api(mirrored(", percent: 10")) != istio(mirror)


def test_timeout_and_header_modifiers() -> None:
    rule = BACKENDS % (90, 10) + (
        "      timeouts: {request: 10s}\n"
        "      filters:\n"
        "        - type: RequestHeaderModifier\n"
        "          requestHeaderModifier:\n"
        "            set: [{name: x-env, value: dev}]\n"
        "            add: [{name: x-via, value: gw}]\n"
        "        - type: ResponseHeaderModifier\n"
        "          responseHeaderModifier: {remove: [x-debug]}\n"
    )
    route = WEIGHTED % (90, 10) + (
        "      timeout: 10s\n"
        "      headers:\n"
        "        request: {set: {x-env: dev}, add: {x-via: gw}}\n"
        "        response: {remove: [x-debug]}\n"
    )
    assert gateway_api(rule) == istio(route)
    assert gateway_api(rule) != istio(route.replace("10s", "5s"))
    assert gateway_api(rule) != istio(route.replace("x-env: dev", "x-env: prod"))
    # A backend request timeout is Gateway API's own: no Istio route equals it.
    both = rule.replace("{request: 10s}", "{request: 10s, backendRequest: 2s}")
    assert gateway_api(both) != istio(route)


def test_a_rewrite_of_the_host_and_of_an_exact_path() -> None:
    rule = (
        "    - matches: [{path: {type: Exact, value: /old}}]\n"
        "      filters:\n"
        "        - type: URLRewrite\n"
        "          urlRewrite: {hostname: api.internal, path: {type: ReplaceFullPath, "
        "replaceFullPath: /new}}\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    route = (
        "    - match: [{uri: {exact: /old}}]\n"
        "      rewrite: {authority: api.internal, uri: /new}\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
    )
    assert gateway_api(rule) == istio(route)
    # Behind a prefix, Gateway API replaces element by element: not Istio's string prefix.
    prefix = rule.replace("Exact, value: /old", "PathPrefix, value: /old").replace(
        "type: ReplaceFullPath, replaceFullPath", "type: ReplacePrefixMatch, replacePrefixMatch"
    )
    (decision,) = gateway_api(prefix)[MESH]
    assert "rewrite" in decision.options and "uri" not in decision.options["rewrite"]
    assert decision.options["gateway-api/urlRewritePath"]["replacePrefixMatch"] == "/new"


def test_exact_path_requests() -> None:
    rule = (
        "    - matches: [{path: {type: Exact, value: /checkout}, method: POST}]\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    route = (
        "    - match: [{uri: {exact: /checkout}, method: {exact: POST}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
    )
    assert gateway_api(rule + BACKENDS % (90, 10)) == istio(route + WEIGHTED % (90, 10))
    assert gateway_api(rule + BACKENDS % (90, 10)) != istio(
        route.replace("exact: /checkout", "exact: /checkout/") + WEIGHTED % (90, 10)
    )


def test_a_path_prefix_is_by_path_element_not_istios_string_prefix() -> None:
    rule = (
        "    - matches: [{path: {type: PathPrefix, value: /foo}}]\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    route = (
        "    - match: [{uri: {prefix: /foo}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
    )
    assert gateway_api(rule + BACKENDS % (90, 10)) != istio(route + WEIGHTED % (90, 10))
    # A trailing slash is ignored in a Gateway API prefix: the same condition.
    slash = rule.replace("value: /foo", "value: /foo/")
    assert gateway_api(slash + BACKENDS % (90, 10)) == gateway_api(rule + BACKENDS % (90, 10))
    # The prefix `/` is every request, on both sides.
    root = rule.replace("value: /foo", "value: /")
    assert gateway_api(root) == istio(route.replace("prefix: /foo", "prefix: /"))
    assert gateway_api(root) == istio("    - route: [{destination: {host: api, subset: v2}}]\n")


def test_an_exact_path_goes_before_a_pin_written_first() -> None:
    # Istio takes the header pin first, by order; Gateway API the exact path, by precedence.
    rule = (
        "    - matches: [{path: {type: Exact, value: /x}}]\n"
        "      backendRefs: [{name: api-v1, port: 8080, weight: 50}, {name: api-v2, port: 8080, weight: 50}]\n"
    )
    route = (
        "    - match: [{uri: {exact: /x}}]\n"
        "      route:\n"
        "        - {destination: {host: api, subset: v1}, weight: 50}\n"
        "        - {destination: {host: api, subset: v2}, weight: 50}\n"
    )
    written = gateway_api(PIN_RULE + rule)
    assert written != istio(PIN + route)
    assert [d.condition for d in written[MESH]] == [
        {"uri": {"exact": "/x"}},
        {"headers": {"x-canary": {"exact": "always"}}},
    ]
    assert written == istio(route + PIN)


def test_precedence_across_matches_and_routes() -> None:
    rules = (
        "    - matches: [{headers: [{name: a, value: '1'}]}]\n"
        "      backendRefs: [{name: api-v1, port: 8080}]\n"
        "    - matches:\n"
        "        - {headers: [{name: a, value: '1'}, {name: b, value: '2'}]}\n"
        "        - {path: {value: /short}}\n"
        "        - {path: {value: /longer}}\n"
        "        - {path: {type: RegularExpression, value: '/r.*'}}\n"
        "        - {queryParams: [{name: q, value: v}], headers: [{name: a, value: '1'}]}\n"
        "        - {method: GET}\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    found = gateway_api(rules)[MESH]
    assert [d.condition for d in found] == [
        {"gateway-api/pathPrefix": "/longer"},
        {"gateway-api/pathPrefix": "/short"},
        {"method": {"exact": "GET"}},
        {"headers": {"a": {"exact": "1"}, "b": {"exact": "2"}}},
        {"headers": {"a": {"exact": "1"}}, "queryParams": {"q": {"exact": "v"}}},
        {"headers": {"a": {"exact": "1"}}},
        {"uri": {"regex": "/r.*"}},
    ]
    assert found[-2].action == {V1: 1}
    # A later match of the same header name is ignored, as the spec says; an unquoted value
    # is text.
    repeated = rules.replace("{name: b, value: '2'}", "{name: A, value: '3'}, {name: b, value: 2}")
    assert gateway_api(repeated)[MESH][3].condition == {
        "headers": {"a": {"exact": "1"}, "b": {"exact": "2"}}
    }


def test_precedence_among_routes_of_one_parent_is_age_then_name() -> None:
    def route(name: str, version: str, stamp: str = "") -> str:
        rule = (
            "    - matches: [{headers: [{name: x-user, value: a}]}]\n"
            f"      backendRefs: [{{name: api-{version}, port: 8080}}]\n"
        )
        meta = f"  creationTimestamp: '{stamp}'\n" if stamp else ""
        return http_route(rule, name=name).replace(
            f"metadata: {{name: {name}, namespace: shop}}\n",
            f"metadata:\n  name: {name}\n  namespace: shop\n{meta}",
        )

    def first(*routes: str) -> Target:
        table = routing.table(read(WORKLOADS, PER_VERSION, *routes))
        (decision,) = table.routes[MESH]
        (target,) = decision.action
        return target

    assert first(route("b", "v1"), route("a", "v2")) == V2
    assert first(route("a", "v1"), route("b", "v2")) == V1
    # The oldest route wins whatever its name; one without a time comes after those with one.
    older = route("b", "v1", "2026-01-01T00:00:00Z")
    assert first(older, route("a", "v2", "2026-06-01T00:00:00Z")) == V1
    assert first(route("a", "v2"), older) == V1


def test_a_grpc_route_is_an_http_route_on_the_grpc_path() -> None:
    grpc = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
        "metadata: {name: api, namespace: shop}\n"
        f"spec:\n  parentRefs: [{MESH_PARENT}]\n  rules:\n"
        "    - matches: [{method: {service: shop.Cart, method: Add}}, {method: {service: shop.Pay}}]\n"
        "      backendRefs: [{name: api-v2, port: 8080}]\n"
        "    - backendRefs: [{name: api-v1, port: 8080}]\n"
    )
    route = (
        "    - match: [{uri: {exact: /shop.Cart/Add}}, {uri: {prefix: /shop.Pay/}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - route: [{destination: {host: api, subset: v1}}]\n"
    )
    found = routing.table(read(WORKLOADS, PER_VERSION, grpc)).routes
    assert found == istio(route)
    # Only a method: any service, that method.
    only = grpc.replace("{method: {service: shop.Pay}}", "{method: {method: Get}}")
    (_, get, _) = routing.table(read(WORKLOADS, PER_VERSION, only)).routes[MESH]
    assert get.condition == {"uri": {"regex": "/[^/]+/Get"}}


def test_tcp_and_tls_routes() -> None:
    tcp = (
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\n"
        "metadata: {name: api, namespace: shop}\n"
        f"spec:\n  parentRefs: [{MESH_PARENT}]\n  rules:\n"
        "    - backendRefs: [{name: api-v1, port: 8080, weight: 1}, {name: api-v2, port: 8080, weight: 3}]\n"
    )
    (decision,) = routing.table(read(WORKLOADS, PER_VERSION, tcp)).routes[("mesh", MESH[1], "tcp")]
    assert decision.catch_all and decision.action == {V1: Fraction(1, 4), V2: Fraction(3, 4)}
    tls = (
        tcp.replace("TCPRoute", "TLSRoute")
        .replace(MESH_PARENT, "{name: passthrough}")
        .replace("  rules:", "  hostnames: [api.example.com]\n  rules:")
    )
    (decision,) = routing.table(read(WORKLOADS, PER_VERSION, tls)).routes[
        ("shop/passthrough", "api.example.com", "tls")
    ]
    assert decision.condition == {"sniHosts": ["api.example.com"]}


def test_a_backend_in_another_namespace_needs_a_reference_grant() -> None:
    rule = "    - backendRefs: [{name: api-v2, namespace: shop, port: 8080}]\n"
    # `outer` is no Gateway of the input: the route is taken as attached.
    route = http_route(rule, "{name: outer, namespace: shop}").replace(
        "namespace: shop}", "namespace: edge}", 1
    )
    found = routing.table(read(WORKLOADS, PER_VERSION, route)).routes
    (decision,) = found[("shop/outer", "*", "http")]
    (target,) = decision.action
    assert target.workloads == ("api-v2.shop.svc.cluster.local (no ReferenceGrant)",)
    grant = (
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
        "metadata: {name: edge, namespace: shop}\n"
        "spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: edge}]\n"
        "  to: [{group: '', kind: Service}]\n"
    )
    found = routing.table(read(WORKLOADS, PER_VERSION, route, grant)).routes
    assert found[("shop/outer", "*", "http")][0].action == {V2: 1}


def test_the_sample_render_differs_from_istio_by_in_mesh_calls_to_the_public_host() -> None:
    def table(name: str) -> dict[routing.Key, list]:
        text = (DATA / name).read_text(encoding="utf-8")
        return routing.table(read(text)).routes

    gateway, mesh = table("gateway-api.yaml"), table("istio.yaml")
    # A VirtualService bound to `mesh` routes each of its hosts for in-mesh callers; a GAMMA
    # route routes its Service only.
    assert set(mesh) - set(gateway) == {("mesh", "api.dev.example.com", "http")}
    assert set(gateway) <= set(mesh)
    assert all(gateway[key] == mesh[key] for key in gateway)
    (decision,) = gateway[("mesh", "micro-api.micro-dev.svc.cluster.local", "http")]
    assert decision.action == {Target(("micro-api-v2",)): 1}


def test_a_consumer_route_and_per_backend_filters_have_no_istio_twin() -> None:
    consumer = http_route(
        BACKENDS % (90, 10), '{group: "", kind: Service, name: api, namespace: shop}'
    )
    consumer = consumer.replace("namespace: shop}", "namespace: shop-web}", 1)
    (decision,) = routing.table(read(WORKLOADS, PER_VERSION, consumer)).routes[MESH]
    assert decision.scope == {"gateway-api/consumer": "shop-web"}
    assert routing.table(read(WORKLOADS, PER_VERSION, consumer)).routes != istio(
        WEIGHTED % (90, 10)
    )
    filtered = BACKENDS.replace(
        "weight: %d}\n",
        "weight: %d, filters: [{type: RequestHeaderModifier, "
        "requestHeaderModifier: {set: [{name: x-v, value: '1'}]}}]}\n",
        1,
    )
    assert gateway_api(filtered % (90, 10)) != istio(WEIGHTED % (90, 10))


def test_an_http_route_and_a_grpc_route_on_one_host_the_older_is_taken() -> None:
    grpc = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
        "metadata: {name: %s, namespace: shop}\n"
        f"spec:\n  parentRefs: [{MESH_PARENT}]\n  rules:\n"
        "    - backendRefs: [{name: api-v2, port: 8080}]\n"
    )
    http = "    - backendRefs: [{name: api-v1, port: 8080}]\n"

    def taken(grpc_name: str, http_name: str) -> Target:
        resources = read(WORKLOADS, PER_VERSION, grpc % grpc_name, http_route(http, name=http_name))
        (decision,) = routing.table(resources).routes[MESH]
        (target,) = decision.action
        return target

    assert taken("a", "b") == V2
    assert taken("b", "a") == V1


def test_a_product_of_hostnames_and_matches_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "MAX_DECISIONS", 5)
    rule = (
        "    - matches: [{path: {type: Exact, value: /a}}, {path: {type: Exact, value: /b}}]\n"
        "      backendRefs: [{name: api-v1, port: 8080}]\n"
    )
    hosts = "  hostnames: [a.example.com, b.example.com, c.example.com]\n"
    with pytest.raises(InputError) as raised:
        gateway_api(rule, "{name: public}", hosts)
    (problem,) = raised.value.problems
    assert problem.location.file == "inline-2.yaml"
    assert "more than 5 routing decisions" in problem.message
    monkeypatch.setattr(routing, "MAX_DECISIONS", 6)
    assert len(gateway_api(rule, "{name: public}", hosts)) == 3
