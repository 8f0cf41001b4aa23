"""The embedded validator finds and compiles each resource type's schema once per run.

Counted, not timed: many resources of one kind compile one validator and look up (stat) its
schema file once, and the verdicts are those of a validator that looks everything up afresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.validate import Options, catalog
from meshcanary.validate.embedded import EmbeddedValidator

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{index}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "registry.example/web:1.0.0"}}]}}
"""
VIRTUAL_SERVICE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web-{index}}}
spec:
  hosts: [web]
  http: [{{route: [{{destination: {{host: web}}, weight: {weight}}}]}}]
"""


def _resources(count: int) -> list[Resource]:
    documents = []
    for index in range(count):
        # Every tenth is invalid, so that failing verdicts come from the cache too.
        replicas = '"two"' if index % 10 == 0 else "2"
        documents.append(DEPLOYMENT.format(index=index, replicas=replicas))
        documents.append(VIRTUAL_SERVICE.format(index=index, weight=100))
    parsed = Parsed()
    parse_text("---\n".join(documents), "many.yaml", parsed)
    assert parsed.problems == []
    return parsed.resources


class Counted:
    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


def test_many_resources_of_a_kind_compile_and_look_up_its_schema_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = _resources(200)
    compile_ = Counted(jsonschema_rs.validator_for)
    kubernetes = Counted(catalog.kubernetes_schema)
    crds = Counted(catalog.crd_schema)
    stats: list[Path] = []
    real_is_file = Path.is_file

    def is_file(path: Path) -> bool:
        stats.append(path)
        return real_is_file(path)

    monkeypatch.setattr(jsonschema_rs, "validator_for", compile_)
    monkeypatch.setattr(catalog, "kubernetes_schema", kubernetes)
    monkeypatch.setattr(catalog, "crd_schema", crds)
    validator = EmbeddedValidator(Options())
    monkeypatch.setattr(Path, "is_file", is_file)
    verdicts = [validator.validate(r) for r in resources]
    assert compile_.calls == 2  # one Deployment schema, one VirtualService schema
    assert kubernetes.calls == 1  # the VirtualService's is a bundled CRD schema
    assert crds.calls == 4  # per type: for its validator and for its CEL rules; not per resource
    assert len(stats) <= 2  # no filesystem work per resource
    monkeypatch.undo()
    fresh = [EmbeddedValidator(Options()).validate(r) for r in resources]
    assert verdicts == fresh
    assert sum(v.problems != () for v in verdicts) == 20


def test_a_type_without_a_schema_is_looked_up_once_and_reported_for_each_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = Parsed()
    parse_text(
        "---\n".join(
            f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w{i}}}\n"
            for i in range(50)
        ),
        "widgets.yaml",
        parsed,
    )
    kubernetes = Counted(catalog.kubernetes_schema)
    monkeypatch.setattr(catalog, "kubernetes_schema", kubernetes)
    validator = EmbeddedValidator(Options())
    verdicts = [validator.validate(r) for r in parsed.resources]
    assert kubernetes.calls == 1
    assert len({v.status for v in verdicts}) == 1
    assert all(len(v.problems) == 1 for v in verdicts)
