"""`importer.routes`: a VirtualService's routes → release fields, or a refusal where they are read.

Each case reads real YAML (Istio's samples in tests/data/, or small inputs written here) and
asserts both the release fields produced and each normalization or refusal at its
`file:line:col`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.importer import routes, subsets
from meshcanary.importer.context import DROPPED, NORMALIZED, REFUSED, Context, Notes, Origins
from meshcanary.importer.versions import Version
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Location, Problem, Severity
from tests.support import BOOKINFO, DATA

FILE = "vs.yaml"


def _resources(text: str, file: str) -> list[Resource]:
    parsed = Parsed()
    parse_text(text, file, parsed)
    assert not parsed.problems
    return parsed.resources


def _version(service: str, name: str) -> Version:
    (deployment,) = _resources(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {service}-{name}}}\n"
        f"spec:\n  template:\n    metadata: {{labels: {{app: {service}, version: {name}}}}}\n",
        f"{name}.yaml",
    )
    return Version(name, deployment, 0, f"registry.example/{service}:{name}", 1)


SHOP_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def _read(
    text: str,
    *,
    service: str = "shop",
    versions: tuple[str, ...] = ("v1", "v2"),
    ports: tuple[int, ...] = (80,),
    rules: str = SHOP_RULE,
    drops: tuple[str, ...] = (),
    file: str = FILE,
) -> tuple[routes.Routes, list[Problem]]:
    ctx = Context(
        root=Path("."),
        environment="prod",
        service=service,
        service_name=service,
        source_namespace="default",
        target_namespace="default",
        env_path="environments/prod/environment.yaml",
        env_data=None,
        header="",
        notes=Notes(drops=drops),
        origins=Origins(Location(file)),
    )
    read_versions = [_version(service, v) for v in versions]
    rule = subsets.read(ctx, _resources(rules, "rule.yaml") if rules else [], read_versions)
    (resource,) = [r for r in _resources(text, file) if r.kind == "VirtualService"]
    found = routes.read(
        ctx, resource, subsets.Destinations(ctx, rule, read_versions, service_ports=ports)
    )
    return found, list(ctx.notes.in_order())


def _at(text: str, needle: str, nth: int = 0, file: str = FILE) -> str:
    """`file:line:col` of the `nth` occurrence of `needle` in `text`."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{file}:{line}:{column}"


def _said(notes: list[Problem]) -> list[tuple[str, str, str]]:
    return [(str(n.location), n.rule, n.message) for n in notes]


def _one(notes: list[Problem], where: str, rule: str) -> Problem:
    (found,) = [n for n in notes if str(n.location) == where and n.rule == rule]
    return found


def _vs(http: str, extra: str = "") -> str:
    return (
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: shop}\n"
        "spec:\n"
        "  hosts: [shop]\n" + extra + ("  http:\n" + http if http else "")
    )


# -- Istio's samples ---------------------------------------------------------------------------


def test_bookinfo_gateway_uri_matches_become_the_weighted_routes_requests() -> None:
    path = BOOKINFO / "bookinfo-gateway.yaml"
    text = path.read_text(encoding="utf-8")
    found, notes = _read(
        text, service="productpage", versions=("v1",), ports=(9080,), file=str(path)
    )
    assert found.weights == {"v1": 100}
    assert found.extras == {
        "requests": [
            {"uri": {"exact": "/productpage"}},
            {"uri": {"prefix": "/static"}},
            {"uri": {"exact": "/login"}},
            {"uri": {"exact": "/logout"}},
            {"uri": {"prefix": "/api/v1/products"}},
        ]
    }
    assert [n.rule for n in notes] == [NORMALIZED, NORMALIZED]
    subset = _one(notes, _at(text, "host: productpage", file=str(path)), NORMALIZED)
    assert "without a subset reaches every pod of Service productpage" in subset.message
    port = _one(notes, _at(text, "number: 9080", file=str(path)), NORMALIZED)
    assert "9080 is the Service's only port" in port.message


def test_a_destination_port_of_a_service_with_several_needs_a_match_port() -> None:
    path = BOOKINFO / "bookinfo-gateway.yaml"
    text = path.read_text(encoding="utf-8")
    found, notes = _read(
        text, service="productpage", versions=("v1",), ports=(9080, 9090), file=str(path)
    )
    refusal = _one(notes, _at(text, "number: 9080", file=str(path)), REFUSED)
    assert "send requests of every port to Service port 9080" in refusal.message
    assert "ports" not in found.extras


