"""Istio routing as decision tables: which workloads a request reaches, with what share."""

from __future__ import annotations

from fractions import Fraction

import pytest

from meshcanary import routing
from meshcanary.errors import InputError
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.problem import Location
from meshcanary.routing import Target
from tests.support import BOOKINFO
from tests.support.bounds import hang_guard

REVIEWS = ("mesh", "reviews.default.svc.cluster.local", "http")
TWO_VERSIONS = """\
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v1}
spec:
  selector: {matchLabels: {app: api, version: v1}}
  template: {metadata: {labels: {app: api, version: v1}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v2}
spec:
  selector: {matchLabels: {app: api, version: v2}}
  template: {metadata: {labels: {app: api, version: v2}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
"""
API = ("mesh", "api.default.svc.cluster.local", "http")
V1, V2 = Target(("api-v1",)), Target(("api-v2",))


def read(*texts: str, files: tuple[str, ...] = ()) -> list[Resource]:
    parsed = Parsed()
    for name in files:
        parse_text((BOOKINFO / name).read_text(encoding="utf-8"), name, parsed)
    for number, text in enumerate(texts):
        parse_text(text, f"inline-{number}.yaml", parsed)
    assert parsed.problems == []
    return parsed.resources


def route(http: str, extra: str = "") -> list[Resource]:
    """The two-version `api` with one VirtualService whose `http:` is `http`."""
    service = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\n"
        f"spec:\n  hosts: [api]\n{extra}  http:\n{http}"
    )
    return read(TWO_VERSIONS, service)


def decisions(resources: list[Resource], key: routing.Key = API) -> list[routing.Decision]:
    found = routing.table(resources).lookup(key)
    assert found is not None
    return found


def test_bookinfo_reviews_split_is_one_decision_with_shares() -> None:
    resources = read(
        files=("bookinfo.yaml", "destination-rule-all.yaml", "virtual-service-reviews-80-20.yaml")
    )
    (decision,) = decisions(resources, REVIEWS)
    assert decision.catch_all
    assert decision.action == {
        Target(("reviews-v1",)): Fraction(4, 5),
        Target(("reviews-v2",)): Fraction(1, 5),
    }
    assert decision.sources[Target(("reviews-v2",))] == ("spec", "http", 0, "route", 1, "weight")


def test_bookinfo_ingress_route_is_one_decision_per_uri_match() -> None:
    resources = read(files=("bookinfo.yaml", "destination-rule-all.yaml", "bookinfo-gateway.yaml"))
    found = decisions(resources, ("default/bookinfo-gateway", "*", "http"))
    assert [d.condition for d in found] == [
        {"uri": {"exact": "/productpage"}},
        {"uri": {"prefix": "/static"}},
        {"uri": {"exact": "/login"}},
        {"uri": {"exact": "/logout"}},
        {"uri": {"prefix": "/api/v1/products"}},
    ]
    assert [d.condition_path for d in found][-1] == ("spec", "http", 0, "match", 4)
    # `port: {number: 9080}` is productpage's only port: the same as naming none.
    assert {t for d in found for t in d.action} == {Target(("productpage-v1",))}
    # The route is bound to the gateway only: in-mesh callers get Kubernetes' own routing.
    assert routing.table(resources).lookup(
        ("mesh", "productpage.default.svc.cluster.local", "http")
    ) == [routing.Decision({}, {Target(("productpage-v1",)): Fraction(1)})]


def test_a_service_without_routes_reaches_every_pod_it_selects() -> None:
    resources = read(files=("bookinfo.yaml",))
    (decision,) = decisions(resources, REVIEWS)
    # The Service spreads requests over its pods: each version takes its share of replicas.
    third = Fraction(1, 3)
    assert decision.action == {
        Target(("reviews-v1",)): third,
        Target(("reviews-v2",)): third,
        Target(("reviews-v3",)): third,
    }
    scaled = read(
        (BOOKINFO / "bookinfo.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "name: reviews-v1\n  labels:\n    app: reviews\n    version: v1\nspec:\n  replicas: 1",
            "name: reviews-v1\n  labels:\n    app: reviews\n    version: v1\nspec:\n  replicas: 2",
        )
    )
    (decision,) = decisions(scaled, REVIEWS)
    assert decision.action[Target(("reviews-v1",))] == Fraction(1, 2)
    assert (
        routing.table(resources).lookup(("mesh", "nowhere.default.svc.cluster.local", "http"))
        is None
    )
    assert routing.table(resources).lookup(("default/gw", REVIEWS[1], "http")) is None


