"""Importing the Gateway API shape: per-version Services, HTTPRoutes, GRPCRoutes, TCPRoutes,
TLSRoutes and gateway.networking.k8s.io Gateways → releases with `routing: gateway-api`, proven
by `--verify`; Istio's own Gateway API samples; and each refusal at its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.__main__ import main
from meshcanary.importer import ImportResult, import_manifests
from meshcanary.importer.context import DROPPED, NORMALIZED, REFUSED
from tests.support import DATA, write

OWN = DATA / "gateway-api-import"
HELLOWORLD = [
    DATA / "helloworld" / "helloworld.yaml",
    DATA / "helloworld-gateway-api" / "helloworld-versions.yaml",
]
TCP_ECHO = DATA / "tcp-echo" / "tcp-echo-services.yaml"
BOOKINFO = DATA / "bookinfo-gateway-api"


def _releases(root: Path, environment: str) -> dict[str, dict[str, Any]]:
    folder = root / "environments" / environment
    return {
        path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "environment.yaml"
    }


def _weights(release: dict[str, Any]) -> dict[str, int]:
    return {name: v["weight"] for name, v in release["versions"].items()}


def _no_route_lost(files: list[Path], result: ImportResult, root: Path, env: str) -> None:
    """Every weight of every input route's backendRefs is in a release file, or the route has
    a refusal (or an accepted --drop)."""
    kept = {w for r in _releases(root, env).values() for w in _weights(r).values()}
    shares = {
        round(100 * w / sum(_weights(r).values()))
        for r in _releases(root, env).values()
        for w in _weights(r).values()
        if sum(_weights(r).values())
    }
    # A refusal or a --drop at the route, or a note that says where its weights went.
    noted = {
        (n.resource.kind, n.resource.name)
        for n in result.notes
        if n.resource is not None
        and (
            n.rule in (REFUSED, DROPPED)
            or (n.rule == NORMALIZED and "/backendRefs" in (n.path or ""))
        )
    }
    for path in files:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not document or not str(document.get("kind", "")).endswith("Route"):
                continue
            identity = (document["kind"], document["metadata"]["name"])
            for rule in document["spec"].get("rules", []):
                refs = rule.get("backendRefs", [])
                total = sum(r.get("weight", 1) for r in refs)
                for ref in refs:
                    weight = ref.get("weight", 1)
                    percent = round(100 * weight / total) if total else 0
                    assert weight in kept or percent in shares or identity in noted, (
                        f"{identity} sends {weight} to {ref['name']}: in no release file, "
                        "and no refusal says why"
                    )


# What imports and verifies ------------------------------------------------------------------


def test_every_carried_http_field_imports_and_verifies(tmp_path: Path) -> None:
    result = import_manifests(tmp_path, [OWN / "web.yaml"], "shop")
    assert result.ok and result.verified, [str(n) for n in (*result.refused, *result.differences)]
    (web,) = _releases(tmp_path, "shop").values()
    assert _weights(web) == {"v1": 90, "v2": 10}
    assert web["gateways"] == ["shop-gateway", "mesh"] and web["hosts"] == ["shop.example.com"]
    assert web["requests"] == [
        {
            "uri": {"prefix": "/api"},
            "queryParams": {"lang": {"exact": "en"}},
            "method": {"exact": "GET"},
        }
    ]
    (pin,) = web["match"]
    assert pin == {
        "name": "testers",
        "version": "v2",
        "headers": {"x-canary": {"exact": "always"}},
        "cookies": {"beta": "on"},
    }
    assert web["mirror"] == {"version": "v2", "percent": 10}
    assert web["timeout"] == "5s" and web["rewrite"] == {"authority": "web.internal"}
    assert web["requestHeaders"] == {
        "set": {"x-served-by": "web"},
        "add": {"x-trace": "on"},
        "remove": ["x-debug"],
    }
    assert web["corsPolicy"]["maxAge"] == "3600s"
    environment = yaml.safe_load((tmp_path / "environments/shop/environment.yaml").read_text())
    assert environment["routing"] == "gateway-api" and environment["gatewayClassName"] == "istio"
    servers = environment["gateways"]["shop-gateway"]["servers"]
    assert servers[1]["tls"] == {"mode": "SIMPLE", "credentialName": "shop-cert"}


def test_grpc_tcp_and_tls_routes_become_ports(tmp_path: Path) -> None:
    result = import_manifests(tmp_path, [OWN / "echo.yaml"], "shop")
    assert result.ok and result.verified, [str(n) for n in (*result.refused, *result.differences)]
    (echo,) = _releases(tmp_path, "shop").values()
    assert echo["ports"] == [
        {"port": 9090, "protocol": "grpc"},
        {"port": 7000, "protocol": "tcp"},
        {"port": 7443, "protocol": "tls", "sniHosts": ["echo.example.com"]},
    ]
    assert echo["match"][0]["uri"] == {"exact": "/echo.Echo/Ping"}
    assert _weights(echo) == {"v1": 70, "v2": 30}


def test_a_pin_the_weighted_rule_outranks_is_refused_at_the_pin(tmp_path: Path) -> None:
    # Without the pin's second match, the Gateway API puts the weighted rule's longer path
    # first for /api requests that also meet the pin: a release's pin comes first, so the
    # release cannot say it. Refused at the pin's rule (verify, which came to the same, would
    # only point at the request).
    text = (OWN / "web.yaml").read_text(encoding="utf-8")
    start = text.index(
        "        - path:\n            type: PathPrefix\n            value: /api\n          method: GET\n          headers:"
    )
    end = text.index(
        "      backendRefs:\n        - name: web-v2\n          port: 80\n      filters:"
    )
    changed = text[:start] + text[end:]
    source = write(tmp_path / "in" / "web.yaml", changed)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [source], "shop")
    assert result.written == () and not list(root.rglob("*.yaml"))
    (refusal,) = result.refused
    assert refusal.message.startswith("the weighted rule's match is more specific than this rule's")
    pin = changed.index("    - name: testers\n")  # the rule the cut match belonged to
    assert (refusal.location.line, refusal.location.column) == (
        changed.count("\n", 0, pin) + 1,
        7,
    )


def test_helloworld_route_90_10(tmp_path: Path) -> None:
    files = [*HELLOWORLD, DATA / "helloworld-gateway-api" / "helloworld-route.yaml"]
    result = import_manifests(tmp_path, files, "staging")
    assert result.ok and result.verified
    (hello,) = _releases(tmp_path, "staging").values()
    assert "routing" not in hello  # the new environment says it, for every release
    environment = (tmp_path / "environments/staging/environment.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(environment)["routing"] == "gateway-api"
    assert _weights(hello) == {"v1": 90, "v2": 10}
    # The sample's Gateway is not among these files: a Gateway managed outside meshcanary.
    assert hello["gateways"] == ["default/helloworld-gateway"] and hello["hosts"] == ["*"]
    assert hello["requests"] == [{"uri": {"exact": "/hello"}}]
    _no_route_lost(files, result, tmp_path, "staging")


def test_helloworld_gateway_and_a_route_to_the_service(tmp_path: Path) -> None:
    files = [*HELLOWORLD, DATA / "helloworld-gateway-api" / "helloworld-gateway.yaml"]
    result = import_manifests(tmp_path, files, "staging")
    assert result.ok and result.verified
    (hello,) = _releases(tmp_path, "staging").values()
    # The route sends to the Service of both versions: the replicas split it, one pod each.
    assert _weights(hello) == {"v1": 50, "v2": 50}
    assert hello["gateways"] == ["helloworld-gateway"]
    environment = yaml.safe_load(
        (tmp_path / "environments/staging/environment.yaml").read_text(encoding="utf-8")
    )
    assert environment["gateways"] == {
        "helloworld-gateway": {
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
            ]
        }
    }
    _no_route_lost(files, result, tmp_path, "staging")


def test_tcp_echo_all_v1_imports_once_its_version_services_may_gain_a_port(tmp_path: Path) -> None:
    files = [TCP_ECHO, DATA / "tcp-echo-gateway-api" / "tcp-echo-all-v1.yaml"]
    refused = import_manifests(tmp_path / "refused", files, "staging")
    where = [(n.location.line, n.location.column, n.message) for n in refused.refused]
    assert where == [
        (
            20,
            3,
            "Service tcp-echo-v1 differs from Service tcp-echo at spec.ports beyond its version: "
            "the renderer makes each version's Service from the base's",
        ),
        (
            32,
            3,
            "Service tcp-echo-v2 differs from Service tcp-echo at spec.ports beyond its version: "
            "the renderer makes each version's Service from the base's",
        ),
    ]
    drops = ("Service/tcp-echo-v1:spec.ports", "Service/tcp-echo-v2:spec.ports")
    result = import_manifests(tmp_path, files, "staging", drops=drops)
    assert result.ok and result.verified
    (echo,) = _releases(tmp_path, "staging").values()
    assert echo["ports"] == [{"port": 31400, "protocol": "tcp", "destinationPort": 9000}]
    assert echo["gateways"] == ["tcp-echo-gateway"]
    assert _weights(echo) == {"v1": 100, "v2": 0}
    _no_route_lost(files, result, tmp_path, "staging")


def test_tcp_echo_20_v2_without_its_services_and_gateway_is_refused(tmp_path: Path) -> None:
    files = [TCP_ECHO, DATA / "tcp-echo-gateway-api" / "tcp-echo-20-v2.yaml"]
    result = import_manifests(tmp_path, files, "staging")
    assert result.written == ()
    # Its backendRefs name Services the files do not hold: no imported service routes to it.
    (refusal,) = result.refused
    assert (refusal.location.file, refusal.location.line, refusal.location.column) == (
        str(files[1]),
        1,
        1,
    )
    assert refusal.message == (
        "TCPRoute tcp-echo is not imported: none of the imported services routes to it"
    )
    _no_route_lost(files, result, tmp_path, "staging")


def test_bookinfo_reviews_90_10_is_bound_to_no_service(tmp_path: Path) -> None:
    files = [
        BOOKINFO / "bookinfo.yaml",
        BOOKINFO / "bookinfo-versions.yaml",
        BOOKINFO / "route-reviews-90-10.yaml",
    ]
    result = import_manifests(tmp_path, files, "staging")
    (refusal,) = result.refused
    assert (refusal.location.file, refusal.location.line, refusal.location.column) == (
        str(files[2]),
        7,
        5,
    )
    assert refusal.message == (
        "parentRef kind Service of group 'gateway.networking.k8s.io': the Gateway API's default "
        'group is gateway.networking.k8s.io, and "To set the core API group (such as for a '
        '"Service" kind referent), Group must be explicitly set to "" (empty string)": this '
        "route is bound to no Service"
    )
    assert result.written == ()
    _no_route_lost(files, result, tmp_path, "staging")


# Refusals, one per field family -------------------------------------------------------------

_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs:
    - group: ""
      kind: Service
      name: web
  rules:
    - backendRefs:
        - name: web-v1
          port: 80
          weight: 90
        - name: web-v2
          port: 80
          weight: 10
"""