def test_a_destination_without_subset_among_several_versions_spreads_by_replicas() -> None:
    path = BOOKINFO / "bookinfo-gateway.yaml"
    text = path.read_text(encoding="utf-8")
    found, notes = _read(
        text, service="productpage", versions=("v1", "v2"), ports=(9080,), file=str(path)
    )
    # The Service spreads requests over every pod: with one pod each, half each.
    assert found.weights == {"v1": 50, "v2": 50}
    spread = _one(notes, _at(text, "host: productpage", file=str(path)), NORMALIZED)
    assert "by their replicas (v1 1, v2 1)" in spread.message


def test_bookinfo_jason_pin_and_catch_all() -> None:
    text = (BOOKINFO / "virtual-service-reviews-jason-v2-v3.yaml").read_text(encoding="utf-8")
    rules = (BOOKINFO / "destination-rule-all.yaml").read_text(encoding="utf-8")
    found, notes = _read(
        text, service="reviews", versions=("v1", "v2", "v3"), ports=(9080,), rules=rules
    )
    assert found.weights == {"v3": 100}
    assert found.extras == {
        "match": [{"version": "v2", "headers": {"end-user": {"exact": "jason"}}}]
    }
    assert notes == []


def test_tcp_echo_gateway_route_becomes_a_tcp_port_with_its_weights() -> None:
    text = (DATA / "tcp-echo" / "tcp-echo-20-v2.yaml").read_text(encoding="utf-8")
    found, notes = _read(text, service="tcp-echo", ports=(9000, 9001))
    assert found.weights == {"v1": 80, "v2": 20}
    assert found.extras == {"ports": [{"port": 31400, "protocol": "tcp", "destinationPort": 9000}]}
    assert {n.rule for n in notes} == {NORMALIZED}  # no DestinationRule: subsets read as labels


# -- pins, requests and route options ----------------------------------------------------------

OPTIONS = """\
    - name: testers
      match:
        - uri: {prefix: /beta}
          method: {exact: GET}
          queryParams: {debug: {exact: "1"}}
          ignoreUriCase: true
          name: beta-get
        - headers: {X-Beta: {exact: "1"}}
      route: [{destination: {host: shop, subset: v2}}]
      timeout: 9s
      retries: {attempts: 2, perTryTimeout: 2s}
      rewrite: {uri: /}
      headers: {request: {set: {x-pinned: "yes"}}, response: {remove: [x-debug]}}
      corsPolicy: {allowOrigins: [{exact: https://example.com}], allowMethods: [GET]}
    - match: [{uri: {prefix: /api}}, {authority: {exact: api.example}}]
      route:
        - {destination: {host: shop, subset: v1}, weight: 90}
        - {destination: {host: shop, subset: v2}, weight: 10}
      timeout: 5s
      retries: {attempts: 2, perTryTimeout: 2s}
      corsPolicy: {allowOrigins: [{exact: https://example.com}], allowMethods: [GET]}
      headers: {request: {add: {x-via: mesh}}}
      mirror: {host: shop, subset: v2}
      mirrorPercentage: {value: 5}
"""


def test_pins_keep_their_conditions_and_the_options_that_differ() -> None:
    text = _vs(OPTIONS)
    found, notes = _read(text)
    assert found.weights == {"v1": 90, "v2": 10}
    assert list(found.extras) == [
        "requests",
        "timeout",
        "retries",
        "corsPolicy",
        "requestHeaders",
        "match",
        "mirror",
    ]
    assert found.extras["requests"] == [
        {"uri": {"prefix": "/api"}},
        {"authority": {"exact": "api.example"}},
    ]
    assert found.extras["timeout"] == "5s"
    assert found.extras["retries"] == {"attempts": 2, "perTryTimeout": "2s"}
    assert found.extras["corsPolicy"]["allowMethods"] == ["GET"]
    assert found.extras["requestHeaders"] == {"add": {"x-via": "mesh"}}
    assert found.extras["mirror"] == {"version": "v2", "percent": 5}
    options = {
        "timeout": "9s",
        "rewrite": {"uri": "/"},
        "requestHeaders": {"set": {"x-pinned": "yes"}},
        "responseHeaders": {"remove": ["x-debug"]},
    }
    assert found.extras["match"] == [
        {
            "name": "testers",
            "version": "v2",
            "uri": {"prefix": "/beta"},
            "method": {"exact": "GET"},
            "queryParams": {"debug": {"exact": "1"}},
            "ignoreUriCase": True,
            **options,
        },
        {"name": "testers-1", "version": "v2", "headers": {"x-beta": {"exact": "1"}}, **options},
    ]
    assert not [n for n in notes if n.rule == REFUSED]
    assert "only labels it" in _one(notes, _at(text, "name: beta-get"), NORMALIZED).message
    lowered = _one(notes, _at(text, "X-Beta"), NORMALIZED)
    assert "written as x-beta" in lowered.message


