"""CRD validation rules (`x-kubernetes-validations`), evaluated offline (validate.crd_rules):
the Gateway API's and Istio's real rules, and a CRD of our own for what they do not use."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.report import Status
from meshcanary.validate import Options, catalog, crd_rules
from meshcanary.validate.embedded import EmbeddedValidator
from tests.support import DATA, ROOT, write

GATEWAY_API = DATA / "gateway-api-crds"
HTTPROUTES = GATEWAY_API / "gateway.networking.k8s.io_httproutes.yaml"
ISTIO = DATA / "istio-crds" / "crd-all.gen.yaml"


def schema_of(path: Path, kind: str, version: str = "v1") -> dict[str, Any]:
    """The OpenAPI v3 schema of one version of a CRD, as the CRD file has it."""
    for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if (
            crd
            and crd.get("kind") == "CustomResourceDefinition"
            and crd["spec"]["names"]["kind"] == kind
        ):
            served = {v["name"]: v for v in crd["spec"]["versions"]}
            schema: dict[str, Any] = served[version]["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(kind)


def resource(text: str) -> Resource:
    parsed = Parsed()
    parse_text(textwrap.dedent(text), "r.yaml", parsed)
    assert not parsed.problems
    [found] = parsed.resources
    return found


def findings(schema: dict[str, Any], text: str) -> list[tuple[int, int, str]]:
    found = resource(text)
    problems = crd_rules.check(schema, found.data, found)
    assert all(p.rule == "schema" and p.resource == found.ref for p in problems)
    return sorted((p.location.line, p.location.column, p.message) for p in problems)


ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop
spec:
  parentRefs:
    - name: gateway
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: {value}
      backendRefs:
        - name: shop
          port: 8080
"""
ABSOLUTE = (
    "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"
)


@pytest.fixture(scope="module")
def httproute() -> dict[str, Any]:
    return schema_of(HTTPROUTES, "HTTPRoute")


def test_a_broken_httproute_rule_is_reported_at_its_field(httproute: dict[str, Any]) -> None:
    found = resource(ROUTE.format(value="shop/cart"))
    [problem] = crd_rules.check(httproute, found.data, found)
    assert str(problem.location) == "r.yaml:10:11"  # the `path:` the rule sits on
    assert problem.message == ABSOLUTE
    assert problem.path == "/spec/rules/0/matches/0/path"
    assert "self.value.startsWith('/')" in problem.hint
    assert findings(httproute, ROUTE.format(value="/shop//cart")) == [
        (10, 11, "must not contain '//' when type one of ['Exact', 'PathPrefix']")
    ]


def test_a_valid_httproute_passes(httproute: dict[str, Any]) -> None:
    assert findings(httproute, ROUTE.format(value="/shop/cart")) == []
    regex = ROUTE.format(value="shop.*").replace("PathPrefix", "RegularExpression")
    assert findings(httproute, regex) == []


def test_defaults_fill_what_is_missing(httproute: dict[str, Any]) -> None:
    # `type` defaults to PathPrefix, so a relative value breaks the rule ...
    untyped = ROUTE.format(value="shop").replace("            type: PathPrefix\n", "")
    assert findings(httproute, untyped) == [(10, 11, ABSOLUTE)]
    # ... and a route without rules gets the default one (`/`), which passes.
    bare = "\n".join(ROUTE.format(value="/").splitlines()[:7])
    assert findings(httproute, bare) == []


def test_escaped_names_and_defaults_of_parent_refs(httproute: dict[str, Any]) -> None:
    twice = ROUTE.format(value="/").replace(
        "    - name: gateway\n",
        "    - name: gateway\n    - name: gateway\n      sectionName: https\n",
    )
    assert findings(httproute, twice) == [
        (6, 3, "sectionName must be specified when parentRefs includes 2 or more references "
         "to the same parent")
    ]  # fmt: skip
    # `namespace` is `__namespace__` to the rule: in another namespace, another parent.
    elsewhere = twice.replace("      sectionName: https\n", "      namespace: infra\n")
    assert findings(httproute, elsewhere) == []


def test_a_wrongly_typed_object_is_not_checked_further(httproute: dict[str, Any]) -> None:
    # Schema validation reports the type; the API server runs no rule on such an object.
    wrong = ROUTE.format(value="shop").replace("port: 8080", "port: [8080]")
    assert findings(httproute, wrong) == []


def test_through_the_embedded_validator(tmp_path: Path) -> None:
    text = textwrap.dedent(ROUTE.format(value="shop"))
    for options in (Options(crds=(HTTPROUTES,)), Options(crds=(HTTPROUTES,), strict=True)):
        verdict = EmbeddedValidator(options).validate(resource(text))
        assert verdict.status == Status.INVALID
        assert [(str(p.location), p.message) for p in verdict.problems] == [
            ("r.yaml:10:11", ABSOLUTE)
        ]
    valid = EmbeddedValidator(Options(crds=(HTTPROUTES,))).validate(
        resource(ROUTE.format(value="/"))
    )
    assert (valid.status, valid.problems) == (Status.VALID, ())


