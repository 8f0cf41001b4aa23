"""`lint` knows every Istio and Gateway API kind: a repository of all of them is clean, with
`--strict` too; a wrong field in one of them is found at its line; and Istio's own verdicts on
the documents of tests/data/istio/ hold with the generated schemas."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.manifest import Parsed, parse_text
from meshcanary.report import Status
from meshcanary.validate import Options, catalog
from meshcanary.validate.embedded import EmbeddedValidator
from tests.support import DATA, ROOT, write

EVERY_KIND = Path(__file__).resolve().parent / "every-kind"
OVERLAYS = ROOT / "deploy" / "overlays"
EXPECT = "test.meshcanary.dev/expect"
CEL = "test.meshcanary.dev/cel"


def _documents(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def _lint(cli, *args: str | Path) -> tuple[int, dict[str, Any]]:
    outcome = cli("lint", "--format", "json", *args)
    assert outcome.code in (0, 1), outcome.err
    return outcome.code, json.loads(outcome.out)


def test_the_corpus_holds_every_kind_and_served_version() -> None:
    present = {(doc["apiVersion"], doc["kind"]) for doc in _documents(EVERY_KIND)}
    bundled = {(v, kind) for v, kinds in catalog.crd_index().items() for kind in kinds}
    assert not bundled - present, f"write an object of each of {sorted(bundled - present)}"


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_a_repository_of_every_kind_lints_clean(cli, strict: bool) -> None:
    code, report = _lint(cli, *(["--strict"] if strict else []), EVERY_KIND)
    assert report["findings"] == []
    assert code == 0
    summary = report["summary"]
    assert summary["valid"] == summary["resources"] == len(_documents(EVERY_KIND))


@dataclass(frozen=True)
class Wrong:
    """One object with one mistake, and where and how `lint` must report it."""

    id: str
    text: str
    mark: str  # the text at the reported position (its first occurrence)
    message: str
    strict: bool = False
    hint: str = ""


WRONG = [
    Wrong(
        "service-entry-resolution-not-in-enum",
        """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: payments
spec:
  hosts: [api.payments.example.com]
  ports:
  - {number: 443, name: tls, protocol: TLS}
  resolution: DNSS
""",
        "DNSS",
        'spec.resolution: "DNSS" is not one of',
    ),
    Wrong(
        "httproute-port-as-text",
        """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: storefront
spec:
  parentRefs:
  - name: shop-web
  rules:
  - backendRefs:
    - name: storefront
      port: "80"
""",
        '"80"',
        'spec.rules[0].backendRefs[0].port must be an integer, found a string "80"',
    ),
    Wrong(
        "authorization-policy-misspelt-field",
        """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: checkout
spec:
  action: ALLOW
  rule:
  - from:
    - source: {namespaces: [shop]}
""",
        "rule:",
        'unknown field "rule" in spec',
        strict=True,
    ),
    Wrong(
        "gateway-without-class",
        """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: shop-web
spec:
  listeners:
  - name: http
    port: 80
    protocol: HTTP
""",
        "spec:",
        'spec is missing required field "gatewayClassName"',
    ),
    Wrong(
        "envoy-filter-priority-beyond-int32",
        """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: idle-timeout
spec:
  priority: 3000000000
""",
        "3000000000",
        "spec.priority: 3000000000 is greater than the maximum of 2147483647",
    ),
    Wrong(
        "telemetry-label-value-not-a-string",
        """\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: shop
  labels:
    team: 7
spec:
  tracing:
  - randomSamplingPercentage: 10
""",
        "7",
        "metadata.labels.team must be a string, found an integer 7",
    ),
    Wrong(
        "sidecar-metadata-misspelt-under-strict",
        """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  lables: {app: checkout}
spec:
  egress:
  - hosts: ["./*"]
""",
        "lables",
        'unknown field "lables" in metadata',
        strict=True,
        hint='did you mean "labels"?',
    ),
]


WRONG.append(
    Wrong(
        "virtual-service-misspelt-weight-under-strict",
        """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: checkout}
spec:
  hosts: [checkout]
  http:
  - route:
    - destination: {host: checkout, subset: v1}
      weight: 70
    - destination: {host: checkout, subset: v2}
      wieght: 30