def test_a_pin_without_an_option_the_weighted_route_has_is_refused() -> None:
    text = _vs(OPTIONS.replace("      timeout: 9s\n", ""))
    found, notes = _read(text)
    refusal = _one(notes, _at(text, "name: testers"), REFUSED)
    assert "route 0 has no timeout, but the weighted route's '5s' would apply" in refusal.message
    assert "--drop 'VirtualService/shop:spec.http[0]'" in refusal.hint
    assert "timeout" not in found.extras["match"][0]


def test_mirroring_on_a_pin_is_refused() -> None:
    text = _vs(
        "    - match: [{headers: {x-a: {exact: '1'}}}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "      mirror: {host: shop, subset: v1}\n"
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
    )
    _, notes = _read(text)
    refusal = _one(notes, _at(text, "mirror:"), REFUSED)
    assert "a release mirrors the weighted route only" in refusal.message


def test_route_names_only_label_routes() -> None:
    text = _vs(
        "    - name: Testers\n"
        "      match: [{headers: {x-a: {exact: '1'}}}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "    - name: main\n"
        "      route: [{destination: {host: shop, subset: v1}}]\n"
    )
    found, notes = _read(text)
    assert found.extras["match"] == [{"version": "v2", "headers": {"x-a": {"exact": "1"}}}]
    assert [n.rule for n in notes] == [NORMALIZED, NORMALIZED]
    assert "not a DNS-1123 label" in _one(notes, _at(text, "Testers"), NORMALIZED).message
    assert "rendered as weighted" in _one(notes, _at(text, "main"), NORMALIZED).message


# -- one weighted route -------------------------------------------------------------------------


def test_weighted_routes_with_the_same_shares_and_options_are_one() -> None:
    text = _vs(
        "    - match: [{uri: {prefix: /a}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 80}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 20}\n"
        "    - match: [{uri: {prefix: /b}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 4}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 1}\n"
    )
    found, notes = _read(text)
    assert found.weights == {"v1": 80, "v2": 20}
    assert found.extras == {"requests": [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}]}
    assert notes == []


def test_a_later_catch_all_with_the_same_shares_swallows_them() -> None:
    text = _vs(
        "    - match: [{uri: {prefix: /a}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 80}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 20}\n"
        "    - route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 80}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 20}\n"
        "    - route: [{destination: {host: shop, subset: v2}}]\n"
    )
    found, notes = _read(text)
    assert found.weights == {"v1": 80, "v2": 20}
    assert found.extras == {}
    assert _said(notes) == [
        (
            _at(text, "[{uri"),
            NORMALIZED,
            "route 0 splits requests like route 1, which takes every other request: its "
            "conditions are not needed",
        ),
        (
            _at(text, "route: [{destination"),
            NORMALIZED,
            "http route 2 is never reached: route 1 before it takes every request; not rendered",
        ),
    ]


def test_weighted_routes_that_differ_are_refused_but_one() -> None:
    text = _vs(
        "    - match: [{uri: {prefix: /a}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 50}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 50}\n"
        "    - match: [{uri: {prefix: /b}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 90}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 10}\n"
        "      timeout: 1s\n"
        "    - route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 90}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 10}\n"
    )
    found, notes = _read(text)
    assert found.weights == {"v1": 90, "v2": 10}  # the catch-all's
    assert _said(notes) == [
        (
            _at(text, "match"),
            REFUSED,
            "route 0 splits requests v1 50 + v2 50, the weighted route (route 2) v1 90 + v2 10: "
            "a release has one weighted route",
        ),
        (
            _at(text, "match", 1),
            REFUSED,
            "route 1 splits requests like route 2 but with timeout '1s' instead of none: a "
            "release has one weighted route",
        ),
    ]


