"""Where `check` points the gateway, DestinationRule and workload rules: where a person edits.

The gateway rules fire on the environment file's `gateways:` once the ingress gateway is a
service of the repository; the others on a release file's `trafficPolicy`, its `gateways:`, a
base, or a hand-edited DestinationRule. `test_finding_locations.py` holds the other rules'.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.locations import BASE, RELEASE, edit, findings, places, render, where

ENVIRONMENT = "environments/prod/environment.yaml"

SECOND_GATEWAY = """\
  micro-gateway-b:
    selector:
      istio: ingressgateway
    servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [api.example.com]
"""


def _in_both_gateways(repo: Path, line: str, token: str) -> set[tuple[str, int, int]]:
    """The place of `token` in the first gateway's `line` and in micro-gateway-b's."""
    return {
        where(repo, ENVIRONMENT, line, token),
        where(repo, ENVIRONMENT, line, token, after="micro-gateway-b"),
    }


def test_gateways_conflict(example_repo: Path, cli) -> None:
    edit(example_repo / ENVIRONMENT, "\ndefaults:", SECOND_GATEWAY + "\ndefaults:")
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateways-conflict")
    assert places(found) == _in_both_gateways(
        example_repo, "hosts: [api.example.com]", "api.example.com"
    )


def test_gateway_duplicate_certificate(example_repo: Path, cli) -> None:
    tls = (
        "      - port: {number: 443, name: https, protocol: HTTPS}\n"
        "        hosts: [api.example.com]\n"
        "        tls: {mode: SIMPLE, credentialName: api-cert}\n"
    )
    second = SECOND_GATEWAY.replace(
        "number: 80, name: http, protocol: HTTP", "number: 443, name: https, protocol: HTTPS"
    ).replace(
        "hosts: [api.example.com]\n",
        "hosts: [docs.example.com]\n        tls: {mode: SIMPLE, credentialName: api-cert}\n",
    )
    edit(
        example_repo / ENVIRONMENT,
        "        hosts: [api.example.com]\n",
        "        hosts: [api.example.com]\n" + tls,
    )
    edit(example_repo / ENVIRONMENT, "\ndefaults:", second + "\ndefaults:")
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateway-duplicate-certificate")
    assert places(found) == _in_both_gateways(example_repo, "credentialName: api-cert", "api-cert")


def test_destination_tls_verify(example_repo: Path, cli) -> None:
    edit(
        example_repo / RELEASE,
        "  loadBalancer: {simple: ROUND_ROBIN}\n",
        "  loadBalancer: {simple: ROUND_ROBIN}\n  tls: {mode: SIMPLE}\n",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "destination-tls-verify")
    assert places(found) == {where(example_repo, RELEASE, "tls: {mode: SIMPLE}", "SIMPLE")}


def test_reference_not_checked(example_repo: Path, cli) -> None:
    edit(example_repo / RELEASE, "[micro-gateway, mesh]", "[istio-system/shared-gateway, mesh]")
    render(example_repo, cli)
    found = findings(example_repo, cli, "reference-not-checked")
    assert places(found) == {
        where(example_repo, RELEASE, "gateways:", "istio-system/shared-gateway")
    }
    assert found[0]["severity"] == "info"


def test_workload_ports_agree(example_repo: Path, cli) -> None:
    # A second service whose pods carry micro-api's `app` label, and whose Service names the
    # same pod port `tcp`: each Service's port disagrees with the other's.
    copy = example_repo / "deploy/base/micro-api-copy"
    shutil.copytree(example_repo / BASE, copy)
    for name in ("deployment.yaml", "service.yaml"):
        edit(copy / name, "  name: micro-api\n", "  name: micro-api-copy\n")
    edit(copy / "service.yaml", "    - name: http\n", "    - name: tcp\n")
    (example_repo / "environments/prod/micro-api-copy.yaml").write_text(
        "service: micro-api-copy\nbase: deploy/base/micro-api-copy\nversions:\n"
        "  v1: {image: registry.example/micro-api:1.1, replicas: 1, weight: 100}\n",
        encoding="utf-8",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "workload-ports-agree")
    assert places(found) == {
        where(example_repo, f"{BASE}/service.yaml", "- name: http", "name"),
        where(example_repo, "deploy/base/micro-api-copy/service.yaml", "- name: tcp", "name"),
    }


def test_destination_rule_host(example_repo: Path, cli) -> None:
    rule = example_repo / "deploy/overlays/prod/micro-api/destinationrule.yaml"
    edit(
        rule,
        "host: micro-api.default.svc.cluster.local",
        "host: micro-apj.default.svc.cluster.local",
    )
    found = findings(example_repo, cli, "destination-rule-host")
    # The host is the base's Service: the finding points at `base:`.
    assert places(found) == {where(example_repo, RELEASE, "base:", "deploy/base/micro-api")}
    assert "edited by hand" in found[0]["hint"]


INGRESS_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress
spec:
  selector:
    matchLabels: {app: ingress, istio: ingress}
  template:
    metadata:
      annotations: {inject.istio.io/templates: gateway}
      labels: {app: ingress, istio: ingress}
    spec:
      containers:
        - name: istio-proxy
          image: auto
          ports:
            - {name: http2, containerPort: 8080}
"""
INGRESS_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: ingress
spec:
  selector: {istio: ingress}
  ports:
    - {name: http2, port: 80, targetPort: 8080}
