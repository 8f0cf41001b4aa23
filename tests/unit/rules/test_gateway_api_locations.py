"""Where `check` points the Gateway API route rules: where a person edits.

They fire on the `routing: gateway-api` example environment (`environments/ambient`): a release
file's `hosts:` or a second release on the same gateway, or a hand edit of a generated route,
which points where the field is rendered from. A cross-namespace backendRef cannot be rendered
at all, so `reference-granted` is held to the line `lint` reports.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.locations import edit, findings, places, render, where

RELEASE = "environments/ambient/micro-api.yaml"
CHECKOUT = "environments/ambient/checkout.yaml"
ROUTES = "deploy/overlays/ambient/micro-api/routes.yaml"


def test_listener_allows_route(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "  - api.ambient.example.com", "  - api.other.example.com")
    render(example_repo, cli)
    found = findings(example_repo, cli, "listener-allows-route")
    # The listener serves api.ambient.example.com only: the release's hosts are the fix.
    assert places(found) == {where(example_repo, RELEASE, "hosts:")}


def test_routes_conflict(example_repo: Path, cli) -> None:
    edit(
        example_repo / CHECKOUT,
        "gateways: [mesh]",
        "hosts: [api.ambient.example.com]\ngateways: [micro-gateway]",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "routes-conflict")
    # checkout's route comes first in the build: micro-api's weighted rule is the second claim.
    assert places(found) == {where(example_repo, RELEASE, "versions:")}
    assert "checkout-gateways-80" in found[0]["message"]


# Only a hand edit of a generated route sets these off: the release file cannot express them.


def test_backend_exists(example_repo: Path, cli) -> None:
    edit(example_repo / ROUTES, "    - name: micro-api-v1", "    - name: micro-api-v3")
    found = findings(example_repo, cli, "backend-exists")
    assert places(found) == {where(example_repo, RELEASE, "  v1:", "v1")}
    assert "edited by hand" in found[0]["hint"]


def test_backend_selects_one_version(example_repo: Path, cli) -> None:
    edit(example_repo / ROUTES, "    - name: micro-api-v1", "    - name: micro-api")
    found = findings(example_repo, cli, "backend-selects-one-version")
    assert places(found) == {where(example_repo, RELEASE, "  v1:", "v1")}
    assert "selects 2 workloads" in found[0]["message"]


def test_parent_exists(example_repo: Path, cli) -> None:
    edit(example_repo / ROUTES, "    name: micro-api\n  rules:", "    name: micro-apj\n  rules:")
    found = findings(example_repo, cli, "parent-exists")
    assert places(found) == {where(example_repo, RELEASE, "gateways:")}


GRANTLESS = """\
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: billing}
spec:
  selector: {app: ledger}
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: checkout, namespace: shop}
spec:
  rules:
    - backendRefs:
        - {name: ledger, namespace: billing, port: 80}
"""


def test_reference_granted(tmp_path: Path, cli) -> None:
    manifest = tmp_path / "routes.yaml"
    manifest.write_text(GRANTLESS, encoding="utf-8")
    outcome = cli("lint", manifest)
    assert outcome.code == 1
    line = GRANTLESS.splitlines()[13]
    assert f"{manifest}:14:{line.index('billing') + 1}: error: no ReferenceGrant" in outcome.out
    assert "[reference-granted]" in outcome.out
