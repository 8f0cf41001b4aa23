"""The VirtualService of a release that uses every routing field: what it renders, and where
each rendered field says it was decided (the line a finding on it points at)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshcanary.release.load import load
from meshcanary.release.model import Release
from meshcanary.render import istio
from meshcanary.render.provenance import Generated, parse_pointer
from tests.support.locations import edit, findings, places, render, where
from tests.support.routing import EVERY_ROUTE_FIELD, RELEASE, install

HOST = "checkout.micro-staging.svc.cluster.local"
CHECKOUT = {"host": HOST}


def _release(repo: Path) -> Release:
    (loaded,) = load(repo, ["staging"], {"staging": {"checkout"}})
    (release,) = loaded.releases
    return release


@pytest.fixture
def rendered(example_repo: Path) -> Generated:
    install(example_repo)
    return istio.virtual_service(_release(example_repo), HOST, (HOST,))


def _to(subset: str, port: int) -> dict[str, Any]:
    return {**CHECKOUT, "subset": subset, "port": {"number": port}}


TOP_OPTIONS = {
    "timeout": "10s",
    "retries": {"attempts": 3, "perTryTimeout": "3s"},
    "rewrite": {"authority": "checkout.internal"},
    "corsPolicy": {"allowOrigins": [{"exact": "https://shop.example.com"}], "maxAge": "24h"},
    "headers": {
        "request": {"set": {"x-env": "staging"}, "remove": ["x-debug"]},
        "response": {"add": {"x-served-by": "checkout"}},
    },
}


def test_every_routing_field_is_rendered(rendered: Generated) -> None:
    spec = rendered.body["spec"]
    assert spec["hosts"] == [HOST] and spec["gateways"] == ["mesh"]
    pin, cookie_pin, weighted = spec["http"]
    # A pin's own options replace the release's, key by key: all of them here.
    assert pin == {
        "name": "rc-80",
        "match": [
            {
                "uri": {"prefix": "/api/v3"},
                "method": {"regex": "GET|POST"},
                "queryParams": {"rc": {"regex": ".+"}},
                "port": 80,
            }
        ],
        "route": [{"destination": _to("v3", 80)}],
        "timeout": "20s",
        "retries": {"attempts": 1},
        "rewrite": {"uri": "/api"},
        "corsPolicy": {"allowOrigins": [{"prefix": "https://"}]},
        "headers": {"request": {"add": {"x-rc": "1"}}, "response": {"remove": ["server"]}},
    }
    # A pin that sets none takes every option of the top level.
    assert cookie_pin == {
        "name": "pin-v2-1-80",
        "match": [{"headers": {"cookie": {"regex": "^(.*;\\s*)?beta=yes(\\s*;.*)?$"}}, "port": 80}],
        "route": [{"destination": _to("v2", 80)}],
        **TOP_OPTIONS,
    }
    # The weighted route serves each `requests` condition (ORed), on its port.
    assert weighted == {
        "name": "weighted-80",
        "match": [
            {
                "uri": {"prefix": "/api"},
                "method": {"exact": "GET"},
                "ignoreUriCase": True,
                "port": 80,
            },
            {
                "authority": {"exact": "checkout.example.com"},
                "headers": {"x-user": {"exact": "a"}},
                "queryParams": {"debug": {"exact": "1"}},
                "port": 80,
            },
        ],
        "route": [
            {"destination": _to("v1", 80), "weight": 60},
            {"destination": _to("v2", 80), "weight": 30},
            {"destination": _to("v3", 80), "weight": 10},
        ],
        **TOP_OPTIONS,
    }
    # TLS: matched by port and SNI, sent to destinationPort, with the weights.
    assert spec["tls"] == [
        {
            "match": [{"port": 443, "sniHosts": [HOST]}],
            "route": [
                {"destination": _to("v1", 8443), "weight": 60},
                {"destination": _to("v2", 8443), "weight": 30},
                {"destination": _to("v3", 8443), "weight": 10},
            ],
        }
    ]


def test_without_requests_or_ports_the_weighted_route_takes_every_request(
    example_repo: Path,
) -> None:
    text = EVERY_ROUTE_FIELD
    start, end = text.index("ports:\n"), text.index("timeout: 10s")
    text = text[:start] + text[end:]
    start, end = text.index("requests:\n"), text.index("match:\n")
    install(example_repo, text[:start] + text[end:])
    spec = istio.virtual_service(_release(example_repo), HOST, (HOST,)).body["spec"]
    assert "tls" not in spec
    weighted = spec["http"][-1]
    assert weighted["name"] == "weighted" and "match" not in weighted
    assert spec["http"][0]["match"] == [
        {
            "uri": {"prefix": "/api/v3"},
            "method": {"regex": "GET|POST"},
            "queryParams": {"rc": {"regex": ".+"}},
        }
    ]


def test_sni_hosts_default_to_the_release_hosts(example_repo: Path) -> None:
    text = EVERY_ROUTE_FIELD.replace(
        "    sniHosts:\n      - checkout.micro-staging.svc.cluster.local\n", ""
    ).replace("gateways: [mesh]\n", "gateways: [mesh]\nhosts: [checkout.example.com]\n")
    install(example_repo, text)
    release = _release(example_repo)
    spec = istio.virtual_service(release, HOST, release.hosts).body["spec"]
    assert spec["tls"][0]["match"] == [{"port": 443, "sniHosts": ["checkout.example.com"]}]


# Where each rendered field was decided ------------------------------------------------------

# A rendered field (a JSON Pointer into the VirtualService) → the text of the release file's
# line that decides it, and the text its column points at. The pin is http/0, the pin without
# options http/1, the weighted route http/2.
DECIDED = {
    "/spec/http/0/match/0/uri/prefix": ("prefix: /api/v3", "/api/v3"),
    "/spec/http/0/match/0/method/regex": ("regex: GET|POST", "GET|POST"),
    "/spec/http/0/match/0/queryParams/rc/regex": ("regex: .+", ".+"),
    "/spec/http/0/match/0/port": ("- port: 80", "80"),
    "/spec/http/0/timeout": ("timeout: 20s", "20s"),
    "/spec/http/0/retries/attempts": ("attempts: 1", "1"),
    "/spec/http/0/rewrite/uri": ("uri: /api", "/api"),
    "/spec/http/0/corsPolicy/allowOrigins/0/prefix": ("- prefix: https://", "https://"),
    "/spec/http/0/headers/request/add/x-rc": ('x-rc: "1"', '"1"'),
    "/spec/http/0/headers/response/remove/0": ("remove: [server]", "server"),
    "/spec/http/1/match/0/headers/cookie": ('cookies: {beta: "yes"}', "cookies"),
    "/spec/http/1/timeout": ("timeout: 10s", "10s"),
    "/spec/http/1/rewrite/authority": ("authority: checkout.internal", "checkout.internal"),
    "/spec/http/1/corsPolicy/maxAge": ("maxAge: 24h", "24h"),
    "/spec/http/1/headers/request/set/x-env": ("x-env: staging", "staging"),
    "/spec/http/2/match/0/uri/prefix": ("prefix: /api\n", "/api"),
    "/spec/http/2/match/0/ignoreUriCase": ("ignoreUriCase: true", "true"),
    "/spec/http/2/match/1/authority/exact": ("exact: checkout.example.com", "checkout.example.com"),
    "/spec/http/2/match/1/headers/x-user/exact": ("exact: a", "a"),
    "/spec/http/2/match/1/queryParams/debug/exact": ('exact: "1"', '"1"'),
    "/spec/http/2/headers/response/add/x-served-by": ("x-served-by: checkout", "checkout"),
    "/spec/http/2/headers/request/remove/0": ("remove: [x-debug]", "x-debug"),
    "/spec/tls/0/match/0/port": ("- port: 443", "443"),
    "/spec/tls/0/match/0/sniHosts/0": (f"- {HOST}", HOST),
    "/spec/tls/0/route/1/destination/port": ("destinationPort: 8443", "8443"),
    "/spec/tls/0/route/2/weight": ("v3: {", "weight"),
}


def _line(text: str, needle: str, value: str | None) -> tuple[int, int]:
    at = text.index(needle)
    number = text.count("\n", 0, at) + 1
    line = text.splitlines()[number - 1]
    return number, line.rindex(value if value is not None else needle.strip()) + 1


@pytest.mark.parametrize("pointer", sorted(DECIDED))
def test_each_new_field_points_at_the_line_that_sets_it(rendered: Generated, pointer: str) -> None:
    needle, value = DECIDED[pointer]
    if pointer.endswith("/weight"):
        value = "10"  # v3's weight, on the version's line
    found = rendered.origins.find(parse_pointer(pointer))
    assert found is not None, pointer
    origin, rest = found
    location = origin.location(rest)
    assert location.file == RELEASE
    assert (location.line, location.column) == _line(EVERY_ROUTE_FIELD, needle, value), pointer


# `*` as the only host ------------------------------------------------------------------------


def test_a_star_host_is_refused_on_the_mesh_at_the_hosts_line(example_repo: Path, cli) -> None:
    release = example_repo / "environments/prod/micro-api.yaml"
    edit(release, "  - api.example.com\n", "")
    edit(release, "  - micro-api.default.svc.cluster.local\n", '  - "*"\n')
    render(example_repo, cli)
    found = findings(example_repo, cli, "istio-route-valid")
    assert places(found) == {
        where(example_repo, "environments/prod/micro-api.yaml", '- "*"', '"*"')
    }
    assert "bound to the mesh cannot have host *" in found[0]["message"]


def test_a_star_host_is_allowed_on_gateways_alone(example_repo: Path, cli) -> None:
    release = example_repo / "environments/prod/micro-api.yaml"
    edit(release, "  - api.example.com\n", "")
    edit(release, "  - micro-api.default.svc.cluster.local\n", '  - "*"\n')
    edit(release, "gateways: [micro-gateway, mesh]", "gateways: [micro-gateway]")
    render(example_repo, cli)
    assert findings(example_repo, cli, "istio-route-valid") == []