def test_a_pin_after_a_conditional_weighted_route_is_refused() -> None:
    text = _vs(
        "    - match: [{uri: {prefix: /a}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 50}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 50}\n"
        "    - match: [{headers: {x-a: {exact: '1'}}}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
    )
    found, notes = _read(text)
    assert found.extras == {"requests": [{"uri": {"prefix": "/a"}}]}
    refusal = _one(notes, _at(text, "match", 1), REFUSED)
    assert "route 1 comes after the weighted route 0" in refusal.message


def test_conditional_routes_to_one_version_make_pins_and_the_last_the_weighted_route() -> None:
    text = _vs(
        "    - match: [{uri: {prefix: /a}}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "    - match: [{uri: {prefix: /b}}]\n"
        "      route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 100}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 0}\n"
    )
    found, notes = _read(text)
    assert found.weights == {"v1": 100, "v2": 0}
    assert found.extras == {
        "requests": [{"uri": {"prefix": "/b"}}],
        "match": [{"version": "v2", "uri": {"prefix": "/a"}}],
    }
    assert notes == []


# -- weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "weights", "said"),
    [
        ((1, 1), {"v1": 50, "v2": 50}, "written as v1 50 + v2 50, the same shares in percent"),
        (
            (1, 2),
            {"v1": 33, "v2": 67},
            "written as v1 33 + v2 67, rounded to whole percent from v1 33.33% + v2 66.67%",
        ),
    ],
)
def test_weights_not_summing_to_100_are_percentages(
    given: tuple[int, int], weights: dict[str, int], said: str
) -> None:
    text = _vs(
        "    - route:\n"
        f"        - {{destination: {{host: shop, subset: v1}}, weight: {given[0]}}}\n"
        f"        - {{destination: {{host: shop, subset: v2}}, weight: {given[1]}}}\n"
    )
    found, notes = _read(text)
    assert found.weights == weights
    (note,) = notes
    assert (str(note.location), note.rule) == (_at(text, "- {destination"), NORMALIZED)
    assert note.message.endswith(said)


def test_weights_summing_to_0_are_refused() -> None:
    text = _vs(
        "    - route:\n"
        "        - {destination: {host: shop, subset: v1}, weight: 0}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 0}\n"
    )
    _, notes = _read(text)
    refusal = _one(notes, _at(text, "- {destination"), REFUSED)
    assert "the weights sum to 0" in refusal.message


# -- what a release cannot say ------------------------------------------------------------------


def test_fields_without_a_place_are_refused_where_they_are() -> None:
    text = _vs(
        "    - match:\n"
        "        - headers: {x-a: {exact: '1'}}\n"
        "          sourceLabels: {app: web}\n"
        "          withoutHeaders: {x-b: {exact: '1'}}\n"
        "          gateways: [mesh]\n"
        "      route:\n"
        "        - destination: {host: shop, subset: v2}\n"
        "          headers: {request: {set: {x: y}}}\n"
        "      fault: {abort: {httpStatus: 503, percentage: {value: 1}}}\n"
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
        "      mirrors: [{destination: {host: shop, subset: v2}}]\n"
        "    - redirect: {uri: /elsewhere}\n",
        extra="  exportTo: [.]\n",
    )
    _, notes = _read(text)
    refused = {str(n.location): n.message for n in notes if n.rule == REFUSED}
    assert refused == {
        _at(text, "exportTo"): "exportTo limits the namespaces that see the routes; the "
        "rendered VirtualService is seen by every namespace",
        _at(text, "sourceLabels"): "a match on the caller's labels has no place in a release",
        _at(text, "withoutHeaders"): "a match on absent headers has no place in a release",
        _at(text, "gateways"): "a match on the gateway has no place in a release: its "
        "gateways: apply to every route",
        _at(text, "headers", 1): "headers set for one destination only; a release sets headers "
        "per route",
        _at(text, "fault"): "fault injection (delays, aborts) has no place in a release",
        _at(text, "mirrors"): "mirrors (several mirror targets) has no place in a release: it "
        "mirrors to one version (mirror:)",
    }
    never = _one(notes, _at(text, "redirect"), NORMALIZED)
    assert "route 2 is never reached" in never.message


