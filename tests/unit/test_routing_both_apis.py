"""One release file, rendered with `routing: istio` and with `routing: gateway-api`, then built
by the real kustomize: every request reaches the same Deployments with the same probability
under both (meshcanary.routing's decision tables, equal on every key both APIs express).

The one key only Istio has: a VirtualService bound to `mesh` routes in-mesh calls to each of
its hosts, a Gateway API route bound to the Service (GAMMA) only calls to that Service.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcanary import reach, routing
from meshcanary.kustomize import command as kustomize_command
from meshcanary.manifest import Parsed, parse_text
from tests.support import ROOT, Outcome
from tests.support.locations import edit

ENVIRONMENT = "environments/ambient/environment.yaml"
MICRO_API = "environments/ambient/micro-api.yaml"
CHECKOUT = "environments/ambient/checkout.yaml"
# In-mesh calls to the ingress host: routed by the VirtualService, not by a GAMMA route.
ISTIO_ONLY = {("mesh", "api.ambient.example.com", "http")}


def _table(repo: Path, cli: Callable[..., Outcome], api: str) -> routing.Table:
    """The decision table of the ambient environment rendered with `api`."""
    copy = repo.parent / api
    shutil.copytree(repo, copy)
    edit(copy / ENVIRONMENT, "routing: gateway-api", f"routing: {api}")
    if api == "istio":  # an Istio Gateway configures the gateway pods it selects
        edit(
            copy / ENVIRONMENT,
            "    servers:\n",
            "    selector: {istio: ingressgateway}\n    servers:\n",
        )
    done = cli("--repo", copy, "-q", "render", "ambient")
    assert done.code == 0, done.err
    built = subprocess.run(
        [*kustomize_command(), str(copy / "deploy/overlays/ambient")],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = Parsed()
    parse_text(built.stdout, "built.yaml", parsed)
    assert parsed.problems == []
    return routing.table(parsed.resources)


# Values for the regular expressions of the conditions: the releases' cookie pins.
COOKIES = {"cookie": ("checkout-beta=on", "a=1; checkout-beta=on", "checkout-beta=off")}


def _differences(istio: routing.Table, gateway_api: routing.Table) -> list[reach.Difference]:
    """Each (key, request) that reaches something else under one API than under the other."""
    assert len(reach.requests([istio, gateway_api], COOKIES)) > 10
    return reach.differences(istio, gateway_api, COOKIES)[0]


def _compare(istio: routing.Table, gateway_api: routing.Table) -> None:
    assert gateway_api.routes, "no Gateway API route was read"
    _, gone, new = reach.differences(istio, gateway_api)
    assert (set(gone), new) == (ISTIO_ONLY, [])
    assert _differences(istio, gateway_api) == []


def _as_is(repo: Path) -> None:
    """micro-api: a header pin, 10% mirrored, a timeout, on the mesh and a Gateway;
    checkout: an HTTP and a gRPC port, a cookie pin."""


def _exact_paths_after_a_pin(repo: Path) -> None:
    # Istio takes the pin first; the Gateway API would take the exact path first, had the
    # pin not been given the path too.
    edit(repo / MICRO_API, "timeout: 5s\n", "timeout: 5s\nrequests:\n  - uri: {exact: /api/cart}\n")


def _methods_queries_and_headers(repo: Path) -> None:
    edit(
        repo / MICRO_API,
        "      x-canary: {exact: always}\n",
        "      x-canary: {exact: always}\n  - version: v1\n    method: {exact: POST}\n"
        "    queryParams: {legacy: {exact: '1'}}\n",
    )
    edit(
        repo / MICRO_API,
        "timeout: 5s\n",
        "timeout: 5s\nrequestHeaders: {set: {x-env: ambient}, remove: [x-debug]}\n"
        "responseHeaders: {add: {x-served-by: micro-api}}\n",
    )


def _a_grpc_method_pin(repo: Path) -> None:
    edit(
        repo / CHECKOUT,
        '    cookies: {checkout-beta: "on"}\n',
        "    uri: {exact: /shop.Checkout/Pay}\n",
    )


def _tcp(repo: Path) -> None:
    edit(repo / CHECKOUT, "  - {port: 80, protocol: http}\n", "  - {port: 80, protocol: tcp}\n")
    edit(repo / CHECKOUT, "  - {port: 9090, protocol: grpc}\n", "")
    edit(repo / CHECKOUT, 'match:\n  - version: v2\n    cookies: {checkout-beta: "on"}\n', "")


@pytest.mark.parametrize(
    "change",
    [_as_is, _exact_paths_after_a_pin, _methods_queries_and_headers, _a_grpc_method_pin, _tcp],
)
def test_both_apis_route_every_request_alike(
    tmp_path: Path, cli: Callable[..., Outcome], change: Callable[[Path], None]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy", repo / "deploy")
    change(repo)

    _compare(_table(repo, cli, "istio"), _table(repo, cli, "gateway-api"))


def test_a_path_prefix_is_where_the_two_apis_differ(
    tmp_path: Path, cli: Callable[..., Outcome]
) -> None:
    """Istio's `prefix: /api` takes /apiary too; the Gateway API's PathPrefix only /api and
    /api/...: the tables say so (docs/routing.md too)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "deploy", repo / "deploy")
    edit(repo / MICRO_API, "timeout: 5s\n", "timeout: 5s\nrequests:\n  - uri: {prefix: /api}\n")
    istio, gateway_api = _table(repo, cli, "istio"), _table(repo, cli, "gateway-api")
    key = ("mesh", "micro-api.micro-ambient.svc.cluster.local", "http")
    differ = {d.request.path for d in _differences(istio, gateway_api) if d.key == key}
    assert differ == {"/apix"}  # Istio's route takes it, and no route of the Gateway API's