def _base_app() -> str:
    """web.yaml's Deployments and Services (not its Gateway or route)."""
    text = (OWN / "web.yaml").read_text(encoding="utf-8")
    return text[: text.index("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway")]


_CATCH_ALL_PIN = _ROUTE.replace(
    "  rules:\n",
    "  rules:\n    - matches:\n        - path: {type: PathPrefix, value: /}\n"
    "      backendRefs:\n        - name: web-v2\n          port: 80\n",
)

# (case, the route or gateway document, the text the refusal stands at, its message's start)
REFUSALS = [
    (
        "the shared Service at weight 0",
        _ROUTE.replace(
            "        - name: web-v1\n          port: 80\n          weight: 90\n"
            "        - name: web-v2\n          port: 80\n          weight: 10\n",
            "        - name: web\n          weight: 0\n          port: 80\n",
        ),
        "0\n",
        "the rule's only backendRef has weight 0",
    ),
    (
        "no parentRefs",
        _ROUTE.replace(
            '  parentRefs:\n    - group: ""\n      kind: Service\n      name: web\n', ""
        ),
        "rules:",
        "HTTPRoute web has no parentRefs: it is bound to nothing",
    ),
    (
        "a pin that takes every request",
        _CATCH_ALL_PIN,
        "- path: {type: PathPrefix",
        "match 0 of this rule takes every request, before the weighted rule",
    ),
    (
        "a value its schema does not allow",
        _ROUTE + "      filters:\n        - type: RequestMirror\n          requestMirror:\n"
        "            backendRef: {name: web-v2, port: 80}\n"
        "            fraction: {denominator: 0, numerator: 1}\n",
        "0, numerator",
        "HTTPRoute web: spec.rules[0].filters[0].requestMirror.fraction.denominator: 0 is less "
        "than the minimum of 1",
    ),
    (
        "backendRef filters",
        _ROUTE.replace(
            "          weight: 10\n",
            "          weight: 10\n          filters:\n            - type: RequestHeaderModifier\n",
        ),
        "filters:\n            - type",
        "backendRef field filters",
    ),
    (
        "sessionPersistence",
        _ROUTE + "      sessionPersistence:\n        sessionName: web\n",
        "sessionPersistence:",
        "rule field sessionPersistence has no place in a release",
    ),
    (
        "retry",
        _ROUTE + "      retry:\n        attempts: 3\n",
        "retry:",
        "rule field retry has no place in a release",
    ),
    (
        "ExtensionRef filter",
        _ROUTE
        + "      filters:\n        - type: ExtensionRef\n          extensionRef: {group: x.io, kind: F, name: f}\n",
        "- type: ExtensionRef",
        "filter ExtensionRef: a release's routes have no such filter",
    ),
    (
        "RequestRedirect filter",
        _ROUTE
        + "      filters:\n        - type: RequestRedirect\n          requestRedirect: {scheme: https}\n",
        "- type: RequestRedirect",
        "filter RequestRedirect",
    ),
    (
        "cross-namespace backendRef",
        _ROUTE.replace(
            "        - name: web-v2\n", "        - name: web-v2\n          namespace: other\n"
        ),
        "other",
        "backendRef to namespace other",
    ),
    (
        "several weighted rules",
        _ROUTE.replace(
            "  rules:\n",
            "  rules:\n    - matches:\n        - path: {type: Exact, value: /a}\n      backendRefs:\n"
            "        - {name: web-v1, port: 80, weight: 50}\n        - {name: web-v2, port: 80, weight: 50}\n",
        ),
        "- matches:\n        - path: {type: Exact, value: /a}",
        "rule 0 splits requests between versions before the last rule",
    ),
    (
        "backendRequest timeout",
        _ROUTE + "      timeouts:\n        backendRequest: 2s\n",
        "backendRequest:",
        "timeouts.backendRequest: a release's timeout is the whole request's",
    ),
    (
        "parentRef of another kind",
        _ROUTE.replace(
            '    - group: ""\n      kind: Service\n', "    - group: x.io\n      kind: Mesh\n"
        ),
        "- group: x.io",
        "parentRef kind Mesh of group 'x.io'",
    ),
    (
        "backendRef to a Service of no version",
        _ROUTE.replace("name: web-v2", "name: elsewhere"),
        "elsewhere",
        "backendRef to Service elsewhere: not a Service of one of the imported versions",
    ),
    (
        "mirror on a pin",
        _ROUTE.replace(
            "  rules:\n",
            "  rules:\n    - matches:\n        - headers: [{name: x-canary, value: always}]\n"
            "      backendRefs: [{name: web-v2, port: 80}]\n      filters:\n"
            "        - type: RequestMirror\n          requestMirror:\n"
            "            backendRef: {name: web-v1, port: 80}\n",
        ),
        "filters:\n        - type: RequestMirror",
        "mirroring on a rule to one version",
    ),
    (
        "a pin without the weighted rule's timeout",
        _ROUTE.replace(
            "  rules:\n",
            "  rules:\n    - matches:\n        - headers: [{name: x-canary, value: always}]\n"
            "      backendRefs: [{name: web-v2, port: 80}]\n",
        )
        + "      timeouts:\n        request: 5s\n",
        "- matches:\n        - headers: [{name: x-canary",
        "this rule has no timeout, but the weighted rule's '5s' would apply to it",
    ),
    (
        "no weighted rule",
        _ROUTE.replace(
            "    - backendRefs:\n",
            "    - matches:\n        - path: {type: Exact, value: /a}\n      backendRefs:\n",
        )
        .replace("          weight: 90\n", "")
        .replace("        - name: web-v2\n          port: 80\n          weight: 10\n", ""),
        "- matches:\n        - path: {type: Exact, value: /a}",
        "the last rule sends some requests to one version, and no rule takes the others",
    ),
    (
        "a match type the renderer never writes",
        _ROUTE.replace(
            "    - backendRefs:\n",
            "    - matches:\n        - path: {type: Unknown, value: /a}\n      backendRefs:\n",
        ),
        "path: {type: Unknown",
        "path type Unknown",
    ),
    (
        "an HTTPRoute of v1alpha1",
        _ROUTE.replace("gateway.networking.k8s.io/v1\n", "gateway.networking.k8s.io/v1alpha1\n", 1),
        "gateway.networking.k8s.io/v1alpha1",
        "HTTPRoute web of gateway.networking.k8s.io/v1alpha1 is not imported",
    ),
    (
        "a route field the renderer never writes",
        _ROUTE.replace("spec:\n", "spec:\n  useDefaultGateways: All\n"),
        "useDefaultGateways",
        "HTTPRoute field useDefaultGateways has no place in a release",
    ),
    (
        "a pin whose backendRef has weight 0",
        _ROUTE.replace(
            "  rules:\n",
            "  rules:\n    - matches:\n        - headers: [{name: x-canary, value: always}]\n"
            "      backendRefs: [{name: web-v2, port: 80, weight: 0}]\n",
        ),
        "0}]",  # the weight
        "the rule's only backendRef has weight 0",
    ),
    (
        "a rule without backendRefs",
        _ROUTE.replace(
            "  rules:\n",
            "  rules:\n    - matches:\n        - headers: [{name: x-canary, value: always}]\n",
        ),
        "- matches:\n        - headers: [{name: x-canary",
        "a rule without backendRefs answers every request with an error",
    ),
    (
        "Gateway addresses",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n"
        "  gatewayClassName: istio\n  addresses:\n    - value: 10.0.0.1\n  listeners:\n"
        "    - {name: http, port: 80, protocol: HTTP}\n---\n" + _ROUTE,
        "addresses:",
        "Gateway field addresses",
    ),
    (
        "listener allowedRoutes from All",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n"
        "  gatewayClassName: istio\n  listeners:\n    - name: http\n      port: 80\n"
        "      protocol: HTTP\n      allowedRoutes:\n        namespaces: {from: All}\n---\n"
        + _ROUTE,
        "allowedRoutes:",
        "allowedRoutes other than the default",
    ),
    (
        "listener tls options",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n"
        "  gatewayClassName: istio\n  listeners:\n    - name: https\n      port: 443\n"
        "      protocol: HTTPS\n      tls:\n        certificateRefs: [{name: c}]\n"
        "        options: {x.io/y: z}\n---\n" + _ROUTE,
        "options:",
        "tls.options: an environment's gateway has a mode and a credential only",
    ),
]


