"""A version's patch of its Deployment: applied by the real kustomize in that version's folder
only, refused where it would change what the base owns, and located when a finding is on a
field it sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import ROOT, by_kind, kustomize_build, write
from tests.support.locations import findings, places, where

BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-app}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop, tier: web}}
    spec:
      containers:
        - name: proxy
          image: registry.example/envoy:1.30.0
        - name: shop
          image: registry.example/shop:0.9
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
            - {name: C, value: "3"}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop, tier: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
RELEASE = """\
service: shop
base: deploy/base/shop
versions:
  v1: {image: registry.example/shop:1.0, replicas: 2, weight: 90}
  v2:
    image: registry.example/shop:1.1
    replicas: 1
    weight: 10
    patch:
      metadata:
        labels: {tier: canary}
      spec:
        template:
          spec:
            containers:
              - name: shop
                args: [--fast]
                env:
                  - {name: B, $patch: delete}
                  - {name: D, value: "4"}
              - name: tracer
                image: registry.example/tracer:2.0
"""
RELEASE_FILE = "environments/prod/shop.yaml"


def _repo(repo: Path, release: str = RELEASE) -> Path:
    write(repo / "deploy/base/shop/kustomization.yaml", "resources: [shop.yaml]\n")
    write(repo / "deploy/base/shop/shop.yaml", BASE)
    write(repo / RELEASE_FILE, release)
    return repo


def _deployments(repo: Path) -> dict[str, dict[str, Any]]:
    resources = kustomize_build(repo / "deploy/overlays/prod/shop")
    return {d["metadata"]["name"]: d for d in by_kind(resources, "Deployment")}


def test_patch_changes_only_its_version(empty_repo: Path, cli) -> None:
    _repo(empty_repo)
    assert cli("--repo", empty_repo, "render").code == 0
    deployments = _deployments(empty_repo)
    stable, canary = deployments["shop-v1"], deployments["shop-v2"]
    assert "tier" not in stable["metadata"]["labels"]
    assert canary["metadata"]["labels"]["tier"] == "canary"
    pods = {c["name"]: c for c in canary["spec"]["template"]["spec"]["containers"]}
    assert pods["shop"]["args"] == ["--fast"]
    assert {e["name"]: e["value"] for e in pods["shop"]["env"]} == {"A": "1", "C": "3", "D": "4"}
    # The release still sets the managed container's image and the version's selector.
    assert pods["shop"]["image"] == "registry.example/shop:1.1"
    assert pods["tracer"]["image"] == "registry.example/tracer:2.0"
    assert canary["spec"]["selector"]["matchLabels"] == {"app": "shop", "version": "v2"}
    assert canary["spec"]["replicas"] == 1
    stable_env = stable["spec"]["template"]["spec"]["containers"][1]["env"]
    assert [e["name"] for e in stable_env] == ["A", "B", "C"]


def test_patch_is_rendered_as_the_same_bytes(empty_repo: Path, cli) -> None:
    _repo(empty_repo)
    assert cli("--repo", empty_repo, "render").code == 0
    folder = empty_repo / "deploy/overlays/prod/shop/v2/kustomization.yaml"
    first = folder.read_text(encoding="utf-8")
    # The patch comes last, aimed at the base's Deployment by its own name.
    assert first.endswith(
        "- patch: |-\n"
        "    apiVersion: apps/v1\n"
        "    kind: Deployment\n"
        "    metadata:\n"
        "      name: shop-app\n"
        "      labels:\n"
        "        tier: canary\n"
        "    spec:\n"
        "      template:\n"
        "        spec:\n"
        "          containers:\n"
        "          - name: shop\n"
        "            args:\n"
        '            - "--fast"\n'
        "            env:\n"
        "            - name: B\n"
        "              $patch: delete\n"
        "            - name: D\n"
        '              value: "4"\n'
        "          - name: tracer\n"
        "            image: registry.example/tracer:2.0\n"
    )
    assert "kind: Deployment\n    metadata:" not in (
        folder.parent.parent / "v1/kustomization.yaml"
    ).read_text("utf-8")
    outcome = cli("--repo", empty_repo, "render")
    assert outcome.code == 0
    assert "no file(s) changed" in outcome.err
    assert folder.read_text(encoding="utf-8") == first


def test_finding_on_a_field_the_patch_sets_points_at_the_patch(empty_repo: Path, cli) -> None:
    _repo(empty_repo, RELEASE.replace("tracer:2.0", "tracer:latest"))
    assert cli("--repo", empty_repo, "render").code == 0
    found = findings(empty_repo, cli, "mutable-image-tag")
    expected = where(empty_repo, RELEASE_FILE, "image: registry.example/tracer:latest", "registry")
    assert places(found) == {expected}


def test_finding_on_the_managed_image_still_points_at_the_version(empty_repo: Path, cli) -> None:
    # The patch names `shop` first, which moves it before `proxy` in the built Deployment.
    _repo(empty_repo, RELEASE.replace("shop:1.1", "shop:latest"))
    assert cli("--repo", empty_repo, "render").code == 0
    canary = _deployments(empty_repo)["shop-v2"]
    assert [c["name"] for c in canary["spec"]["template"]["spec"]["containers"]] == [
        "shop",
        "tracer",
        "proxy",
    ]
    found = findings(empty_repo, cli, "mutable-image-tag")
    assert places(found) == {where(empty_repo, RELEASE_FILE, "shop:latest", "registry")}


def test_patch_of_a_base_built_by_kustomize(empty_repo: Path, cli) -> None:
    _repo(empty_repo)
    write(
        empty_repo / "deploy/base/shop/kustomization.yaml",
        "resources: [shop.yaml]\ncommonLabels: {team: blue}\n",
    )
    assert cli("--repo", empty_repo, "render").code == 0
    canary = _deployments(empty_repo)["shop-v2"]
    assert canary["metadata"]["labels"] == {"team": "blue", "tier": "canary", "version": "v2"}


def _refused(repo: Path, cli, release: str) -> str:
    _repo(repo, release)
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 2
    assert not (repo / "deploy/overlays").exists()
    return outcome.err


def test_patch_of_the_managed_image_is_refused(empty_repo: Path, cli) -> None:
    release = RELEASE.replace("args: [--fast]", "image: registry.example/shop:9")
    err = _refused(empty_repo, cli, release)
    _, line, column = where(empty_repo, RELEASE_FILE, "image: registry.example/shop:9")
    assert err.startswith(
        f"{RELEASE_FILE}:{line}:{column}: error: the patch of v2 sets image of container shop, "
        "whose image the release sets\n  hint: set versions.v2.image instead"
    )


def test_deleting_the_managed_container_is_refused(empty_repo: Path, cli) -> None:
    err = _refused(empty_repo, cli, RELEASE.replace("args: [--fast]", "$patch: delete"))
    _, line, column = where(empty_repo, RELEASE_FILE, "$patch: delete", after="- name: shop")
    assert err.startswith(f"{RELEASE_FILE}:{line}:{column}: error: the patch of v2 sets $patch")


def test_another_container_may_be_deleted(empty_repo: Path, cli) -> None:
    release = RELEASE.replace(
        "              - name: tracer\n                image: registry.example/tracer:2.0\n",
        "              - {name: proxy, $patch: delete}\n",
    )
    _repo(empty_repo, release)
    assert cli("--repo", empty_repo, "render").code == 0
    canary = _deployments(empty_repo)["shop-v2"]
    assert [c["name"] for c in canary["spec"]["template"]["spec"]["containers"]] == ["shop"]


def test_changing_a_selected_pod_label_is_refused(empty_repo: Path, cli) -> None:
    # The Service selects tier: web; a version's pods without it would get no traffic.
    release = RELEASE.replace(
        "        template:\n          spec:\n",
        "        template:\n          metadata:\n            labels: {tier: canary}\n          spec:\n",
    )
    err = _refused(empty_repo, cli, release)
    _, line, column = where(
        empty_repo, RELEASE_FILE, "labels: {tier: canary}", "tier", after="template"
    )
    assert err.startswith(
        f"{RELEASE_FILE}:{line}:{column}: error: the patch of v2 changes pod label tier, "
        "which the Service or the Deployment's selector selects on"
    )


def test_other_pod_labels_may_change(empty_repo: Path, cli) -> None:
    release = RELEASE.replace(
        "        template:\n          spec:\n",
        "        template:\n          metadata:\n            labels: {track: canary}\n          spec:\n",
    )
    _repo(empty_repo, release)
    assert cli("--repo", empty_repo, "render").code == 0
    labels = _deployments(empty_repo)["shop-v2"]["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app": "shop", "tier": "web", "track": "canary", "version": "v2"}
    outcome = cli("--repo", empty_repo, "check")
    assert outcome.code == 0, outcome.out


def test_the_staging_example_patches_its_canary() -> None:
    resources = kustomize_build(ROOT / "deploy/overlays/staging/checkout")
    containers = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
        for d in by_kind(resources, "Deployment")
    }
    assert "env" not in containers["checkout-v2"]
    # The release candidate's patch adds LOG_LEVEL to what the base sets.
    assert containers["checkout-v3"]["env"][-1] == {"name": "LOG_LEVEL", "value": "debug"}
    assert containers["checkout-v3"]["env"][:-1] == containers["checkout-v2"].get("env", [])
    assert containers["checkout-v3"]["resources"] == containers["checkout-v1"]["resources"]
