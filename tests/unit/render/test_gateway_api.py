"""`routing: gateway-api`: the same release files rendered as Gateway API routes to one Service
per version, built by the real kustomize; and what the Gateway API has no place for, refused at
its line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, Outcome, by_kind, kustomize_build, write
from tests.support.locations import edit

AMBIENT = Path("deploy/overlays/ambient")
MICRO_API = "environments/ambient/micro-api.yaml"
CHECKOUT = "environments/ambient/checkout.yaml"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _named(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in by_kind(resources, kind)}


def test_each_version_gets_a_service_that_selects_it_alone(example_repo: Path) -> None:
    built = kustomize_build(example_repo / AMBIENT / "micro-api")
    services = _named(built, "Service")
    assert sorted(services) == ["micro-api", "micro-api-v1", "micro-api-v2"]
    assert services["micro-api"]["spec"]["selector"] == {"app": "micro-api"}
    for version in ("v1", "v2"):
        service = services[f"micro-api-{version}"]
        assert service["spec"]["selector"] == {"app": "micro-api", "version": version}
        assert service["spec"]["ports"] == services["micro-api"]["spec"]["ports"]
        deployment = _named(built, "Deployment")[f"micro-api-{version}"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
    assert by_kind(built, "VirtualService") == by_kind(built, "DestinationRule") == []


def test_routes_bind_to_the_service_in_the_mesh_and_to_the_gateways_with_the_hosts(
    example_repo: Path,
) -> None:
    routes = _named(_documents(example_repo / AMBIENT / "micro-api/routes.yaml"), "HTTPRoute")
    mesh, ingress = routes["micro-api"]["spec"], routes["micro-api-gateways"]["spec"]
    assert mesh["parentRefs"] == [{"group": "", "kind": "Service", "name": "micro-api"}]
    assert "hostnames" not in mesh  # GAMMA routes by the Service, not by hostnames
    assert ingress["parentRefs"] == [{"name": "micro-gateway"}]
    assert ingress["hostnames"] == [
        "micro-api.micro-ambient.svc.cluster.local",
        "api.ambient.example.com",
    ]
    for spec in (mesh, ingress):
        pin, weighted = spec["rules"]
        assert pin["name"] == "testers"
        assert pin["matches"] == [
            {"headers": [{"name": "x-canary", "type": "Exact", "value": "always"}]}
        ]
        assert pin["backendRefs"] == [{"name": "micro-api-v2", "port": 19090}]
        assert [(b["name"], b["weight"]) for b in weighted["backendRefs"]] == [
            ("micro-api-v1", 80),
            ("micro-api-v2", 20),
        ]
        assert weighted["filters"] == [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"name": "micro-api-v2", "port": 19090},
                    "percent": 10,
                },
            }
        ]
        assert pin["timeouts"] == weighted["timeouts"] == {"request": "5s"}


def test_each_port_gets_its_route_and_the_traffic_policy_each_version(
    example_repo: Path,
) -> None:
    built = kustomize_build(example_repo / AMBIENT / "checkout")
    routes = {**_named(built, "HTTPRoute"), **_named(built, "GRPCRoute")}
    assert [(r["kind"], name) for name, r in sorted(routes.items())] == [
        ("HTTPRoute", "checkout-80"),
        ("GRPCRoute", "checkout-9090"),
    ]
    for port, route in ((80, routes["checkout-80"]), (9090, routes["checkout-9090"])):
        assert route["metadata"]["namespace"] == "micro-ambient"
        [parent] = route["spec"]["parentRefs"]
        assert parent == {"group": "", "kind": "Service", "name": "checkout", "port": port}
        ports = {b["port"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]}
        assert ports == {port}
    rules = _named(built, "DestinationRule")
    assert sorted(rules) == ["checkout-v1", "checkout-v2"]
    assert rules["checkout-v2"]["spec"] == {
        "host": "checkout-v2.micro-ambient.svc.cluster.local",
        "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}},
    }


def test_the_environments_gateway_is_a_gateway_api_gateway(example_repo: Path) -> None:
    [gateway] = by_kind(kustomize_build(example_repo / AMBIENT / "_gateways"), "Gateway")
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["spec"] == {
        "gatewayClassName": "istio",
        "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "api.ambient.example.com"}
        ],
    }


def _rendered(repo: Path, cli: Callable[..., Outcome], path: str) -> list[dict[str, Any]]:
    done = cli("--repo", repo, "-q", "render", "ambient")
    assert done.code == 0, done.err
    return _documents(repo / AMBIENT / path)


def test_a_pin_also_gets_the_later_conditions_that_would_come_first(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    """Istio takes the pin first; the Gateway API takes the longer path first. The pin gets
    the weighted route's path with its own header, a match more specific than the path."""
    edit(example_repo / MICRO_API, "mirror: {version: v2, percent: 10}\n", "")
    edit(
        example_repo / MICRO_API,
        "timeout: 5s\n",
        "timeout: 5s\nrequests:\n  - uri: {prefix: /api}\n",
    )
    route = _rendered(example_repo, cli, "micro-api/routes.yaml")[0]
    pin, weighted = route["spec"]["rules"]
    header = {"name": "x-canary", "type": "Exact", "value": "always"}
    assert pin["matches"] == [
        {"headers": [header]},
        {"path": {"type": "PathPrefix", "value": "/api"}, "headers": [header]},
    ]
    assert weighted["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]


def test_a_grpc_port_matches_the_grpc_method(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    edit(
        example_repo / CHECKOUT,
        '    cookies: {checkout-beta: "on"}\n',
        "    uri: {exact: /shop.Checkout/Pay}\n",
    )
    edit(
        example_repo / CHECKOUT,
        "match:\n",
        "requests:\n  - uri: {prefix: /shop.Checkout/}\nmatch:\n",
    )
    grpc = _rendered(example_repo, cli, "checkout/routes.yaml")[1]
    assert grpc["kind"] == "GRPCRoute"
    pin, weighted = grpc["spec"]["rules"]
    assert pin["matches"] == [
        {"method": {"type": "Exact", "service": "shop.Checkout", "method": "Pay"}}
    ]
    assert weighted["matches"] == [{"method": {"type": "Exact", "service": "shop.Checkout"}}]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            "match:\n",
            "timeout: 5s\nmatch:\n",
            "11:1: error: timeout: a GRPCRoute has no timeout",
            id="timeout",
        ),
        pytest.param(
            '    cookies: {checkout-beta: "on"}\n',
            "    uri: {prefix: /shop}\n",
            "13:10: error: uri {prefix: /shop}: a GRPCRoute matches a gRPC method",
            id="path",
        ),
        pytest.param(
            '    cookies: {checkout-beta: "on"}\n',
            '    queryParams: {debug: {exact: "1"}}\n',
            "13:5: error: queryParams: a GRPCRoute matches the gRPC method (by uri) and headers",
            id="query",
        ),
    ],
)
def test_what_a_grpc_route_has_no_place_for_is_refused(
    example_repo: Path, cli: Callable[..., Outcome], old: str, new: str, message: str
) -> None:
    edit(example_repo / CHECKOUT, old, new)
    refused = cli("--repo", example_repo, "render", "ambient")
    assert refused.code == 2
    assert refused.err.startswith(f"{CHECKOUT}:{message}"), refused.err


