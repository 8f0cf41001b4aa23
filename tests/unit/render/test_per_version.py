"""Base objects rendered once per version: an autoscaler of the base's Deployment, and any
object annotated meshcanary.dev/per-version; everything else stays once, in _service/."""

from __future__ import annotations

from pathlib import Path

import yaml

from meshcanary.problem import Location
from meshcanary.render.base import read_base
from tests.support import by_kind, kustomize_build, write

OBJECTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-app}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      serviceAccountName: shop
      containers:
        - {name: shop, image: registry.example/shop:0.9, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: shop}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop-app}
  minReplicas: 1
  maxReplicas: 5
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: other}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: shop-app}
  minReplicas: 1
  maxReplicas: 5
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: shop
  annotations: {meshcanary.dev/per-version: "true"}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: shop}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: shop.all}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: shop}}
"""
RELEASE = """\
service: shop
base: deploy/base/shop
versions:
  v1: {image: registry.example/shop:1.0, replicas: 2, weight: 90}
  v2: {image: registry.example/shop:1.1, replicas: 1, weight: 10}
"""


def _repo(repo: Path, objects: str = OBJECTS) -> Path:
    write(repo / "deploy/base/shop/kustomization.yaml", "resources: [objects.yaml]\n")
    write(repo / "deploy/base/shop/objects.yaml", objects)
    write(repo / "environments/prod/shop.yaml", RELEASE)
    return repo


def test_base_tells_per_version_objects_apart(empty_repo: Path) -> None:
    _repo(empty_repo)
    base = read_base(empty_repo, "deploy/base/shop", Location("x"))
    assert base.per_version == (
        ("HorizontalPodAutoscaler", "shop"),
        ("PodDisruptionBudget", "shop"),
    )
    # A version folder drops whole kinds it keeps nothing of, and single objects otherwise.
    assert base.shared_deletions() == [
        ("Service", None),
        ("ServiceAccount", None),
        ("HorizontalPodAutoscaler", "other"),
        ("PodDisruptionBudget", "shop.all"),
    ]


def test_per_version_objects_follow_their_version(empty_repo: Path, cli) -> None:
    _repo(empty_repo)
    assert cli("--repo", empty_repo, "render").code == 0
    resources = kustomize_build(empty_repo / "deploy/overlays/prod/shop")
    autoscalers = {
        h["metadata"]["name"]: h["spec"]["scaleTargetRef"]["name"]
        for h in by_kind(resources, "HorizontalPodAutoscaler")
    }
    # Each version scales its own Deployment; the one of another workload stays once.
    assert autoscalers == {"shop-v1": "shop-v1", "shop-v2": "shop-v2", "other": "shop-app"}
    budgets = {
        p["metadata"]["name"]: p["spec"]["selector"]["matchLabels"]
        for p in by_kind(resources, "PodDisruptionBudget")
    }
    assert budgets == {
        "shop-v1": {"app": "shop", "version": "v1"},
        "shop-v2": {"app": "shop", "version": "v2"},
        "shop.all": {"app": "shop"},
    }
    assert [s["metadata"]["name"] for s in by_kind(resources, "ServiceAccount")] == ["shop"]
    assert [s["metadata"]["name"] for s in by_kind(resources, "Service")] == ["shop"]
    assert len(by_kind(resources, "Deployment")) == 2


def test_without_per_version_objects_every_kind_is_dropped_whole(empty_repo: Path, cli) -> None:
    _repo(empty_repo, OBJECTS.split("---\napiVersion: autoscaling/v2")[0])
    assert cli("--repo", empty_repo, "render").code == 0
    folder = empty_repo / "deploy/overlays/prod/shop"
    version = yaml.safe_load((folder / "v1/kustomization.yaml").read_text("utf-8"))
    targets = [p["target"] for p in version["patches"] if "target" in p]
    assert targets == [{"kind": "^(Service|ServiceAccount)$"}, {"kind": "Deployment"}]
    resources = kustomize_build(folder)
    assert sorted(r["kind"] for r in resources) == [
        "Deployment",
        "Deployment",
        "DestinationRule",
        "Service",
        "ServiceAccount",
        "VirtualService",
    ]


def test_per_version_objects_raise_no_findings(empty_repo: Path, cli) -> None:
    _repo(empty_repo)
    assert cli("--repo", empty_repo, "render").code == 0
    outcome = cli("--repo", empty_repo, "check")
    assert outcome.code == 0, outcome.out


def test_a_per_version_service_is_refused(empty_repo: Path, cli) -> None:
    objects = OBJECTS.replace(
        "kind: Service\nmetadata: {name: shop}",
        'kind: Service\nmetadata:\n  name: shop\n  annotations: {meshcanary.dev/per-version: "true"}',
    )
    _repo(empty_repo, objects)
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 2
    assert outcome.err.startswith(
        "environments/prod/shop.yaml:2:7: error: the Service in base "
        '"deploy/base/shop" is annotated meshcanary.dev/per-version'
    )
