"""The rules that stand in for istioctl analyze: where `check` points them, and what they leave.

The `test_<rule_id>` functions are location tests in the manner of
tests/test_finding_locations.py (each rule, set off in a copy of the examples, is asserted at
the `file:line:col` a person edits); the others hold the rules to what the examples render.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from meshcanary.manifest import Parsed, parse_text
from meshcanary.rules import Scope, destination_host_exists, run

ANALYZERS = (
    "destination-host-exists",
    "destination-port-required",
    "ingress-bypasses-subsets",
    "istio-deprecated-field",
    "istio-route-valid",
    "mesh-host-conflict",
    "route-unreachable",
)
PROD = "environments/prod"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _at(repo: Path, name: str, line_text: str, value: str | None = None) -> tuple[str, int, int]:
    """`name`, the first line holding `line_text`, and the column where `value` starts on it."""
    lines = (repo / name).read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines) if line_text in line)
    column = lines[number].index(value if value is not None else line_text.lstrip()) + 1
    return name, number + 1, column


def _render(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "render")
    assert outcome.code == 0, outcome.err


def _findings(repo: Path, cli, *rules: str) -> list[dict]:
    outcome = cli("--repo", repo, "check", "--format", "json")
    assert outcome.code in (0, 1), outcome.err
    return [f for f in json.loads(outcome.out)["findings"] if f["rule"] in rules]


def _places(found: list[dict]) -> set[tuple[str, int, int]]:
    return {(f["file"], f["line"], f["column"]) for f in found}


# Where `check` points each rule ----------------------------------------------------------------


def test_mesh_host_conflict(example_repo: Path, cli) -> None:
    # checkout also claims api.example.com, which micro-api binds to the mesh.
    release = f"{PROD}/checkout.yaml"
    _edit(
        example_repo / release,
        "gateways: [mesh]\n",
        "hosts: [checkout.default.svc.cluster.local, api.example.com]\ngateways: [mesh]\n",
    )
    _render(example_repo, cli)
    found = _findings(example_repo, cli, "mesh-host-conflict")
    assert _places(found) == {
        _at(example_repo, release, "hosts:", "api.example.com"),
        _at(example_repo, f"{PROD}/micro-api.yaml", "  - api.example.com", "api"),
    }
    assert all("deploy/overlays/prod/" in f["message"] for f in found)


def test_route_unreachable(example_repo: Path, cli) -> None:
    # A second pin on the same header, after the first: it never pins.
    release = f"{PROD}/checkout.yaml"
    _edit(
        example_repo / release,
        "  - name: testers-cookie\n",
        "  - name: testers-again\n    version: v1\n    headers:\n"
        "      x-canary: {exact: always}\n  - name: testers-cookie\n",
    )
    _render(example_repo, cli)
    (found,) = _findings(example_repo, cli, "route-unreachable")
    assert _places([found]) == {_at(example_repo, release, "- name: testers-again", "name")}
    assert "'testers'" in found["message"]


def test_destination_port_required(example_repo: Path, cli) -> None:
    # micro-api's Service gets a second port; its route, bound to micro-gateway, names none.
    # (With the Gateway API, a route to it must name its port: ambient's would not render.)
    shutil.rmtree(example_repo / "environments/ambient")
    shutil.rmtree(example_repo / "deploy/overlays/ambient")
    _edit(
        example_repo / "deploy/base/micro-api/service.yaml",
        "      targetPort: 19090\n",
        "      targetPort: 19090\n    - name: http-metrics\n      port: 9091\n"
        "      targetPort: 19090\n",
    )
    _render(example_repo, cli)
    found = [
        f for f in _findings(example_repo, cli, "destination-port-required") if "prod" in f["file"]
    ]
    assert _places(found) == {_at(example_repo, f"{PROD}/micro-api.yaml", "base:", "deploy")}
    assert "`ports:`" in found[0]["hint"]


def test_istio_deprecated_field(example_repo: Path, cli) -> None:
    release = f"{PROD}/micro-api.yaml"
    _edit(
        example_repo / release,
        "  loadBalancer: {simple: ROUND_ROBIN}\n",
        "  loadBalancer: {simple: ROUND_ROBIN}\n  outlierDetection: {consecutiveErrors: 5}\n",
    )
    _render(example_repo, cli)
    found = _findings(example_repo, cli, "istio-deprecated-field")
    # Relocated into the release file, a finding points at the field's value.
    assert _places(found) == {_at(example_repo, release, "outlierDetection:", "5")}


def test_istio_route_valid(example_repo: Path, cli) -> None:
    # An HTTPS server without TLS settings on the environment's gateway: Istio refuses it.
    environment = f"{PROD}/environment.yaml"
    _edit(
        example_repo / environment,
        "        hosts: [api.example.com]\n",
        "        hosts: [api.example.com]\n"
        "      - port: {number: 443, name: https, protocol: HTTPS}\n"
        "        hosts: [api.example.com]\n",
    )
    _render(example_repo, cli)
    found = _findings(example_repo, cli, "istio-route-valid")
    assert _places(found) == {_at(example_repo, environment, "protocol: HTTPS", "HTTPS")}


def test_ingress_bypasses_subsets(example_repo: Path, cli) -> None:
    # checkout's base adds an ingress route to micro-api, whose mesh route splits by subset.
    base = "deploy/base/checkout"
    (example_repo / base / "routes.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
        "  name: status-page\nspec:\n  hosts: [status.example.com]\n"
        "  gateways: [micro-gateway]\n  http:\n    - route:\n"
        "        - destination: {host: micro-api}\n",
        encoding="utf-8",
    )
    _edit(
        example_repo / base / "kustomization.yaml",
        "  - service.yaml\n",
        "  - service.yaml\n  - routes.yaml\n",
    )
    _render(example_repo, cli)
    found = _findings(example_repo, cli, "ingress-bypasses-subsets")
    assert _places(found) == {_at(example_repo, f"{base}/routes.yaml", "destination:", "micro-api")}
    assert any("VirtualService default/micro-api" in f["message"] for f in found)


def test_destination_host_exists(example_repo: Path, cli) -> None:
    # Only a hand edit of the generated route sets it off; it points at the release's base.
    routes = example_repo / "deploy/overlays/prod/micro-api/virtualservice.yaml"
    _edit(
        routes,
        "host: micro-api.default.svc.cluster.local\n        subset: v2",
        "host: micro-apx.default.svc.cluster.local\n        subset: v2",
    )
    (found,) = _findings(example_repo, cli, "destination-host-exists")
    assert _places([found]) == {_at(example_repo, f"{PROD}/micro-api.yaml", "base:", "deploy")}
    assert "micro-apx" in found["message"] and "edited by hand" in found["hint"]


# What the examples render ---------------------------------------------------------------------


def test_the_examples_break_none_of_them(example_repo: Path, cli) -> None:
    # Several ports as well: each port's pins come before its weights, matched on the port.
    _edit(
        example_repo / f"{PROD}/checkout.yaml",
        "gateways: [mesh]\n",
        "gateways: [mesh]\nports: [{port: 80}, {port: 9090, protocol: http}]\n",
    )
    _render(example_repo, cli)
    outcome = cli("--repo", example_repo, "check", "--format", "json")
    assert outcome.code == 0, outcome.out
    assert json.loads(outcome.out)["findings"] == []


# Hosts that cannot be checked -----------------------------------------------------------------

ROUTES_ONLY = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: {host: ratings.data.svc.cluster.local}
          weight: 50
        - destination: {host: ratings.data.svc.cluster.local, subset: v2}
          weight: 50
      mirror: {host: api.example.com}
    - route:
        - destination: {host: reviews}
        - destination: {host: details}
"""