def test_two_routes_with_one_condition_each_equal_one_route_with_two() -> None:
    split = route(
        "    - match: [{headers: {x-user: {exact: a}}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - match: [{uri: {prefix: /beta}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - route: [{destination: {host: api, subset: v1}}]\n"
    )
    joined = route(
        "    - match: [{headers: {x-user: {exact: a}}, name: user}, {uri: {prefix: /beta}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - route: [{destination: {host: api, subset: v1}}]\n"
    )
    assert decisions(split) == decisions(joined)
    assert [d.action for d in decisions(split)] == [{V2: 1}, {V2: 1}, {V1: 1}]
    # ... and a different order of the same conditions is a different table.
    swapped = route(
        "    - match: [{uri: {prefix: /beta}}, {headers: {x-user: {exact: a}}}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - route: [{destination: {host: api, subset: v1}}]\n"
    )
    assert decisions(swapped) != decisions(joined)


def test_routes_after_a_catch_all_and_repeated_conditions_are_left_out() -> None:
    found = decisions(
        route(
            "    - match: [{headers: {x-user: {exact: a}}}]\n"
            "      route: [{destination: {host: api, subset: v2}}]\n"
            "    - match: [{headers: {x-user: {exact: a}}}]\n"
            "      route: [{destination: {host: api, subset: v1}}]\n"
            "    - route: [{destination: {host: api, subset: v1}}]\n"
            "    - match: [{uri: {prefix: /never}}]\n"
            "      route: [{destination: {host: api, subset: v2}}]\n"
        )
    )
    assert [(d.condition, d.action) for d in found] == [
        ({"headers": {"x-user": {"exact": "a"}}}, {V2: 1}),
        ({}, {V1: 1}),
    ]
    # An empty match entry matches every request too.
    assert decisions(
        route(
            "    - match: [{}]\n      route: [{destination: {host: api, subset: v1}}]\n"
            "    - route: [{destination: {host: api, subset: v2}}]\n"
        )
    ) == [routing.Decision({}, {V1: 1})]


def test_shares_are_fractions_of_the_route_total() -> None:
    def shares(one: int, other: int) -> list[routing.Decision]:
        return decisions(
            route(
                f"    - route:\n        - {{destination: {{host: api, subset: v1}}, weight: {one}}}\n"
                f"        - {{destination: {{host: api, subset: v2}}, weight: {other}}}\n"
            )
        )

    assert shares(80, 20) == shares(4, 1)
    assert shares(80, 20)[0].action == {V1: Fraction(4, 5), V2: Fraction(1, 5)}
    assert shares(80, 20) != shares(70, 30)
    # A version at 0 gets nothing: it is no destination.
    assert shares(100, 0)[0].action == {V1: 1}


def test_a_destination_without_subset_equals_the_subset_that_is_all_of_it() -> None:
    one_version = TWO_VERSIONS.split("---\n")
    single = "---\n".join([one_version[0], one_version[1], one_version[3]])
    service = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\n"
        "spec:\n  hosts: [api]\n  http:\n    - route: [{destination: {host: api%s}}]\n"
    )
    plain = read(single, service % "")
    subset = read(single, service % ", subset: v1, port: {number: 8080}")
    assert decisions(plain) == decisions(subset) == [routing.Decision({}, {V1: 1})]
    # With two versions behind the Service, no subset reaches both, by their replicas.
    assert decisions(read(TWO_VERSIONS, service % ""))[0].action == {
        V1: Fraction(1, 2),
        V2: Fraction(1, 2),
    }


def test_a_subset_is_the_deployments_it_selects_whatever_its_labels_say() -> None:
    relabelled = TWO_VERSIONS.replace(
        "{name: v1, labels: {version: v1}}", "{name: v1, labels: {app: api, version: v1}}"
    )
    service = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\n"
        "spec:\n  hosts: [api]\n  http:\n    - route: [{destination: {host: api, subset: v1}}]\n"
    )
    assert decisions(read(TWO_VERSIONS, service)) == decisions(read(relabelled, service))
    pointing_elsewhere = TWO_VERSIONS.replace(
        "{name: v1, labels: {version: v1}}", "{name: v1, labels: {version: v2}}"
    )
    assert decisions(read(pointing_elsewhere, service))[0].action == {V2: 1}
    missing = service.replace("subset: v1", "subset: v9")
    assert decisions(read(TWO_VERSIONS, missing))[0].action == {
        Target(("api.default.svc.cluster.local subset v9 (no such subset)",)): 1
    }