def test_the_bundled_schemas_carry_the_rules() -> None:
    if catalog.crd_schema("gateway.networking.k8s.io/v1", "HTTPRoute") is None:
        pytest.skip("no bundled Gateway API schemas")
    verdict = EmbeddedValidator(Options()).validate(resource(ROUTE.format(value="shop")))
    assert [(str(p.location), p.message) for p in verdict.problems] == [("r.yaml:10:11", ABSOLUTE)]


VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [shop]
  http:
    - timeout: {timeout}
      route:
        - destination:
            host: shop
"""


def test_istio_rules() -> None:
    schema = schema_of(ISTIO, "VirtualService")
    assert findings(schema, VIRTUAL_SERVICE.format(timeout="2s")) == []
    assert findings(schema, VIRTUAL_SERVICE.format(timeout="0.5ms")) == [
        (8, 16, "must be a valid duration greater than 1ms")
    ]
    [(line, column, message)] = findings(schema, VIRTUAL_SERVICE.format(timeout="soon"))
    assert (line, column) == (8, 16)
    assert message.endswith("evaluating rule: must be a valid duration greater than 1ms")
    entry = schema_of(ISTIO, "ServiceEntry")
    wildcard = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\n"
    wildcard += "spec:\n  hosts: ['*']\n  resolution: DNS\n"
    assert findings(entry, wildcard) == [(5, 11, "hostname cannot be wildcard")]


def _crd_files() -> list[Path]:
    return [ISTIO, *sorted(GATEWAY_API.glob("*.yaml"))]


def _shipped_rules() -> list[tuple[str, dict[str, Any]]]:
    """Every rule of every version of the CRDs we ship, and of the schemas made of them."""
    found = []
    for path in _crd_files():
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                for version in crd["spec"]["versions"]:
                    where = f"{crd['spec']['names']['kind']} {version['name']}"
                    schema = version["schema"]["openAPIV3Schema"]
                    found += [(where, dict(rule)) for rule in crd_rules.rules_in(schema)]
    for path in sorted((ROOT / "schemas" / "crds").rglob("*.json")):
        if path.name != "index.json":
            schema = json.loads(path.read_text(encoding="utf-8"))
            found += [(path.name, dict(rule)) for rule in crd_rules.rules_in(schema)]
    return found


def test_every_shipped_rule_compiles() -> None:
    rules = _shipped_rules()
    compiled = [(where, crd_rules.compile_rule(rule)) for where, rule in rules]
    assert [(where, c.source, c.error) for where, c in compiled if c.error] == []
    # Transition rules need the object as it was: offline, on a create, they are skipped.
    skipped = {c.source for _, c in compiled if c.program is None}
    assert skipped == {"self == oldSelf"}
    assert len([c for _, c in compiled if c.program is not None]) > 600


def test_a_plan_is_made_once_per_schema(httproute: dict[str, Any]) -> None:
    assert crd_rules.has_rules(httproute)
    assert crd_rules._plan_of(httproute) is crd_rules._plan_of(httproute)
    assert not crd_rules.has_rules({"type": "object", "properties": {"a": {"type": "string"}}})


# A CRD of our own, for what the shipped rules do not use ------------------------------------

WIDGETS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-validations:
            - rule: "self.metadata.name.startsWith('w-') && !has(self.metadata.labels)"
              message: name must start with w-
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - rule: self.min <= self.max
                  messageExpression: "'min ' + string(self.min) + ' is over max ' + string(self.max)"
                  fieldPath: .min
                - rule: self.__namespace__ != 'kube-system' && self.team__dash__name != ''
                  message: reserved namespace
                - rule: self.ratio < 1.0
                  message: ratio must be below 1
                - rule: self == oldSelf
                  message: immutable
                - rule: "!oldSelf.hasValue() || oldSelf.value().max == self.max"
                  optionalOldSelf: true
                  message: max is immutable
                - rule: "!has(self.strict) || oldSelf.hasValue()"
                  optionalOldSelf: true
                  message: strict needs an old self
                  reason: FieldValueForbidden
                - rule: "!has(self.strict) || self.missing == 1"
                  message: missing
              properties:
                min: {type: integer, default: 0}
                max: {type: integer}
                ratio: {type: number}
                strict: {type: boolean}
                namespace: {type: string}
                team-name: {type: string, default: x}
                "weird key!": {type: string}
                port:
                  x-kubernetes-int-or-string: true
                  x-kubernetes-validations:
                    - rule: "type(self) == int ? self > 0 : self.matches('^[a-z]+$')"
                      message: bad port
                note:
                  type: string
                  nullable: true
                  x-kubernetes-validations: [{rule: self.size() > 1, message: note too short}]
                labels:
                  type: object
                  x-kubernetes-validations:
                    - {rule: "self.all(k, k.size() < 10)", message: label key too long}
                  additionalProperties:
                    type: string
                    x-kubernetes-validations: [{rule: self != '', message: empty label}]
                digest:
                  type: string
                  format: byte
                  x-kubernetes-validations: [{rule: size(self) == 2, message: digest of 2 bytes}]
                size:
                  type: integer
                  allOf:
                    - x-kubernetes-validations: [{rule: self % 2 == 0, message: size must be even}]
"""
WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w-one
  labels: {a: b}
