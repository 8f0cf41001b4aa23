"""The round trip of the Gateway API shape: environments/ambient rendered and built with
kustomize, the build imported into a fresh repository with `meshcanary import`, and the
release files read back are the ambient ones; rendered again, they build the same routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshcanary.__main__ import main
from meshcanary.render.repository import render
from tests.support import ROOT, kustomize_build, write

ROUTES = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute", "Gateway")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _routes(built: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {
        (r["kind"], r["metadata"]["name"]): r["spec"]
        for r in built
        if r["kind"] in ROUTES and r["apiVersion"].startswith("gateway.networking.k8s.io/")
    }


def test_ambient_build_imports_back_to_its_release_files(
    example_repo: Path, tmp_path: Path, capsys: Any
) -> None:
    render(example_repo, ["ambient"])
    built = kustomize_build(example_repo / "deploy" / "overlays" / "ambient")
    manifests = write(tmp_path / "built" / "ambient.yaml", yaml.safe_dump_all(built))
    fresh = tmp_path / "fresh"
    fresh.mkdir()

    code = main(["--repo", str(fresh), "import", "--env", "ambient", str(manifests)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verify: the rendered tree is equivalent to the manifests" in out

    source = ROOT / "environments" / "ambient"
    for service in ("micro-api", "checkout"):
        imported = _yaml(fresh / "environments" / "ambient" / f"{service}.yaml")
        assert imported == _yaml(source / f"{service}.yaml"), service
    environment = _yaml(fresh / "environments" / "ambient" / "environment.yaml")
    original = _yaml(source / "environment.yaml")
    for key in ("namespace", "routing", "gatewayClassName", "gateways"):
        assert environment[key] == original[key], key

    # Rendered again, the imported repository builds the very routes and Gateways it read.
    render(fresh, ["ambient"])
    rebuilt = kustomize_build(fresh / "deploy" / "overlays" / "ambient")
    assert _routes(rebuilt) == _routes(built)
    assert len(_routes(built)) == 5  # micro-api, micro-api-gateways, checkout-80, -9090, Gateway
