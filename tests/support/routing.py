"""A release file that uses every routing field of the release format, for the tests of the
loader, the renderer, the rules and the edit commands."""

from __future__ import annotations

from pathlib import Path

# staging's checkout (three versions; Service ports 80 http and 9090 grpc, and, in the base as
# `install` writes it, 443 tls and 8443 tls-next), rewritten to use every routing field. Each
# value stands on a line of its own so a location can be told. The TLS route takes port 443
# and sends to 8443: both carry TLS (sent to 9090, gRPC, its bytes would be read as HTTP).
EVERY_ROUTE_FIELD = """\
# yaml-language-server: $schema=../../schemas/release.schema.json
service: checkout
base: deploy/base/checkout
gateways: [mesh]
ports:
  - port: 80
  - port: 443
    protocol: tls
    destinationPort: 8443
    sniHosts:
      - checkout.micro-staging.svc.cluster.local
timeout: 10s
retries: {attempts: 3, perTryTimeout: 3s}
rewrite:
  authority: checkout.internal
corsPolicy:
  allowOrigins:
    - exact: https://shop.example.com
  maxAge: 24h
requestHeaders:
  set:
    x-env: staging
  remove: [x-debug]
responseHeaders:
  add:
    x-served-by: checkout
requests:
  - uri:
      prefix: /api
    method:
      exact: GET
    ignoreUriCase: true
  - authority:
      exact: checkout.example.com
    headers:
      x-user:
        exact: a
    queryParams:
      debug:
        exact: "1"
match:
  - version: v3
    name: rc
    uri:
      prefix: /api/v3
    method:
      regex: GET|POST
    queryParams:
      rc:
        regex: .+
    timeout: 20s
    retries:
      attempts: 1
    rewrite:
      uri: /api
    corsPolicy:
      allowOrigins:
        - prefix: https://
    requestHeaders:
      add:
        x-rc: "1"
    responseHeaders:
      remove: [server]
  - version: v2
    cookies: {beta: "yes"}
versions:
  v1: {image: registry.example/shop/checkout:2.4.1, replicas: 2, weight: 60}
  v2: {image: registry.example/shop/checkout:2.5.0, replicas: 2, weight: 30}
  v3: {image: registry.example/shop/checkout:2.6.0-rc.1, replicas: 1, weight: 10}
"""

RELEASE = "environments/staging/checkout.yaml"
BASE = "deploy/base/checkout"

# What the TLS route needs of checkout's base: Service ports that carry TLS, and the
# container port they reach.
TLS_SERVICE_PORTS = """\
    - name: tls
      port: 443
      targetPort: tls
    - name: tls-next
      port: 8443
      targetPort: tls
"""
TLS_CONTAINER_PORT = """\
            - name: tls
              containerPort: 8443
"""


def install(repo: Path, text: str = EVERY_ROUTE_FIELD) -> Path:
    """Write `text` as staging's checkout release in the example repository `repo`, and give
    checkout's base the TLS ports it routes."""
    _insert(repo / BASE / "service.yaml", "      targetPort: grpc\n", TLS_SERVICE_PORTS)
    _insert(
        repo / BASE / "deployment.yaml", "              containerPort: 9090\n", TLS_CONTAINER_PORT
    )
    path = repo / RELEASE
    path.write_text(text, encoding="utf-8")
    return path


def _insert(path: Path, after: str, text: str) -> None:
    """Insert `text` after the line `after`, once (installing twice changes nothing)."""
    content = path.read_text(encoding="utf-8")
    assert after in content, f"{after!r} is not in {path}"
    if text not in content:
        path.write_text(content.replace(after, after + text, 1), encoding="utf-8")