spec:
  max: 5
  ratio: 0
  namespace: shop
  port: http
  note: null
  size: 2
  labels: {app: shop}
  digest: YWI=
"""


@pytest.fixture(scope="module")
def widgets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("crds") / "widgets.yaml", WIDGETS)


def widget_findings(widgets: Path, text: str) -> list[tuple[int, int, str]]:
    raw = schema_of(widgets, "Widget")
    direct = findings(raw, text)
    # The same through --crd, whose schema is converted to JSON Schema first.
    verdict = EmbeddedValidator(Options(crds=(widgets,))).validate(resource(text))
    converted = sorted(
        (p.location.line, p.location.column, p.message)
        for p in verdict.problems
        if not p.message.startswith(("spec", "metadata"))  # JSON Schema's own findings
    )
    assert converted == direct
    return direct


def test_a_valid_widget_passes(widgets: Path) -> None:
    assert widget_findings(widgets, WIDGET) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # messageExpression, fieldPath; `min` defaults to 0.
        ("  max: 5\n", "  max: 5\n  min: 7\n", [(8, 8, "min 7 is over max 5")]),
        # An absent field (here, defaulted) stands at the mapping that would hold it.
        ("  max: 5\n", "  max: -1\n", [(7, 3, "min 0 is over max -1")]),
        # Escaped names: namespace is __namespace__, team-name team__dash__name.
        ("namespace: shop", "namespace: kube-system", [(6, 1, "reserved namespace")]),
        ("  max: 5\n", "  max: 5\n  team-name: ''\n", [(6, 1, "reserved namespace")]),
        # A number given as an integer is a double to the rule.
        ("ratio: 0", "ratio: 1", [(6, 1, "ratio must be below 1")]),
        # int-or-string: either, as the rule checks.
        ("port: http", "port: 0", [(10, 9, "bad port")]),
        ("port: http", "port: 8080", []),
        ("port: http", "port: HTTP", [(10, 9, "bad port")]),
        # A null value is not checked (the field is nullable); a short one is.
        ("note: null", "note: x", [(11, 9, "note too short")]),
        # A map's keys and values.
        ("labels: {app: shop}", "labels: {app: '', application-name: shop}", [
            (13, 3, "label key too long"),
            (13, 17, "empty label"),
        ]),
        # A `byte` string is the bytes it encodes.
        ("digest: YWI=", "digest: YWJj", [(14, 11, "digest of 2 bytes")]),
        # allOf branches constrain the node they sit in.
        ("size: 2", "size: 3", [(12, 9, "size must be even")]),
        # At the root, metadata holds only the name (and generateName).
        ("name: w-one", "name: one", [(1, 1, "name must start with w-")]),
        # optionalOldSelf runs with no old object; a runtime error is a finding.
        ("  max: 5\n", "  max: 5\n  strict: true\n", [
            (6, 1, 'Key not found in map : "missing" evaluating rule: missing'),
            (6, 1, "strict needs an old self"),
        ]),
    ],
)  # fmt: skip
def test_widget_rules(
    widgets: Path, old: str, new: str, expected: list[tuple[int, int, str]]
) -> None:
    assert old in WIDGET
    assert widget_findings(widgets, WIDGET.replace(old, new)) == expected


def test_a_rule_that_does_not_compile_is_a_finding(tmp_path: Path) -> None:
    broken = WIDGETS.replace("self.ratio < 1.0", "self.ratio <")
    schema = schema_of(write(tmp_path / "broken.yaml", broken), "Widget")
    [(line, column, message)] = findings(schema, WIDGET)
    assert (line, column) == (6, 1)
    assert message.startswith("rule compile error: ERROR: <input>:1:13: Syntax error")


def test_fieldpath_forms() -> None:
    assert crd_rules._field_path(".spec.ports") == ("spec", "ports")
    assert crd_rules._field_path(".labels['a.b/c']") == ("labels", "a.b/c")
    assert crd_rules._field_path("spec") == ()  # not a path the API server accepts
    assert crd_rules.escape("namespace") == "__namespace__"
    assert crd_rules.escape("x-y.z/w__v") == "x__dash__y__dot__z__slash__w__underscores__v"
    assert crd_rules.escape("weird key!") is None
    assert crd_rules.escape("1st") is None
