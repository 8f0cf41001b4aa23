"""route-protocol-port: where `check` points it in a release file, and how it reads protocols.

The fixtures in tests/rules/route-protocol-port/ hold the cases on plain manifests; here the
rule meets rendered releases (its findings mapped back through provenance), the protocol
tables it shares with port-name-protocol, and a match's own gateways.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.manifest import Parsed, parse_text
from meshcanary.problem import Problem
from meshcanary.rules import Scope, port_name_protocol, route_protocol_port, run
from tests.support.locations import edit, findings, places, render, where
from tests.support.routing import EVERY_ROUTE_FIELD, install
from tests.support.routing import RELEASE as ROUTING_RELEASE

STAGING = "environments/staging/checkout.yaml"


def test_route_protocol_port(example_repo: Path, cli) -> None:
    # staging routes checkout's port 9090 (named grpc in the base) as tcp: Istio's sidecar
    # builds an HTTP chain there and never applies the tcp route.
    edit(
        example_repo / STAGING,
        "  - {port: 9090, protocol: http}   # gRPC is HTTP/2: headers and retries apply\n",
        "  - {port: 9090, protocol: tcp}\n",
    )
    render(example_repo, cli)
    (found,) = findings(example_repo, cli, "route-protocol-port")
    assert places([found]) == {where(example_repo, STAGING, "{port: 9090, protocol: tcp}", "9090")}
    assert (
        "`tcp:` route never applies on port 9090 of Service micro-staging/checkout"
        in (found["message"])
    )
    assert "name 'grpc'" in found["message"]
    assert found["hint"] == route_protocol_port.RELEASE_HINT
    assert found["severity"] == "error"


def test_the_examples_route_each_port_in_its_own_section(example_repo: Path, cli) -> None:
    # staging declares 9090 `protocol: http`: the gRPC port takes http routes.
    assert findings(example_repo, cli, "route-protocol-port") == []


def test_a_tls_route_sent_to_a_grpc_port_points_at_destination_port(
    example_repo: Path, cli
) -> None:
    # Every routing field, with the TLS route sent to 9090 (gRPC) rather than 8443 (TLS).
    install(example_repo)
    render(example_repo, cli)
    assert findings(example_repo, cli, "route-protocol-port") == []
    install(
        example_repo, EVERY_ROUTE_FIELD.replace("destinationPort: 8443", "destinationPort: 9090")
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "route-protocol-port")
    # One finding for the route (not one per version), at the line that sends it there.
    assert places(found) == {where(example_repo, ROUTING_RELEASE, "destinationPort: 9090", "9090")}
    assert "sends TLS to port 9090 of Service micro-staging/checkout" in found[0]["message"]


# How protocols are read ----------------------------------------------------------------------


def test_the_sections_split_port_name_protocols_table() -> None:
    sections = (route_protocol_port.HTTP, route_protocol_port.TLS, route_protocol_port.TCP)
    assert frozenset().union(*sections) == port_name_protocol.PROTOCOLS - {"udp"}
    assert sum(len(s) for s in sections) == len(port_name_protocol.PROTOCOLS) - 1
    assert {"tcp", "mongo", "mysql", "redis"} == route_protocol_port.TCP


@pytest.mark.parametrize(
    ("written", "section"),
    [
        ("http", "http"),
        ("HTTP2", "http"),
        ("grpc-api", "http"),
        ("grpc-web", "http"),
        ("grpc-web-ui", "http"),
        ("kubernetes.io/h2c", "http"),
        ("kubernetes.io/ws", "http"),
        ("https-admin", "tls"),
        ("TLS", "tls"),
        ("kubernetes.io/wss", "tls"),
        ("tcp-echo", "tcp"),
        ("mongo", "tcp"),
        ("mysql-main", "tcp"),
        ("redis", "tcp"),
        ("udp", None),
        ("web", None),
        ("httpx", None),
        ("", None),
    ],
)
def test_protocol_section(written: str, section: str | None) -> None:
    assert route_protocol_port.protocol_section(written) == section


@pytest.mark.parametrize(
    ("server", "section"),
    [
        ({"port": {"protocol": "HTTP"}}, "http"),
        ({"port": {"protocol": "HTTP"}, "tls": {"httpsRedirect": True}}, "http"),
        ({"port": {"protocol": "GRPC"}}, "http"),
        ({"port": {"protocol": "HTTPS"}, "tls": {"mode": "SIMPLE"}}, "http"),
        ({"port": {"protocol": "HTTPS"}}, "http"),
        ({"port": {"protocol": "HTTPS"}, "tls": {"mode": "PASSTHROUGH"}}, "tls"),
        # Istio's default tls.mode is PASSTHROUGH.
        ({"port": {"protocol": "HTTPS"}, "tls": {}}, "tls"),
        ({"port": {"protocol": "TLS"}, "tls": {"mode": "PASSTHROUGH"}}, "tls"),
        ({"port": {"protocol": "TLS"}, "tls": {"mode": "ISTIO_MUTUAL"}}, "tcp"),
        ({"port": {"protocol": "TCP"}}, "tcp"),
        ({"port": {"protocol": "MONGO"}}, "tcp"),
        ({"port": {"protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"}}, None),
        ({"port": {"protocol": "UDP"}}, None),
        ({"port": {}}, None),
    ],
)
def test_server_section(server: dict, section: str | None) -> None:
    found = route_protocol_port.server_section(server)
    assert (found[0] if found else None) == section


# Which listener decides ----------------------------------------------------------------------

BOUND = """\
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec:
  ports: [{name: http, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  servers:
    - port: {number: 9000, name: tcp, protocol: TCP}
      hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: shop}
spec:
  hosts: [echo]
  gateways: [GATEWAYS]
  tcp:
    - match:
        - port: 9000
          MATCH_GATEWAYS
      route:
        - destination: {host: echo}
"""


def _problems(text: str) -> list[Problem]:
    parsed = Parsed()
    parse_text(text, "manifest.yaml", parsed)
    assert parsed.problems == []
    return run(Scope(parsed.resources), rules=[route_protocol_port])


@pytest.mark.parametrize(
    ("gateways", "match_gateways", "reported"),
    [
        ("mesh", "", ["port 9000 of Service shop/echo"]),
        ("edge", "", []),
        ("edge, mesh", "", ["port 9000 of Service shop/echo"]),
        # A match's own gateways replace the VirtualService's.
        ("mesh", "gateways: [edge]", []),
        ("edge", "gateways: [mesh]", ["port 9000 of Service shop/echo"]),
    ],
)
def test_the_bound_listeners_decide(
    gateways: str, match_gateways: str, reported: list[str]
) -> None:
    text = BOUND.replace("GATEWAYS]", f"{gateways}]").replace("MATCH_GATEWAYS", match_gateways)
    problems = _problems(text)
    assert [p.location.line for p in problems] == [23] * len(reported)
    assert all(r in p.message for r, p in zip(reported, problems, strict=True))


def test_a_route_bound_to_an_http_server_and_the_mesh_is_reported_for_each() -> None:
    text = BOUND.replace("protocol: TCP", "protocol: HTTP").replace("GATEWAYS]", "edge, mesh]")
    problems = _problems(text.replace("MATCH_GATEWAYS", ""))
    assert sorted(p.message.split(":")[1].split(" on ")[1] for p in problems) == [
        "port 9000 of Service shop/echo",
        "server port 9000 of Gateway shop/edge",
    ]