def _position(text: str, marker: str) -> tuple[int, int]:
    offset = text.index(marker)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    if marker.startswith("- "):
        column += 2  # a sequence entry is at its first key
    return line, column


@pytest.mark.parametrize(
    ("document", "marker", "message"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_each_refusal_stands_at_its_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, marker: str, message: str
) -> None:
    app = write(tmp_path / "in" / "app.yaml", _base_app())
    source = write(tmp_path / "in" / "route.yaml", document)
    root = tmp_path / "repo"
    root.mkdir()
    code = main(["--repo", str(root), "import", "--env", "shop", str(app), str(source)])
    err = capsys.readouterr().err
    line, column = _position(document, marker)
    assert f"{source}:{line}:{column}: error: {message}" in err, err
    # A refusal fails the import (exit 1, as the README says for `import`) and writes nothing.
    assert code == 1
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_a_refusal_accepted_with_drop_imports(tmp_path: Path) -> None:
    document = _ROUTE + "      timeouts:\n        backendRequest: 2s\n"
    app = write(tmp_path / "in" / "app.yaml", _base_app())
    source = write(tmp_path / "in" / "route.yaml", document)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(
        root, [app, source], "shop", drops=("HTTPRoute/web:spec.rules[0].timeouts.backendRequest",)
    )
    assert result.ok and result.verified
    assert [n.rule for n in result.notes if n.path and "backendRequest" in n.path] == [DROPPED]


def test_a_gateway_api_gateway_is_refused_where_the_environment_routes_with_istio(
    tmp_path: Path,
) -> None:
    write(tmp_path / "environments" / "staging" / "environment.yaml", "namespace: default\n")
    files = [*HELLOWORLD, DATA / "helloworld-gateway-api" / "helloworld-gateway.yaml"]
    result = import_manifests(tmp_path, files, "staging")
    (refusal,) = result.refused
    assert (refusal.location.line, refusal.location.column) == (1, 13)
    assert refusal.message.startswith(
        "Gateway helloworld-gateway: environments/staging/environment.yaml renders its gateways "
        "as Istio Gateways"
    )
    assert result.written == ()


def test_an_existing_istio_environment_gets_routing_on_the_release(tmp_path: Path) -> None:
    write(tmp_path / "environments" / "staging" / "environment.yaml", "namespace: default\n")
    files = [*HELLOWORLD, DATA / "helloworld-gateway-api" / "helloworld-route.yaml"]
    result = import_manifests(tmp_path, files, "staging")
    assert result.ok and result.verified
    (hello,) = _releases(tmp_path, "staging").values()
    assert hello["routing"] == "gateway-api"


_TLS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
spec:
  gatewayClassName: istio
  listeners:
    - name: tls
      port: 8443
      protocol: TLS
      hostname: vault.example.com
      tls: {mode: Passthrough}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata:
  name: vault
spec:
  parentRefs:
    - {name: edge, sectionName: tls}
  hostnames: [vault.example.com]
  rules:
    - backendRefs:
        - {name: vault-v1, port: 8443, weight: 60}
        - {name: vault-v2, port: 8443, weight: 40}
"""


def _vault(tmp_path: Path, route: str) -> tuple[Path, list[Path]]:
    """grpc.yaml's application as `vault`, with one TLS port, and `route` (Gateway, TLSRoute)."""
    app = (OWN / "grpc.yaml").read_text(encoding="utf-8")
    app = app[: app.index("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway")]
    app = app.replace("quote", "vault").replace(
        "{name: grpc, port: 9090}", "{name: tls, port: 8443}"
    )
    files = [write(tmp_path / "in" / "app.yaml", app), write(tmp_path / "in" / "tls.yaml", route)]
    root = tmp_path / "repo"
    root.mkdir()
    return root, files


def test_a_tls_route_through_a_passthrough_listener(tmp_path: Path) -> None:
    root, files = _vault(tmp_path, _TLS)
    result = import_manifests(root, files, "edge")
    assert result.ok and result.verified
    (vault,) = _releases(root, "edge").values()
    assert vault["ports"] == [{"port": 8443, "protocol": "tls", "sniHosts": ["vault.example.com"]}]
    environment = yaml.safe_load((root / "environments/edge/environment.yaml").read_text())
    (server,) = environment["gateways"]["edge"]["servers"]
    assert server["tls"] == {"mode": "PASSTHROUGH"} and server["port"]["protocol"] == "TLS"


def test_a_tls_route_without_hostnames_on_a_gateway_is_refused(tmp_path: Path) -> None:
    route = _TLS.replace("  hostnames: [vault.example.com]\n", "")
    root, files = _vault(tmp_path, route)
    result = import_manifests(root, files, "edge")
    (refusal,) = result.refused
    assert (refusal.location.line, refusal.location.column) == _position(route, "parentRefs:")
    assert refusal.message.startswith("TLSRoute vault is bound to Gateways without hostnames")
    assert result.written == ()


def test_pins_are_written_most_specific_first_as_the_gateway_api_takes_them(
    tmp_path: Path,
) -> None:
    """The input's rules in the order a person might write them: a prefix pin before an exact
    one under it. The Gateway API takes the exact path first; so must the release."""
    document = _ROUTE.replace(
        "  rules:\n",
        "  rules:\n"
        "    - matches:\n        - path: {type: PathPrefix, value: /api}\n"
        "      backendRefs:\n        - name: web-v2\n          port: 80\n"
        "    - matches:\n        - path: {type: Exact, value: /api/health}\n"
        "      backendRefs:\n        - name: web-v1\n          port: 80\n",
    )
    app = write(tmp_path / "in" / "app.yaml", _base_app())
    source = write(tmp_path / "in" / "route.yaml", document)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [app, source], "shop")
    assert result.ok and result.verified, [str(n) for n in (*result.refused, *result.differences)]
    pins = _releases(root, "shop")["web"]["match"]
    assert [(p["version"], p["uri"]) for p in pins] == [
        ("v1", {"exact": "/api/health"}),
        ("v2", {"prefix": "/api"}),
    ]


