"""The routing fields of a release file: what the schema and the loader accept, what they
refuse and where, and the model they build."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.errors import InputError
from meshcanary.release import schema
from meshcanary.release.load import load
from meshcanary.release.model import (
    Condition,
    HeaderMatch,
    HeaderOperations,
    QueryMatch,
    Release,
    Retries,
    Rewrite,
    RouteOptions,
    StringMatch,
)
from meshcanary.source import load_mapping
from tests.support.routing import EVERY_ROUTE_FIELD, RELEASE, install


def _load(repo: Path, text: str) -> Release:
    install(repo, text)
    (loaded,) = load(repo, ["staging"], {"staging": {"checkout"}})
    (release,) = loaded.releases
    return release


def _refused(repo: Path, text: str) -> list[tuple[int, int, str]]:
    install(repo, text)
    with pytest.raises(InputError) as raised:
        load(repo, ["staging"], {"staging": {"checkout"}})
    return [(p.location.line, p.location.column, p.message) for p in raised.value.problems]


def _line(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


def test_the_model_holds_every_routing_field(example_repo: Path) -> None:
    release = _load(example_repo, EVERY_ROUTE_FIELD)
    assert release.options == RouteOptions(
        timeout="10s",
        retries=Retries(3, "3s", None),
        rewrite=Rewrite(authority="checkout.internal"),
        cors={"allowOrigins": [{"exact": "https://shop.example.com"}], "maxAge": "24h"},
        request_headers=HeaderOperations(set=(("x-env", "staging"),), remove=("x-debug",)),
        response_headers=HeaderOperations(add=(("x-served-by", "checkout"),)),
    )
    assert release.timeout == "10s" and release.retries == Retries(3, "3s", None)
    assert release.requests == (
        Condition(
            uri=StringMatch("prefix", "/api"),
            method=StringMatch("exact", "GET"),
            ignore_uri_case=True,
        ),
        Condition(
            authority=StringMatch("exact", "checkout.example.com"),
            headers=(HeaderMatch("x-user", "exact", "a"),),
            query_params=(QueryMatch("debug", "exact", "1"),),
        ),
    )
    pin, cookie = release.matches
    assert pin.condition.uri == StringMatch("prefix", "/api/v3")
    assert pin.options.timeout == "20s" and pin.options.rewrite == Rewrite(uri="/api")
    # A pin's own options replace the release's; what it does not set comes from the top.
    assert release.route_options(pin).timeout == "20s"
    assert release.route_options(cookie) == release.options
    assert cookie.headers == cookie.condition.headers
    assert cookie.headers[0].header == "cookie"
    http, tls = release.ports
    assert (http.number, http.protocol, http.target) == (80, "http", 80)
    assert (tls.number, tls.protocol, tls.target) == (443, "tls", 8443)
    assert tls.sni_hosts == ("checkout.micro-staging.svc.cluster.local",)


def test_sni_hosts_on_a_port_that_is_not_tls_is_refused_at_the_key(example_repo: Path) -> None:
    text = EVERY_ROUTE_FIELD.replace("    protocol: tls\n", "    protocol: tcp\n")
    line = _line(text, "    sniHosts:")
    assert _refused(example_repo, text) == [
        (line, 5, "sniHosts is for protocol: tls; port 443 is tcp")
    ]


def test_http_fields_without_an_http_port_are_refused_not_dropped(example_repo: Path) -> None:
    text = EVERY_ROUTE_FIELD.replace("  - port: 80\n", "")
    found = _refused(example_repo, text)
    keys = ("timeout", "retries", "rewrite", "corsPolicy", "requestHeaders", "responseHeaders")
    expected = [(_line(text, f"\n{k}:") + 1, 1) for k in (*keys, "requests", "match")]
    assert sorted((line, column) for line, column, _ in found) == sorted(expected)
    assert all("every port of this release is tcp or tls" in message for *_, message in found)


@pytest.mark.parametrize(
    "key", ["requests", "rewrite", "corsPolicy", "requestHeaders", "responseHeaders"]
)
def test_method_replicas_refuses_routing_fields(example_repo: Path, key: str) -> None:
    text = (
        "service: checkout\nbase: deploy/base/checkout\nmethod: replicas\nreplicas: 4\n"
        + {
            "requests": "requests:\n  - uri: {prefix: /api}\n",
            "rewrite": "rewrite: {uri: /}\n",
            "corsPolicy": "corsPolicy: {allowMethods: [GET]}\n",
            "requestHeaders": "requestHeaders: {remove: [x-a]}\n",
            "responseHeaders": "responseHeaders: {remove: [x-a]}\n",
        }[key]
        + "versions:\n  v1: {image: registry.example/shop/checkout:2.4.1, weight: 100}\n"
    )
    assert _refused(example_repo, text) == [
        (5, 1, f'"{key}" needs method: istio; replica splitting has no routes')
    ]


# The schema ---------------------------------------------------------------------------------

BASE = "service: a\nbase: b\n"
VERSIONS = "versions:\n  v1: {image: x:1, replicas: 1, weight: 100}\n"


def _schema(tmp_path: Path, body: str) -> list[tuple[int, int, str]]:
    path = tmp_path / "a.yaml"
    path.write_text(BASE + body + VERSIONS, encoding="utf-8")
    problems = schema.check("release", load_mapping(path, "a.yaml"))
    return [(p.location.line, p.location.column, p.message) for p in problems]


def test_the_release_using_every_routing_field_conforms(tmp_path: Path) -> None:
    path = tmp_path / "checkout.yaml"
    path.write_text(EVERY_ROUTE_FIELD, encoding="utf-8")
    assert schema.check("release", load_mapping(path, RELEASE)) == []


@pytest.mark.parametrize(
    "body",
    [
        'hosts: ["*"]\n',
        'hosts: ["*.example.com"]\n',
        "requests:\n  - method: {exact: GET}\n",
        "rewrite: {uriRegexRewrite: {match: ^/api/, rewrite: /}, authority: a}\n",
        "match:\n  - {version: v1, queryParams: {q: {regex: a}}, timeout: 1s}\n",
        "match:\n  - {version: v1, authority: {exact: a.example}}\n",
        "ports:\n  - {port: 443, protocol: tls, destinationPort: 8443, sniHosts: ['*']}\n",
        "requestHeaders: {set: {x-a: b}, add: {x-b: c}, remove: [x-c]}\n",
        "corsPolicy: {allowOrigins: [{regex: '.*'}], allowCredentials: true, "
        "unmatchedPreflights: IGNORE}\n",
    ],
)
def test_schema_accepts(tmp_path: Path, body: str) -> None:
    assert _schema(tmp_path, body) == []


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('hosts: ["a*"]\n', 3, '"a*" is not a valid "hosts"'),
        ("requests:\n  - uri: {prefix: ''}\n", 4, '"" is not a valid "prefix"'),
        ("requests:\n  - queryParams: {q: {prefix: a}}\n", 4, 'unknown field "prefix"'),
        ("requests:\n  - {}\n", 4, '"requests" must not be empty'),
        ("rewrite: {}\n", 3, '"rewrite" must not be empty'),
        ("rewrite: {uri: /, uriRegexRewrite: {match: a, rewrite: b}}\n", 3, "is not a valid"),
        ("requestHeaders: {remove: [host]}\n", 3, '"host" is not a valid "remove"'),
        ("requestHeaders: {set: {X-A: b}}\n", 3, '"X-A" is not a valid name'),
        ('responseHeaders: {set: {x-a: "b\\n"}}\n', 3, 'is not a valid "x-a"'),
        ("corsPolicy: {allowOrigin: []}\n", 3, '"allowOrigin" must not be empty'),
        ("corsPolicy: {allowOrigns: []}\n", 3, 'unknown field "allowOrigns"'),
        ("ports:\n  - {port: 80, protocol: udp}\n", 4, '"protocol" must be one of'),
        ("ports:\n  - {port: 80, destinationPort: 0}\n", 4, '"destinationPort" must be at least 1'),
        (
            "match:\n  - {version: v1, name: a, timeout: 1s}\n",
            4,
            '"match" needs one of: headers, cookies, uri, method, authority, queryParams',
        ),
        (
            "match:\n  - {version: v1, ignoreUriCase: true, method: {exact: GET}}\n",
            4,
            '"ignoreUriCase" needs "uri" beside it',
        ),
    ],
)
def test_schema_refuses(tmp_path: Path, body: str, line: int, message: str) -> None:
    found = _schema(tmp_path, body)
    assert any(at == line and message in text for at, _, text in found), found