""",
        "wieght",
        'unknown field "wieght" in spec.http[0].route[1]',
        strict=True,
    )
)


def _position(text: str, mark: str) -> tuple[int, int]:
    offset = text.index(mark)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize("case", WRONG, ids=lambda case: case.id)
def test_a_wrong_field_is_found_at_its_line(cli, tmp_path: Path, case: Wrong) -> None:
    target = write(tmp_path / f"{case.id}.yaml", case.text)
    code, report = _lint(cli, "--no-rules", *(["--strict"] if case.strict else []), target)
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "schema"
    assert (finding["line"], finding["column"]) == _position(case.text, case.mark)
    assert finding["message"].startswith(case.message), finding["message"]
    assert finding["hint"] == case.hint


def test_strict_accepts_a_gateway_address_of_each_type(cli, tmp_path: Path) -> None:
    """The address's oneOf names `type` only; strict mode must not refuse its `value`."""
    target = write(
        tmp_path / "gateway.yaml",
        """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
spec:
  gatewayClassName: istio
  addresses:
  - {type: IPAddress, value: 192.0.2.10}
  - {type: Hostname, value: edge.example.org}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
""",
    )
    code, report = _lint(cli, "--no-rules", "--strict", target)
    assert (code, report["findings"]) == (0, [])


# ------------------------------------------------------------------ Istio's verdicts


@dataclass(frozen=True)
class Verdict:
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.doc['kind']}/{self.doc['metadata']['name']}"

    @property
    def valid(self) -> bool:
        return bool(self.doc["metadata"]["annotations"][EXPECT] == "valid")

    @property
    def cel(self) -> str | None:
        value = self.doc["metadata"]["annotations"].get(CEL)
        return None if value is None else str(value)


VERDICTS = [Verdict(doc) for doc in _documents(DATA / "istio")]


def _cel_messages(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {rule["message"] for rule in node.get("x-kubernetes-validations", [])}
        return own.union(*(_cel_messages(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_cel_messages(value) for value in node))
    return set()


@pytest.mark.parametrize("case", VERDICTS, ids=lambda case: case.id)
def test_the_generated_schemas_give_istios_verdict(case: Verdict) -> None:
    """Each document of tests/data/istio/ carries the API server's verdict. The structural
    schema decides those without a CEL annotation; the others its CEL rules decide, which the
    generated schema must carry (schema validation alone accepts them)."""
    validator = EmbeddedValidator(Options())
    check = validator.validator_for(case.doc["apiVersion"], case.doc["kind"])
    if check is None:  # an unserved apiVersion or a misspelt kind: "could not find schema"
        assert not case.valid
        return
    errors = [f"{list(e.instance_path)}: {e.message}" for e in check.iter_errors(case.doc)]
    if case.cel is None:
        assert (not errors) == case.valid, errors or "valid"
        return
    assert not errors, errors
    path = catalog.crd_schema(case.doc["apiVersion"], case.doc["kind"])
    assert path is not None
    assert case.cel in _cel_messages(catalog.load_json(path))


# Fields the corpus adds to valid documents to show that the API server drops unknown fields;
# strict mode refuses them, as it should.
FUTURE = {"futureField", "somethingNew", "unknownFutureSetting"}


def _without_future_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_future_fields(v) for k, v in value.items() if k not in FUTURE}
    if isinstance(value, list):
        return [_without_future_fields(v) for v in value]
    return value


@pytest.mark.parametrize("case", [c for c in VERDICTS if c.valid], ids=lambda case: case.id)
def test_strict_mode_accepts_istios_valid_documents(case: Verdict) -> None:
    check = EmbeddedValidator(Options(strict=True)).validator_for(
        case.doc["apiVersion"], case.doc["kind"]
    )
    assert check is not None
    doc = _without_future_fields(case.doc)
    assert [e.message for e in check.iter_errors(doc)] == []
    assert (doc == case.doc) == check.is_valid(case.doc)


def test_the_rendered_istio_objects_are_valid_strictly() -> None:
    validator = EmbeddedValidator(Options(strict=True))
    kinds = set()
    for path in sorted(OVERLAYS.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or ".istio.io/" not in str(doc.get("apiVersion")):
                continue
            check = validator.validator_for(doc["apiVersion"], doc["kind"])
            assert check is not None and check.is_valid(doc), path
            kinds.add(doc["kind"])
    assert kinds == {"VirtualService", "DestinationRule", "Gateway"}


def test_lint_gives_istios_verdict_on_every_document() -> None:
    """Schema and CEL rules together: what the API server accepts, `lint` finds valid."""
    parsed = Parsed()
    for path in sorted((DATA / "istio").glob("*.yaml")):
        parse_text(path.read_text(encoding="utf-8"), path.name, parsed)
    assert not parsed.problems
    validator = EmbeddedValidator(Options())
    wrong = []
    for resource in parsed.resources:
        verdict = validator.validate(resource)
        expected = resource.data["metadata"]["annotations"][EXPECT] == "valid"
        if (verdict.status is Status.VALID) != expected:
            wrong.append(f"{resource.ref}: {[p.message for p in verdict.problems] or 'valid'}")
    assert len(parsed.resources) == len(VERDICTS)
    assert not wrong, "\n".join(wrong)


def test_the_verdicts_cover_valid_and_invalid_documents() -> None:
    assert sum(case.valid for case in VERDICTS) >= 15
    assert sum(not case.valid for case in VERDICTS) >= 15
