"""A release file that uses every routing field of the release format, for the tests of the
loader, the renderer, the rules and the edit commands."""

from __future__ import annotations

from pathlib import Path

# staging's checkout (three versions, two Service ports: 80 http, 9090 grpc), rewritten to use
# every routing field. Each value stands on a line of its own so a location can be told.
EVERY_ROUTE_FIELD = """\
# yaml-language-server: $schema=../../schemas/release.schema.json
service: checkout
base: deploy/base/checkout
gateways: [mesh]
ports:
  - port: 80
  - port: 443
    protocol: tls
    destinationPort: 9090
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


def install(repo: Path, text: str = EVERY_ROUTE_FIELD) -> Path:
    """Write `text` as staging's checkout release in the example repository `repo`."""
    path = repo / RELEASE
    path.write_text(text, encoding="utf-8")
    return path