def _scope(text: str) -> Scope:
    parsed = Parsed()
    parse_text(text, "routes.yaml", parsed)
    assert parsed.problems == []
    return Scope(parsed.resources)


def test_hosts_the_input_cannot_hold_are_named_once_as_not_checked() -> None:
    scope = _scope(ROUTES_ONLY)
    unchecked = list(destination_host_exists.unchecked(scope))
    assert [(f.message, f.resource.location(f.path).line) for f in unchecked] == [
        (
            "host ratings.data.svc.cluster.local not checked: the input holds no Service of "
            "namespace data",
            14,
        ),
        ("host api.example.com not checked: the input holds no ServiceEntry", 18),
    ]
    assert all("reference-not-checked" in f.hint for f in unchecked)
    # bookinfo's Services are here: details is missing, not elsewhere.
    (missing,) = run(scope, rules=[destination_host_exists])
    assert missing.location.line == 21 and "no Service 'details'" in missing.message


def test_a_cluster_dns_name_is_not_an_istio_host() -> None:
    text = ROUTES_ONLY.replace("{host: reviews}", "{host: reviews.bookinfo}")
    found = [p for p in run(_scope(text), rules=[destination_host_exists]) if p.location.line == 20]
    (problem,) = found
    assert "Istio expands only a name without dots" in problem.message
    assert problem.hint == "write the fully qualified name reviews.bookinfo.svc.cluster.local"