@pytest.mark.parametrize(
    ("field", "said"),
    [
        ("redirect: {uri: /new}", "a redirect answers without reaching a version"),
        ("directResponse: {status: 503}", "a direct response answers without reaching a version"),
        ("delegate: {name: shop-routes}", "a delegated route hands the decision to another"),
    ],
)
def test_a_route_that_reaches_no_version_is_refused(field: str, said: str) -> None:
    text = _vs(
        f"    - match: [{{uri: {{prefix: /old}}}}]\n      {field}\n"
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
    )
    found, notes = _read(text)
    (refusal,) = notes
    assert (str(refusal.location), refusal.rule) == (_at(text, field.split(":")[0]), REFUSED)
    assert refusal.message.startswith(said)
    assert found.weights == {"v1": 100}
    assert "match" not in found.extras


def test_ignore_uri_case_without_a_uri_changes_nothing() -> None:
    text = _vs(
        "    - match: [{headers: {x-a: {exact: '1'}}, ignoreUriCase: true}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
    )
    found, notes = _read(text)
    assert found.extras == {"match": [{"version": "v2", "headers": {"x-a": {"exact": "1"}}}]}
    assert _said(notes) == [
        (_at(text, "true"), NORMALIZED, "ignoreUriCase without a uri match changes nothing")
    ]


def test_a_dropped_field_is_reported_as_dropped() -> None:
    text = _vs(
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
        "      fault: {delay: {fixedDelay: 1s}}\n"
    )
    found, notes = _read(text, drops=("VirtualService/shop:spec.http[0].fault",))
    (dropped,) = notes
    assert (str(dropped.location), dropped.rule) == (_at(text, "fault"), DROPPED)
    assert dropped.severity == Severity.INFO
    assert found.weights == {"v1": 100}


@pytest.mark.parametrize(
    ("http", "needle", "said"),
    [
        (
            '    - match: "x"\n      route: [{destination: {host: shop, subset: v1}}]\n',
            '"x"',
            "match is not a list of conditions",
        ),
        (
            "    - match: [{headers: [1]}]\n      route: [{destination: {host: shop, subset: v1}}]\n",
            "[1]",
            "headers is not a mapping of names to matches",
        ),
        (
            "    - match: [7]\n      route: [{destination: {host: shop, subset: v1}}]\n",
            "7",
            "match condition 0 is not a mapping",
        ),
        ("    - route: {}\n", "{}", "route is not a list of destinations"),
        ("    - route: [3]\n", "3", "the route entry is not a mapping with a destination"),
        (
            "    - route: [{destination: shop}]\n",
            "shop}]",
            "the destination is not a mapping with a host",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1}, weight: a}]\n",
            "a}",
            "weight 'a' is not a whole number",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1}}]\n      timeout: 5\n",
            "5\n",
            "timeout 5 is not a duration",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1}}]\n      retries: x\n",
            "x\n",
            "retries is not a mapping",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1}}]\n      rewrite: [/]\n",
            "[/]",
            "rewrite is not a mapping",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1}}]\n"
            "      headers: {request: {set: [1]}}\n",
            "[1]",
            "headers.request is not {set: {name: value}, add: {name: value}, remove: [name]}",
        ),
        (
            "    - route: [{destination: {host: shop, subset: v1, port: 80}}]\n",
            "80",
            "the destination's port is not {number: <port>}",
        ),
        (
            "    - match: [{uri: {suffix: /a}}]\n"
            "      route: [{destination: {host: shop, subset: v1}}]\n",
            "{suffix",
            "uri match is not one of exact, prefix or regex with a string value",
        ),
        ("    - 5\n", "5", "http route 0 is not a mapping"),
    ],
)
def test_malformed_input_is_refused_at_its_path(http: str, needle: str, said: str) -> None:
    text = _vs(http)
    _, notes = _read(text)
    assert (_at(text, needle), REFUSED, said) in _said(notes)


def test_a_scalar_http_is_refused() -> None:
    text = _vs("", extra="  http: x\n")
    found, notes = _read(text)
    assert _said(notes) == [(_at(text, "x\n"), REFUSED, "http is not a list of routes")]
    assert found.weights == {}


# -- ports --------------------------------------------------------------------------------------


def test_match_ports_become_ports_with_the_service_port_sent_to() -> None:
    text = _vs(
        "    - match: [{headers: {x-a: {exact: '1'}}, port: 80}, {headers: {x-a: {exact: '1'}}, port: 8080}]\n"
        "      route: [{destination: {host: shop, subset: v2, port: {number: 9080}}}]\n"
        "    - match: [{port: 80}, {port: 8080}]\n"
        "      route: [{destination: {host: shop, subset: v1, port: {number: 9080}}}]\n"
    )
    found, notes = _read(text, ports=(9080, 9090))
    assert found.extras == {
        "ports": [{"port": 80, "destinationPort": 9080}, {"port": 8080, "destinationPort": 9080}],
        "match": [{"version": "v2", "headers": {"x-a": {"exact": "1"}}}],
    }
    assert notes == []


