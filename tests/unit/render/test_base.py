"""Reading bases: plain ones directly, anything else through kustomize, and what a base must hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.problem import Location
from meshcanary.render.base import read_base
from tests.support import ROOT, by_kind, kustomize_build, write

RELEASE = """\
service: shop
base: deploy/base/shop
versions:
  v1: {image: registry.example/shop:1.0, replicas: 2, weight: 90}
  v2: {image: registry.example/shop:1.1, replicas: 1, weight: 10}
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - {name: proxy, image: envoyproxy/envoy:v1.30.0}
        - {name: shop, image: old.example/shop:0.9}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: shop-svc}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def _base(repo: Path, kustomization: str, **files: str) -> None:
    folder = repo / "deploy/base/shop"
    write(folder / "kustomization.yaml", kustomization)
    write(folder / "deployment.yaml", files.get("deployment", DEPLOYMENT))
    write(folder / "service.yaml", files.get("service", SERVICE))


def test_plain_base_is_read_without_kustomize() -> None:
    base = read_base(ROOT, "deploy/base/checkout", Location("x"))
    assert base.deployment == "checkout"
    assert base.service == "checkout"
    assert base.other_kinds == ("ConfigMap", "Service")
    assert base.selector == {"app": "checkout"}


def test_base_with_transformers_is_built_by_kustomize(empty_repo: Path, cli) -> None:
    _base(
        empty_repo,
        "resources: [deployment.yaml, service.yaml]\nnamePrefix: web-\ncommonLabels: {tier: front}\n",
    )
    write(empty_repo / "environments/prod/shop.yaml", RELEASE)
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/shop")
    # Deployments are <service>-<version> whatever the base calls its own.
    replicas = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in by_kind(resources, "Deployment")
    }
    assert replicas == {"shop-v1": 2, "shop-v2": 1}
    (rule,) = by_kind(resources, "DestinationRule")
    # The route goes to the Service as kustomize names it, prefix included.
    assert rule["spec"]["host"] == "web-shop-svc.shop.svc.cluster.local"
    assert rule["spec"]["subsets"][0]["labels"] == {"app": "shop", "tier": "front", "version": "v1"}


def test_deployment_named_unlike_the_service_is_renamed(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n")
    write(
        empty_repo / "environments/prod/api.yaml", RELEASE.replace("service: shop", "service: api")
    )
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/api")
    assert sorted(d["metadata"]["name"] for d in by_kind(resources, "Deployment")) == [
        "api-v1",
        "api-v2",
    ]
    (route,) = by_kind(resources, "VirtualService")
    # With no hosts in the release, the route's host is the Service the base defines.
    assert route["spec"]["hosts"] == ["shop-svc.shop.svc.cluster.local"]
    assert {d["destination"]["host"] for d in route["spec"]["http"][0]["route"]} == {
        "shop-svc.shop.svc.cluster.local"
    }


def test_image_goes_to_the_container_named_like_the_service(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n")
    write(empty_repo / "environments/prod/shop.yaml", RELEASE)
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/shop")
    images = {
        d["metadata"]["name"]: [c["image"] for c in d["spec"]["template"]["spec"]["containers"]]
        for d in by_kind(resources, "Deployment")
    }
    assert images == {
        "shop-v1": ["envoyproxy/envoy:v1.30.0", "registry.example/shop:1.0"],
        "shop-v2": ["envoyproxy/envoy:v1.30.0", "registry.example/shop:1.1"],
    }


def test_container_option_picks_another_container(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n")
    write(
        empty_repo / "environments/prod/shop.yaml",
        RELEASE.replace("versions:", "container: proxy\nversions:"),
    )
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/shop")
    first = by_kind(resources, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert first[0]["image"] == "registry.example/shop:1.0"
    assert first[1]["image"] == "old.example/shop:0.9"


def test_unknown_container_is_located(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n")
    write(
        empty_repo / "environments/prod/shop.yaml",
        RELEASE.replace("versions:", "container: sidecar\nversions:"),
    )
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(
        'environments/prod/shop.yaml:3:12: error: container "sidecar" is not in the base Deployment (proxy, shop)'
    )


def test_image_digest_is_kept(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n")
    digest = "sha256:" + "a" * 64
    write(empty_repo / "environments/prod/shop.yaml", RELEASE.replace("shop:1.1", f"shop@{digest}"))
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/shop")
    images = [
        d["spec"]["template"]["spec"]["containers"][1]["image"]
        for d in by_kind(resources, "Deployment")
    ]
    assert images == ["registry.example/shop:1.0", f"registry.example/shop@{digest}"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"service": SERVICE.replace("{app: shop}", "{app: shop, version: v1}")},
            'the Service in base "deploy/base/shop" selects on "version"',
        ),
        (
            {
                "deployment": DEPLOYMENT.replace(
                    "matchLabels: {app: shop}", "matchLabels: {name: shop}"
                )
            },
            'the Deployment in base "deploy/base/shop" has no "app" label in spec.selector.matchLabels',
        ),
        (
            {
                "deployment": DEPLOYMENT
                + "---\n"
                + DEPLOYMENT.replace("name: shop}", "name: worker}", 1)
            },
            'base "deploy/base/shop" must hold exactly one Deployment, found 2',
        ),
        (
            {"service": SERVICE.replace("{app: shop}", "{app: store}")},
            'the Service in base "deploy/base/shop" selects app=store, which its pods do not carry',
        ),
    ],
    ids=["service-selects-version", "no-app-label", "two-deployments", "service-misses-pods"],
)
def test_unusable_base_is_reported_at_the_base_field(
    empty_repo: Path, cli, files: dict, message: str
) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml]\n", **files)
    write(empty_repo / "environments/prod/shop.yaml", RELEASE)
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(f"environments/prod/shop.yaml:2:7: error: {message}"), outcome.err
    assert not (empty_repo / "deploy/overlays").exists()


def test_base_kustomize_cannot_build_is_reported(empty_repo: Path, cli) -> None:
    _base(
        empty_repo,
        "resources: [deployment.yaml, service.yaml]\nnamePrefix: x-\n"
        "patches: [{patch: 'kind: Deployment', target: {kind: Deployment}}]\n",
    )
    write(empty_repo / "environments/prod/shop.yaml", RELEASE)
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(
        'environments/prod/shop.yaml:2:7: error: kustomize cannot build base "deploy/base/shop"'
    ), outcome.err


def test_a_base_entry_that_names_nothing_is_reported_at_its_line(empty_repo: Path, cli) -> None:
    _base(empty_repo, "resources: [deployment.yaml, service.yaml, missing.yaml]\nnamePrefix: x-\n")
    write(empty_repo / "environments/prod/shop.yaml", RELEASE)
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 2
    assert outcome.err == (
        'deploy/base/shop/kustomization.yaml:1:44: error: resources entry "missing.yaml" '
        "names no file or folder\n"
    )
