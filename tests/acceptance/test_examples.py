"""The bundled example environments, built with the real kustomize."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT, by_kind, kustomize_build

OVERLAYS = ROOT / "deploy" / "overlays"

# What the release files in environments/ say, written out by hand so the test can fail.
EXPECTED = {
    ("prod", "micro-api"): {"v1": (70, 3, "1.1"), "v2": (30, 3, "1.3")},
    ("staging", "micro-api"): {"v1": (50, 2, "1.1"), "v2": (50, 2, "1.3")},
    ("dev", "micro-api"): {"v1": (0, 1, "1.1"), "v2": (100, 2, "1.3")},
    ("prod", "checkout"): {"v1": (100, 4, "2.4.1"), "v2": (0, 1, "2.5.0")},
    ("staging", "checkout"): {
        "v1": (60, 2, "2.4.1"),
        "v2": (30, 2, "2.5.0"),
        "v3": (10, 1, "2.6.0-rc.1"),
    },
}
NAMESPACES = {"prod": "default", "staging": "micro-staging", "dev": "micro-dev"}


def _pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize(("env", "service"), sorted(EXPECTED))
def test_service_overlay_builds_versions_service_and_routes(env: str, service: str) -> None:
    versions = EXPECTED[env, service]
    resources = kustomize_build(OVERLAYS / env / service)
    namespace = NAMESPACES[env]
    assert {r["metadata"]["namespace"] for r in resources} == {namespace}

    deployments = {d["metadata"]["name"]: d for d in by_kind(resources, "Deployment")}
    assert sorted(deployments) == [f"{service}-{v}" for v in versions]
    for version, (_weight, replicas, tag) in versions.items():
        deployment = deployments[f"{service}-{version}"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {"app": service, "version": version}
        assert _pod_labels(deployment)["app"] == service
        assert _pod_labels(deployment)["version"] == version
        assert deployment["spec"]["replicas"] == replicas
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(f":{tag}")
        assert deployment["spec"]["minReadySeconds"] == 5
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 1,
            "maxUnavailable": 1,
        }

    (svc,) = by_kind(resources, "Service")
    assert svc["metadata"]["name"] == service
    assert "version" not in svc["spec"]["selector"]
    for deployment in deployments.values():
        assert svc["spec"]["selector"].items() <= _pod_labels(deployment).items()

    host = f"{service}.{namespace}.svc.cluster.local"
    (rule,) = by_kind(resources, "DestinationRule")
    assert rule["spec"]["host"] == host
    subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
    assert list(subsets) == list(versions)
    for version, labels in subsets.items():
        assert labels == _pod_labels(deployments[f"{service}-{version}"])
        selected = [d for d in deployments.values() if labels.items() <= _pod_labels(d).items()]
        assert len(selected) == 1

    (route_object,) = by_kind(resources, "VirtualService")
    weighted = [r for r in route_object["spec"]["http"] if r["name"].startswith("weighted")]
    assert weighted
    for route in weighted:
        assert [(d["destination"]["subset"], d["weight"]) for d in route["route"]] == [
            (v, w) for v, (w, _r, _t) in versions.items()
        ]
        assert {d["destination"]["host"] for d in route["route"]} == {host}


def test_micro_api_keeps_the_seed_ports_with_the_target_port_fixed() -> None:
    resources = kustomize_build(OVERLAYS / "prod" / "micro-api")
    (svc,) = by_kind(resources, "Service")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 19090, "targetPort": 19090}]
    for deployment in by_kind(resources, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0]["containerPort"] == 19090


def test_prod_micro_api_binds_the_gateway_and_the_mesh_with_the_seed_traffic_policy() -> None:
    resources = kustomize_build(OVERLAYS / "prod" / "micro-api")
    (route_object,) = by_kind(resources, "VirtualService")
    assert route_object["spec"]["gateways"] == ["micro-gateway", "mesh"]
    assert route_object["spec"]["hosts"] == [
        "micro-api.default.svc.cluster.local",
        "api.example.com",
    ]
    (rule,) = by_kind(resources, "DestinationRule")
    assert rule["spec"]["trafficPolicy"]["loadBalancer"] == {"simple": "ROUND_ROBIN"}
    assert rule["spec"]["trafficPolicy"]["connectionPool"]["tcp"] == {"maxConnections": 10}


def test_prod_checkout_pins_testers_and_mirrors_to_the_canary() -> None:
    resources = kustomize_build(OVERLAYS / "prod" / "checkout")
    (route_object,) = by_kind(resources, "VirtualService")
    http = route_object["spec"]["http"]
    assert [r["name"] for r in http] == ["testers", "testers-cookie", "weighted"]
    assert http[0]["match"] == [{"headers": {"x-canary": {"exact": "always"}}}]
    assert http[0]["route"][0]["destination"]["subset"] == "v2"
    cookie = http[1]["match"][0]["headers"]["cookie"]["regex"]
    assert "canary=always" in cookie
    assert http[2]["mirror"]["subset"] == "v2"
    assert http[2]["mirrorPercentage"] == {"value": 20.0}
    # `requests`: the weighted route serves the two APIs only; pins match on any path.
    assert http[2]["match"] == [
        {"uri": {"prefix": "/api/cart"}},
        {"uri": {"prefix": "/api/orders"}},
    ]
    # The testers' pin sets its own timeout; the rest of the options come from the top level.
    assert [route["timeout"] for route in http] == ["30s", "5s", "5s"]
    for route in http:
        assert route["retries"] == {
            "attempts": 2,
            "perTryTimeout": "2s",
            "retryOn": "5xx,connect-failure",
        }
        assert route["rewrite"] == {"uriRegexRewrite": {"match": "^/api/", "rewrite": "/"}}


def test_cookie_regex_matches_the_cookie_wherever_it_stands() -> None:
    import re

    resources = kustomize_build(OVERLAYS / "prod" / "checkout")
    (route_object,) = by_kind(resources, "VirtualService")
    pattern = route_object["spec"]["http"][1]["match"][0]["headers"]["cookie"]["regex"]
    for header in (
        "canary=always",
        "a=1; canary=always",
        "canary=always; b=2",
        "a=1;canary=always;b=2",
    ):
        assert re.match(pattern, header), header
    for header in ("canary=alwaysx", "xcanary=always", "canary=never", ""):
        assert not re.match(pattern, header), header


def test_staging_checkout_routes_each_port_with_three_versions() -> None:
    resources = kustomize_build(OVERLAYS / "staging" / "checkout")
    (route_object,) = by_kind(resources, "VirtualService")
    names = [r["name"] for r in route_object["spec"]["http"]]
    assert names == ["pin-v3-0-80", "weighted-80", "pin-v3-0-9090", "weighted-9090"]
    weighted = route_object["spec"]["http"][1]
    assert weighted["match"] == [{"port": 80}]
    assert all(d["destination"]["port"] == {"number": 80} for d in weighted["route"])
    (svc,) = by_kind(resources, "Service")
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 9090]
    # The base's generated ConfigMap exists once and every version points at its hashed name.
    (config,) = by_kind(resources, "ConfigMap")
    for deployment in by_kind(resources, "Deployment"):
        ref = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]
        assert ref["name"] == config["metadata"]["name"]


def test_dev_checkout_splits_by_replicas_without_istio_objects() -> None:
    resources = kustomize_build(OVERLAYS / "dev" / "checkout")
    assert not by_kind(resources, "VirtualService")
    assert not by_kind(resources, "DestinationRule")
    replicas = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in by_kind(resources, "Deployment")
    }
    assert replicas == {"checkout-v1": 8, "checkout-v2": 2}
    (svc,) = by_kind(resources, "Service")
    assert svc["spec"]["selector"] == {"app": "checkout"}
    head = (OVERLAYS / "dev" / "checkout" / "kustomization.yaml").read_text(encoding="utf-8")
    assert "v1 8/10 = 80% (weight 75), v2 2/10 = 20% (weight 25); off by at most 5 points" in head


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_environment_overlay_aggregates_services_and_gateways_once(env: str) -> None:
    resources = kustomize_build(OVERLAYS / env)
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(keys) == len(set(keys))
    (gateway,) = by_kind(resources, "Gateway")
    assert gateway["metadata"]["name"] == "micro-gateway"
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    assert gateway["spec"]["servers"][0]["hosts"] != ["*"]
    assert {r["metadata"]["name"] for r in by_kind(resources, "Service")} == {
        "micro-api",
        "checkout",
    }


def test_every_generated_file_names_its_source() -> None:
    files = [p for p in OVERLAYS.rglob("*.yaml")]
    assert files
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# Generated by meshcanary from environments/"), path
        source = first.split(" from ", 1)[1].split(";", 1)[0]
        assert (ROOT / source).exists(), (path, source)


def test_committed_tree_is_fresh(cli) -> None:
    outcome = cli("--repo", ROOT, "render", "--check")
    assert outcome.code == 0, outcome.out + outcome.err


def test_bases_are_never_written(example_repo: Path, cli) -> None:
    base = example_repo / "deploy" / "base"
    before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    (example_repo / "deploy" / "overlays").rename(example_repo / "old-overlays")
    assert cli("--repo", example_repo, "render").code == 0
    assert {p: p.read_bytes() for p in base.rglob("*") if p.is_file()} == before