def test_options_become_filters(example_repo: Path, cli: Callable[..., Outcome]) -> None:
    edit(
        example_repo / MICRO_API,
        "timeout: 5s\n",
        "requestHeaders: {set: {x-env: ambient}, remove: [x-debug]}\n"
        "rewrite: {authority: internal.example.com}\n"
        "corsPolicy: {allowOrigins: [{exact: 'https://shop.example.com'}], allowMethods: [GET],"
        " maxAge: 90m, allowCredentials: true}\n",
    )
    edit(example_repo / MICRO_API, "percent: 10}", "percent: 0.5}")
    route = _rendered(example_repo, cli, "micro-api/routes.yaml")[0]
    weighted = route["spec"]["rules"][1]
    assert "timeouts" not in weighted
    assert weighted["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"name": "micro-api-v2", "port": 19090},
                "fraction": {"numerator": 1, "denominator": 200},
            },
        },
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "x-env", "value": "ambient"}],
                "remove": ["x-debug"],
            },
        },
        {"type": "URLRewrite", "urlRewrite": {"hostname": "internal.example.com"}},
        {
            "type": "CORS",
            "cors": {
                "allowOrigins": ["https://shop.example.com"],
                "allowMethods": ["GET"],
                "allowCredentials": True,
                "maxAge": 5400,
            },
        },
    ]


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        pytest.param(
            "timeout: 5s\n",
            "retries: {attempts: 3}\n",
            (9, 1),
            "retries: the Gateway API's standard channel has no retries",
            id="retries",
        ),
        pytest.param(
            "timeout: 5s\n",
            "rewrite: {uriRegexRewrite: {match: ^/a, rewrite: /}}\n",
            (9, 11),
            "uriRegexRewrite: the Gateway API rewrites a whole path or a matched prefix",
            id="uri-regex-rewrite",
        ),
        pytest.param(
            "      x-canary: {exact: always}\n",
            "      x-canary: {exact: always}\n    authority: {exact: a.example.com}\n",
            (15, 5),
            "authority: a Gateway API route matches hosts by its hostnames",
            id="authority",
        ),
        pytest.param(
            "      x-canary: {exact: always}\n",
            "      x-canary: {exact: always}\n    uri: {prefix: /a}\n    ignoreUriCase: true\n",
            (16, 5),
            "ignoreUriCase: the Gateway API matches paths as written",
            id="ignore-uri-case",
        ),
        pytest.param(
            "      x-canary: {exact: always}\n",
            "      x-canary: {exact: always}\n    method: {regex: GET|HEAD}\n",
            (15, 13),
            "method {regex: GET|HEAD}: a Gateway API route matches one method exactly",
            id="method-regex",
        ),
        pytest.param(
            "timeout: 5s\n",
            "corsPolicy: {allowOrigins: [{prefix: 'https://'}], unmatchedPreflights: IGNORE}\n",
            (9, 29),
            "an origin of the Gateway API's CORS filter is written out whole",
            id="cors-origin-prefix",
        ),
        pytest.param(
            "timeout: 5s\n",
            "corsPolicy: {maxAge: 1.5s}\n",
            (9, 22),
            "maxAge 1.5s: the Gateway API's CORS filter takes whole seconds",
            id="cors-max-age",
        ),
    ],
)
def test_what_the_gateway_api_has_no_place_for_is_refused_at_its_line(
    example_repo: Path,
    cli: Callable[..., Outcome],
    old: str,
    new: str,
    where: tuple[int, int],
    message: str,
) -> None:
    edit(example_repo / MICRO_API, old, new)
    before = (example_repo / AMBIENT / "micro-api/routes.yaml").read_bytes()

    refused = cli("--repo", example_repo, "render", "ambient")

    assert refused.code == 2
    line, column = where
    first = refused.err.splitlines()[0]
    assert first.startswith(f"{MICRO_API}:{line}:{column}: error: {message}"), refused.err
    assert "hint: " in refused.err
    assert (example_repo / AMBIENT / "micro-api/routes.yaml").read_bytes() == before