def test_routes_that_match_different_ports_are_refused() -> None:
    text = _vs(
        "    - match: [{headers: {x-a: {exact: '1'}}, port: 80}]\n"
        "      route: [{destination: {host: shop, subset: v2}}]\n"
        "    - route: [{destination: {host: shop, subset: v1}}]\n"
    )
    _, notes = _read(text)
    refusal = _one(notes, _at(text, "route: [{destination: {host: shop, subset: v1"), REFUSED)
    assert "route 1 matches every port, but the routes match ports 80" in refusal.message


def test_tcp_and_tls_routes_share_the_http_weights() -> None:
    weights = (
        "        - {destination: {host: shop, subset: v1}, weight: 90}\n"
        "        - {destination: {host: shop, subset: v2}, weight: 10}\n"
    )
    text = _vs(
        "    - match: [{port: 80}]\n      route:\n" + weights,
        extra=(
            "  tcp:\n    - match: [{port: 9000}]\n      route:\n"
            + weights
            + "    - match: [{port: 9001}]\n      route: [{destination: {host: shop, subset: v1}}]\n"
            "  tls:\n    - match: [{port: 443, sniHosts: [shop.example]}]\n      route:\n" + weights
        ),
    )
    found, notes = _read(text, ports=(80, 443, 9000, 9001))
    assert found.weights == {"v1": 90, "v2": 10}
    assert found.extras == {
        "ports": [
            {"port": 80},
            {"port": 9000, "protocol": "tcp"},
            {"port": 443, "protocol": "tls", "sniHosts": ["shop.example"]},
        ]
    }
    (refusal,) = [n for n in notes if n.rule == REFUSED]
    assert str(refusal.location) == _at(text, "[{destination: {host: shop, subset: v1}}]")
    assert "tcp route 1 splits v1 100, route 0 v1 90 + v2 10" in refusal.message


def test_a_tcp_route_without_a_port_takes_the_only_one_or_is_refused() -> None:
    text = _vs("", extra="  tcp:\n    - route: [{destination: {host: shop, subset: v1}}]\n")
    found, notes = _read(text, ports=(9000,))
    assert found.extras == {"ports": [{"port": 9000, "protocol": "tcp"}]}
    assert _said(notes) == [
        (
            _at(text, "route: ["),
            NORMALIZED,
            "tcp route 0 matches no port: it takes the Service's only port, 9000",
        )
    ]
    found, notes = _read(text, ports=(9000, 9001))
    assert "ports" not in found.extras
    refusal = _one(notes, _at(text, "route: ["), REFUSED)
    assert "has no match port and Service shop has several" in refusal.message


# -- DestinationRule subsets --------------------------------------------------------------------

RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: shop
  exportTo: [.]
  workloadSelector: {matchLabels: {app: web}}
  subsets:
    - name: stable
      labels: {version: v1}
      trafficPolicy: {loadBalancer: {simple: RANDOM}}
    - {name: v2, labels: {version: v2}}
    - {name: v9, labels: {version: v9}}
"""


def test_subsets_carry_over_or_are_refused() -> None:
    text = _vs("    - route: [{destination: {host: shop, subset: stable}}]\n")
    found, notes = _read(text, rules=RULE)
    assert found.weights == {"v1": 100}
    said = {(str(n.location), n.rule): n for n in notes}
    rule = "rule.yaml"
    renamed = said[(_at(RULE, "stable", file=rule), NORMALIZED)]
    assert "subset stable is rendered as subset v1" in renamed.message
    exported = said[(_at(RULE, "exportTo", file=rule), REFUSED)]
    assert "exportTo limits the namespaces" in exported.message
    selector = said[(_at(RULE, "workloadSelector", file=rule), REFUSED)]
    assert "workloadSelector limits the workloads" in selector.message
    policy = said[(_at(RULE, "trafficPolicy", file=rule), REFUSED)]
    assert "subset stable has a traffic policy of its own" in policy.message
    unused = said[(_at(RULE, "{name: v9", file=rule), REFUSED)]
    assert "subset v9 selects none of the imported versions" in unused.message
    assert "--drop 'DestinationRule/ratings:spec.subsets[2]'" in unused.hint
