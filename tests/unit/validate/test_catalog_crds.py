"""The bundled CRD schemas (schemas/crds/): generated from the CRDs, complete, loaded lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.validate import Options, catalog
from meshcanary.validate.embedded import EmbeddedValidator
from tests.support import DATA, ROOT, write

SCHEMAS = ROOT / "schemas" / "crds"
GENERATOR = ROOT / "scripts" / "generate_schemas.py"
ISTIO_GROUPS = {
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
}


def _served() -> set[tuple[str, str]]:
    """(apiVersion, kind) of every served version of every CRD the schemas come from, read here
    with PyYAML rather than with the loader the generator uses."""
    paths = [DATA / "istio-crds" / "crd-all.gen.yaml"]
    paths += sorted((DATA / "gateway-api-crds").glob("*.yaml"))
    found = set()
    for path in paths:
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version["served"]:
                    found.add((f"{spec['group']}/{version['name']}", spec["names"]["kind"]))
    return found


def _generated(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.json"))
    }


def test_the_generator_reproduces_the_checked_in_schemas_byte_for_byte(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, GENERATOR, "--output", tmp_path / "crds"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fresh, checked_in = _generated(tmp_path / "crds"), _generated(SCHEMAS)
    assert sorted(fresh) == sorted(checked_in), "run scripts/generate_schemas.py"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale: {stale}; run scripts/generate_schemas.py"
    again = subprocess.run(
        [sys.executable, GENERATOR, "--check", "--output", tmp_path / "crds"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr


def test_check_names_a_stale_file_and_fails(tmp_path: Path) -> None:
    folder = tmp_path / "crds"
    subprocess.run([sys.executable, GENERATOR, "--output", folder], check=True, capture_output=True)
    (folder / "networking.istio.io" / "sidecar_v1.json").write_text("{}\n", encoding="utf-8")
    (folder / "extra.json").write_text("{}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, GENERATOR, "--check", "--output", folder],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "sidecar_v1.json: stale" in done.stderr and "extra.json: stale" in done.stderr
    # Without --check it puts both right: the extra file goes.
    subprocess.run([sys.executable, GENERATOR, "--output", folder], check=True, capture_output=True)
    assert _generated(folder) == _generated(SCHEMAS)


def test_every_served_version_of_every_crd_has_a_schema_and_no_other() -> None:
    index = catalog.crd_index()
    indexed = {(api_version, kind) for api_version, kinds in index.items() for kind in kinds}
    assert indexed == _served()
    istio = {kind for api_version, kind in indexed if api_version.split("/")[0] in ISTIO_GROUPS}
    gateway_api = {
        kind for api_version, kind in indexed if "gateway.networking.k8s.io/" in api_version
    }
    assert len(istio) == 15, sorted(istio)  # all of crd-all.gen.yaml
    assert {"HTTPRoute", "GRPCRoute", "Gateway", "ListenerSet", "TCPRoute"} <= gateway_api
    for kinds in index.values():
        for name in kinds.values():
            assert (SCHEMAS / name).is_file(), name


def test_unserved_versions_have_no_schema() -> None:
    # TCPRoute v1alpha2 is in the CRD, but not served: the API server refuses it.
    assert catalog.crd_schema("gateway.networking.k8s.io/v1alpha2", "TCPRoute") is None
    assert catalog.crd_schema("gateway.networking.k8s.io/v1", "TCPRoute") is not None
    assert catalog.crd_schema("networking.istio.io/v1", "Deployment") is None
    assert catalog.crd_schema("../../v1", "VirtualService") is None


def test_the_generated_schemas_keep_the_crds_cel_rules_and_add_meshcanarys_checks() -> None:
    schema = catalog.load_json(catalog.crd_schema("networking.istio.io/v1", "VirtualService"))
    timeout = schema["properties"]["spec"]["properties"]["http"]["items"]["properties"]["timeout"]
    assert timeout["x-kubernetes-validations"][0]["rule"] == "duration(self) >= duration('1ms')"
    assert schema["required"] == ["apiVersion", "kind", "metadata"]
    assert schema["properties"]["metadata"]["properties"]["labels"]["additionalProperties"] == {
        "type": "string"
    }
    envoy_filter = catalog.load_json(
        catalog.crd_schema("networking.istio.io/v1alpha3", "EnvoyFilter")
    )
    priority = envoy_filter["properties"]["spec"]["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == (-(2**31), 2**31 - 1)


def _loaded(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loaded: list[Path] = []
    original = catalog.load_json

    def recording(path: Path) -> Any:
        loaded.append(Path(path))
        return original(path)

    monkeypatch.setattr(catalog, "load_json", recording)
    catalog.crd_index.cache_clear()
    catalog.load_schema.cache_clear()
    return loaded


def test_a_run_that_meets_no_custom_resource_loads_no_crd_schema(
    monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    loaded = _loaded(monkeypatch)
    # One process: with more, a forked copy validates and loads the schemas.
    outcome = cli("lint", "--jobs", "1", ROOT / "deploy/base/micro-api/service.yaml")
    assert outcome.code == 0, outcome.err
    assert [p.name for p in loaded if SCHEMAS in p.parents] == ["index.json"]


def test_a_run_loads_the_schemas_of_the_kinds_it_meets_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli
) -> None:
    route = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}}}
"""
    target = write(tmp_path / "routes.yaml", "---\n".join(route.format(name=n) for n in "abc"))
    loaded = _loaded(monkeypatch)
    assert cli("lint", "--jobs", "1", "--no-rules", target).code == 0
    assert {p.name for p in loaded if SCHEMAS in p.parents} == {
        "index.json",
        "virtualservice_v1.json",
    }


def test_strict_keeps_branches_of_one_of_open() -> None:
    """A oneOf branch names a field or two of its object: it must not forbid the others."""
    strict = catalog.make_strict(
        {
            "type": "object",
            "properties": {"type": {"type": "string"}, "value": {"type": "string"}},
            "oneOf": [
                {"properties": {"type": {"enum": ["IPAddress"]}}},
                {"properties": {"type": {"not": {"enum": ["IPAddress"]}}}},
            ],
        }
    )
    assert strict["additionalProperties"] is False
    assert all("additionalProperties" not in branch for branch in strict["oneOf"])


def test_strict_leaves_enums_defaults_and_cel_rules_alone() -> None:
    value = [{"properties": {"a": {}}}]
    strict = catalog.make_strict(
        {"properties": {"properties": {"enum": value, "default": value[0]}}}
    )
    assert strict["properties"]["properties"] == {"enum": value, "default": value[0]}
    assert strict["additionalProperties"] is False


def test_a_crd_given_with_crd_and_strict_accepts_apiversion_kind_and_metadata(
    tmp_path: Path,
) -> None:
    """Istio's CRDs name only spec and status at the top: the API server adds the rest."""
    validator = EmbeddedValidator(
        Options(strict=True, crds=(DATA / "istio-crds" / "gateways.networking.istio.io.yaml",))
    )
    check = validator.validator_for("networking.istio.io/v1", "Gateway")
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge"},
        "spec": {"selector": {"istio": "ingressgateway"}},
    }
    assert check.is_valid(gateway)
    assert not check.is_valid({**gateway, "meta data": {}})


def test_the_wheel_ships_schemas_crds() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"schemas" = "meshcanary/schemas"' in pyproject
    assert json.loads((SCHEMAS / "index.json").read_text(encoding="utf-8"))
    assert (SCHEMAS / "SOURCE.md").is_file()