"""


def _with_ingress(repo: Path) -> None:
    """The ingress gateway as a service of the repository: a base and a release."""
    base = repo / "deploy/base/ingress"
    base.mkdir()
    (base / "deployment.yaml").write_text(INGRESS_DEPLOYMENT, encoding="utf-8")
    (base / "service.yaml").write_text(INGRESS_SERVICE, encoding="utf-8")
    (base / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [deployment.yaml, service.yaml]\n",
        encoding="utf-8",
    )
    (repo / "environments/prod/ingress.yaml").write_text(
        "service: ingress\nbase: deploy/base/ingress\ncontainer: istio-proxy\nversions:\n"
        "  v1: {image: docker.io/istio/proxyv2:1.28.0, replicas: 2, weight: 100}\n",
        encoding="utf-8",
    )


def test_gateway_selector(example_repo: Path, cli) -> None:
    _with_ingress(example_repo)
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateway-selector")
    # At the label's value: the environment file's key that decided it.
    assert places(found) == {
        where(example_repo, ENVIRONMENT, "istio: ingressgateway", "ingressgateway")
    }


def test_gateway_port_on_service(example_repo: Path, cli) -> None:
    _with_ingress(example_repo)
    edit(example_repo / ENVIRONMENT, "istio: ingressgateway", "istio: ingress")
    edit(example_repo / ENVIRONMENT, "{number: 80, name: http", "{number: 8004, name: http")
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateway-port-on-service")
    assert places(found) == {where(example_repo, ENVIRONMENT, "number: 8004", "8004")}


def test_gateway_credential(example_repo: Path, cli) -> None:
    _with_ingress(example_repo)
    edit(example_repo / ENVIRONMENT, "istio: ingressgateway", "istio: ingress")
    edit(
        example_repo / ENVIRONMENT,
        "        hosts: [api.example.com]\n",
        "        hosts: [api.example.com]\n"
        "      - port: {number: 80, name: https, protocol: HTTPS}\n"
        "        hosts: [api.example.com]\n"
        "        tls: {mode: SIMPLE, credentialName: api-cert}\n",
    )
    (example_repo / "deploy/base/ingress/secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: other-cert}\ntype: kubernetes.io/tls\n"
        "data: {tls.crt: Y2VydA==, tls.key: a2V5}\n",
        encoding="utf-8",
    )
    edit(
        example_repo / "deploy/base/ingress/kustomization.yaml",
        "service.yaml]",
        "service.yaml, secret.yaml]",
    )
    render(example_repo, cli)
    found = findings(example_repo, cli, "gateway-credential")
    assert places(found) == {
        where(example_repo, ENVIRONMENT, "credentialName: api-cert", "api-cert")
    }