def test_mirrors_options_and_scope_are_part_of_the_decision() -> None:
    found = decisions(
        route(
            "    - name: main\n"
            "      route: [{destination: {host: api, subset: v1}}]\n"
            "      mirror: {host: api, subset: v2}\n"
            "      mirrorPercentage: {value: 12.5}\n"
            "      timeout: 5s\n"
            "      fault: {abort: {httpStatus: 500, percentage: {value: 1}}}\n",
            extra="  exportTo: ['.']\n",
        )
    )
    (decision,) = found
    assert decision.mirrors == {V2: Fraction(25, 2)}
    # Every field the table does not read itself is kept as written; a name is only a label.
    assert decision.options == {
        "timeout": "5s",
        "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 1}}},
    }
    assert decision.scope == {"exportTo": ["."]}


def test_match_gateways_replace_the_virtual_service_gateways() -> None:
    resources = route(
        "    - match: [{uri: {prefix: /admin}, gateways: [mesh]}]\n"
        "      route: [{destination: {host: api, subset: v2}}]\n"
        "    - route: [{destination: {host: api, subset: v1}}]\n",
        extra="  gateways: [public, mesh]\n",
    )
    table = routing.table(resources)
    assert [d.condition for d in table.routes[API]] == [{"uri": {"prefix": "/admin"}}, {}]
    assert [d.condition for d in table.routes[("default/public", API[1], "http")]] == [{}]


def test_tcp_and_tls_routes_are_tables_of_their_own() -> None:
    resources = route(
        "    - route: [{destination: {host: api, subset: v1}}]\n"
        "  tcp:\n"
        "    - match: [{port: 9000}]\n"
        "      route:\n"
        "        - {destination: {host: api, subset: v1}, weight: 50}\n"
        "        - {destination: {host: api, subset: v2}, weight: 50}\n"
    )
    (tcp,) = decisions(resources, ("mesh", API[1], "tcp"))
    assert tcp.condition == {"port": 9000}
    assert tcp.action == {V1: Fraction(1, 2), V2: Fraction(1, 2)}


def test_a_namespace_moves_hosts_and_gateways_of_the_input() -> None:
    resources = route(
        "    - route: [{destination: {host: api.default.svc.cluster.local, subset: v1}}]\n",
        extra="  gateways: [public, other/edge]\n",
    )
    moved = routing.table(resources, namespace="shop")
    assert set(moved.routes) == {
        ("shop/public", "api.shop.svc.cluster.local", "http"),
        ("other/edge", "api.shop.svc.cluster.local", "http"),
    }
    assert set(moved.services) == {"api.shop.svc.cluster.local"}


def test_the_caller_names_the_workloads() -> None:
    resources = route("    - route: [{destination: {host: api, subset: v2}}]\n")
    table = routing.table(resources, lambda d: d.name.replace("api-", "new-"))
    assert table.routes[API][0].action == {Target(("new-v2",)): 1}


def test_destination_rule_policies_are_read_per_host_and_subset() -> None:
    resources = read(
        TWO_VERSIONS.replace(
            "  host: api\n",
            "  host: api\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n",
        ).replace(
            "{name: v2, labels: {version: v2}}",
            "{name: v2, labels: {version: v2}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}",
        )
    )
    (policy,) = routing.policies(resources).values()
    assert policy.settings == {"trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}}
    assert policy.subsets == {("api-v2",): {"tls": {"mode": "ISTIO_MUTUAL"}}}


def test_many_conditions_are_read_in_one_pass() -> None:
    many = "".join(f"      - uri: {{exact: /p{n}}}\n" for n in range(20_000))
    http = f"    - match:\n{many}      route: [{{destination: {{host: api, subset: v1}}}}]\n"
    resources = route(http + http)
    # Comparing each condition with every earlier one takes minutes here; a set, a second.
    with hang_guard(30):
        found = decisions(resources)
    assert len(found) == 20_000


def test_a_product_of_hosts_gateways_and_conditions_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(routing, "MAX_DECISIONS", 5)
    resources = route(
        "    - match: [{uri: {exact: /a}}, {uri: {exact: /b}}]\n"
        "      route: [{destination: {host: api, subset: v1}}]\n",
        extra="  gateways: [a, b, mesh]\n",
    )
    with pytest.raises(InputError) as raised:
        routing.table(resources)
    (problem,) = raised.value.problems
    assert problem.location == Location("inline-1.yaml", 1, 1)
    assert "more than 5 routing decisions" in problem.message