def test_a_release_may_keep_istios_api_in_a_gateway_api_environment(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    edit(example_repo / MICRO_API, "service: micro-api\n", "service: micro-api\nrouting: istio\n")
    # Its gateway is then an Istio Gateway too, which configures the pods it selects.
    refused = cli("--repo", example_repo, "render", "ambient")
    assert refused.code == 2
    assert refused.err.startswith(
        "environments/ambient/environment.yaml:13:3: error: gateway micro-gateway needs a selector"
    ), refused.err
    edit(
        example_repo / "environments/ambient/environment.yaml",
        "    servers:\n",
        "    selector: {istio: ingressgateway}\n    servers:\n",
    )
    done = cli("--repo", example_repo, "-q", "render", "ambient")
    assert done.code == 0, done.err
    folder = example_repo / AMBIENT
    assert sorted(p.name for p in (folder / "micro-api").glob("*.yaml")) == [
        "destinationrule.yaml",
        "kustomization.yaml",
        "virtualservice.yaml",
    ]
    # Its VirtualService names the Istio Gateway, which the environment now renders too.
    built = kustomize_build(folder / "_gateways")
    assert sorted((g["apiVersion"], g["metadata"]["name"]) for g in by_kind(built, "Gateway")) == [
        ("gateway.networking.k8s.io/v1", "micro-gateway"),
        ("networking.istio.io/v1", "micro-gateway"),
    ]


def test_routing_needs_routes(example_repo: Path, cli: Callable[..., Outcome]) -> None:
    release = "environments/dev/checkout.yaml"  # method: replicas
    edit(example_repo / release, "method: replicas\n", "method: replicas\nrouting: gateway-api\n")
    refused = cli("--repo", example_repo, "render", "dev")
    assert refused.code == 2
    assert '"routing" needs method: istio' in refused.err


def test_a_service_of_several_ports_needs_the_ports_named(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    text = (example_repo / CHECKOUT).read_text(encoding="utf-8")
    start, end = text.index("ports:\n"), text.index("match:")
    (example_repo / CHECKOUT).write_text(text[:start] + text[end:], encoding="utf-8")
    refused = cli("--repo", example_repo, "render", "ambient")
    assert refused.code == 2
    assert refused.err.startswith(f"{CHECKOUT}:5:10: error: the Service of base")
    assert "has 2 ports; a Gateway API backendRef names one" in refused.err


@pytest.mark.parametrize(
    ("server", "message"),
    [
        pytest.param(
            "{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.example.com],"
            " tls: {mode: MUTUAL, credentialName: cert}}",
            "tls mode MUTUAL: a Gateway API listener terminates",
            id="mutual-tls",
        ),
        pytest.param(
            "{port: {number: 80, name: http, protocol: HTTP}, hosts: [other/a.example.com]}",
            'host "other/a.example.com": a listener cannot narrow routes to namespace other',
            id="namespace-host",
        ),
        pytest.param(
            "{port: {number: 27017, name: mongo, protocol: MONGO}, hosts: ['*']}",
            "protocol MONGO: a Gateway API listener is HTTP, HTTPS, TLS or TCP",
            id="protocol",
        ),
    ],
)
def test_a_server_a_listener_cannot_be_is_refused_at_its_line(
    example_repo: Path, cli: Callable[..., Outcome], server: str, message: str
) -> None:
    environment = example_repo / "environments/ambient/environment.yaml"
    text = environment.read_text(encoding="utf-8")
    old = "      - port: {number: 80, name: http, protocol: HTTP}\n        hosts: [api.ambient.example.com]\n"
    assert old in text
    environment.write_text(text.replace(old, f"      - {server}\n"), encoding="utf-8")
    refused = cli("--repo", example_repo, "render", "ambient")
    assert refused.code == 2
    assert refused.err.startswith("environments/ambient/environment.yaml:15:"), refused.err
    assert message in refused.err


def test_a_weight_change_touches_only_weight_lines_of_the_route_file(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    subprocess.run(["git", "init", "-q"], cwd=example_repo, check=True)
    before = {p: p.read_text(encoding="utf-8") for p in (example_repo / AMBIENT).rglob("*.yaml")}

    done = cli("--repo", example_repo, "set-weights", "ambient", "micro-api", "v1=70", "v2=30")

    assert done.code == 0, done.err
    changed = {
        p
        for p in (example_repo / AMBIENT).rglob("*.yaml")
        if p.read_text(encoding="utf-8") != before.get(p)
    }
    route = example_repo / AMBIENT / "micro-api/routes.yaml"
    assert changed == {route}
    old, new = before[route].splitlines(), route.read_text(encoding="utf-8").splitlines()
    assert len(old) == len(new)
    differ = [(a.strip(), b.strip()) for a, b in zip(old, new, strict=True) if a != b]
    assert differ == [("weight: 80", "weight: 70"), ("weight: 20", "weight: 30")] * 2


def test_an_edit_of_the_environment_file_is_a_gateway_api_render_again(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    environment = example_repo / "environments/ambient/environment.yaml"
    text = environment.read_text(encoding="utf-8")
    write(environment, text.replace("gatewayClassName: istio", "gatewayClassName: cilium"))
    [gateway] = _rendered(example_repo, cli, "_gateways/micro-gateway.yaml")
    assert gateway["spec"]["gatewayClassName"] == "cilium"


@pytest.mark.parametrize(
    ("kind", "name", "field", "file", "decided"),
    [
        (
            "HTTPRoute",
            "micro-api",
            "spec/rules/1/backendRefs/0/weight",
            MICRO_API,
            ("versions", "v1", "weight"),
        ),
        (
            "HTTPRoute",
            "micro-api",
            "spec/rules/1/backendRefs/1/name",
            MICRO_API,
            ("versions", "v2"),
        ),
        ("HTTPRoute", "micro-api", "spec/rules/0/matches/0/headers", MICRO_API, ("match", 0)),
        # A pin's backend is the pin's `version`, as the Istio route's destination is.
        (
            "HTTPRoute",
            "micro-api",
            "spec/rules/0/backendRefs/0/name",
            MICRO_API,
            ("match", 0, "version"),
        ),
        ("HTTPRoute", "micro-api", "spec/rules/1/timeouts/request", MICRO_API, ("timeout",)),
        (
            "HTTPRoute",
            "micro-api",
            "spec/rules/1/filters/0/requestMirror/percent",
            MICRO_API,
            ("mirror",),
        ),
        ("HTTPRoute", "micro-api-gateways", "spec/hostnames/1", MICRO_API, ("hosts", 1)),
        ("HTTPRoute", "micro-api-gateways", "spec/parentRefs/0/name", MICRO_API, ("gateways",)),
        ("GRPCRoute", "checkout-9090", "spec/parentRefs/0/port", CHECKOUT, ("ports", 1)),
        ("GRPCRoute", "checkout-9090", "spec/rules/1/backendRefs/1/port", CHECKOUT, ("ports", 1)),
        ("Service", "checkout-v2", "spec/selector/version", CHECKOUT, ("versions", "v2")),
        (
            "DestinationRule",
            "checkout-v1",
            "spec/trafficPolicy/loadBalancer",
            CHECKOUT,
            ("trafficPolicy", "loadBalancer"),
        ),
        (
            "DestinationRule",
            "checkout-v1",
            "apiVersion",
            "environments/ambient/environment.yaml",
            ("istioApiVersion",),
        ),
        (
            "Gateway",
            "micro-gateway",
            "spec/listeners/0/hostname",
            "environments/ambient/environment.yaml",
            ("gateways", "micro-gateway", "servers"),
        ),
        (
            "Gateway",
            "micro-gateway",
            "spec/gatewayClassName",
            "environments/ambient/environment.yaml",
            ("gatewayClassName",),
        ),
    ],
)
def test_a_finding_on_a_rendered_field_points_where_the_field_was_decided(
    kind: str, name: str, field: str, file: str, decided: tuple[object, ...]
) -> None:
    """The map `check` relocates findings with: the release or environment file's key that
    decided each field of the Gateway API objects."""
    from meshcanary.render.repository import plan

    origins = plan(ROOT, ["ambient"]).provenance.of("ambient", kind, "micro-ambient", name)
    assert origins is not None
    found = origins.find(field.split("/"))
    assert found is not None
    origin, rest = found
    assert origin.file == file
    assert (
        *origin.path,
        *((int(p) if p.isdigit() else p) for p in rest if origin.verbatim),
    ) == decided


def test_tls_and_tcp_ports_and_a_gateway_managed_elsewhere(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    edit(
        example_repo / CHECKOUT,
        "gateways: [mesh]\nports:\n  - {port: 80, protocol: http}\n  - {port: 9090, protocol: grpc}\n"
        'match:\n  - version: v2\n    cookies: {checkout-beta: "on"}\n',
        "hosts: [checkout.example.com]\ngateways: [edge/shared-gateway]\nports:\n"
        "  - {port: 443, protocol: tls, destinationPort: 80}\n  - {port: 9090, protocol: tcp}\n",
    )
    routes = {
        r["metadata"]["name"]: r for r in _rendered(example_repo, cli, "checkout/routes.yaml")
    }
    tls, tcp = routes["checkout-gateways-443"], routes["checkout-gateways-9090"]
    assert (tls["kind"], tcp["kind"]) == ("TLSRoute", "TCPRoute")
    assert tls["spec"]["parentRefs"] == [
        {"name": "shared-gateway", "namespace": "edge", "port": 443}
    ]
    assert tls["spec"]["hostnames"] == ["checkout.example.com"]  # the SNI names
    assert "hostnames" not in tcp["spec"]
    [rule] = tls["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"name": "checkout-v1", "port": 80, "weight": 75},
        {"name": "checkout-v2", "port": 80, "weight": 25},
    ]
    assert {b["port"] for b in tcp["spec"]["rules"][0]["backendRefs"]} == {9090}


def test_a_header_prefix_is_an_re2_expression_from_the_start(
    example_repo: Path, cli: Callable[..., Outcome]
) -> None:
    """Escaped as the cookie pins are (release.routing.re2_escape): only RE2's metacharacters,
    so the value reads as written."""
    edit(example_repo / MICRO_API, "x-canary: {exact: always}", "x-canary: {prefix: 'a b-c.d'}")
    route = _rendered(example_repo, cli, "micro-api/routes.yaml")[0]
    header = route["spec"]["rules"][0]["matches"][0]["headers"][0]
    assert header == {"name": "x-canary", "type": "RegularExpression", "value": r"^a b-c\.d"}