def test_a_mirror_after_another_filter_is_noted_as_rendered_first(tmp_path: Path) -> None:
    document = _ROUTE + (
        "      filters:\n"
        "        - type: RequestHeaderModifier\n"
        "          requestHeaderModifier: {set: [{name: x-env, value: shop}]}\n"
        "        - type: RequestMirror\n"
        "          requestMirror: {backendRef: {name: web-v2, port: 80}, percent: 10}\n"
    )
    app = write(tmp_path / "in" / "app.yaml", _base_app())
    source = write(tmp_path / "in" / "route.yaml", document)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [app, source], "shop")
    notes = [n.message for n in result.notes if n.rule == NORMALIZED]
    assert any(m.startswith("the renderer writes RequestMirror first") for m in notes), notes


def test_verify_compares_the_services_routes_together(tmp_path: Path) -> None:
    """Two services' routes tie on one Gateway, host and prefix: the input's tie goes to the
    older-named route (aa-web), the rendered names (api-gateways, web-gateways) turn it round.
    Each service alone renders as it was; only the two together show it, and verify does."""
    web = _base_app()
    api = web.replace("web", "api")
    app = write(tmp_path / "in" / "app.yaml", web + "---\n" + api)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [app, OWN / "cross.yaml"], "shop")
    assert result.verified is False
    (difference,) = result.differences
    assert "GET shop.example.com/shop" in difference.message
    assert "reaches 90% web-v1, 10% web-v2 in the input, 90% api-v1" in difference.message
    assert difference.hint.startswith("routes of several imported services claim these requests")
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_weights_rounded_to_whole_percent_are_noted_and_verify(tmp_path: Path) -> None:
    document = _ROUTE.replace("weight: 90", "weight: 1").replace("weight: 10", "weight: 2")
    app = write(tmp_path / "in" / "app.yaml", _base_app())
    source = write(tmp_path / "in" / "route.yaml", document)
    root = tmp_path / "repo"
    root.mkdir()
    result = import_manifests(root, [app, source], "shop")
    assert result.ok and result.verified, [str(n) for n in (*result.refused, *result.differences)]
    assert _weights(_releases(root, "shop")["web"]) == {"v1": 33, "v2": 67}
    assert any(
        "rounded to whole percent from v1 33.33% + v2 66.67%" in n.message for n in result.notes
    )
