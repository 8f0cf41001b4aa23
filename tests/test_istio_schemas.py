"""meshcanary's Istio schemas (schemas/istio/) agree with Istio's own CRDs.

Istio's CRDs (tests/data/istio-crds/) carry an OpenAPI v3 schema per served version.
Translated to JSON Schema, they judge a corpus of documents (tests/data/istio/) alongside our
hand-written draft 2020-12 schemas, and both must give the verdict the API server would give.
The CRDs also carry CEL rules (x-kubernetes-validations) that no JSON Schema validator runs:
the translation drops them, the few rule shapes Istio uses are emulated here, and every corpus
document whose verdict they decide names its rule in a `test.meshcanary.dev/cel` annotation.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml

from tests.conftest import DATA, ROOT

CRD_DIR = DATA / "istio-crds"
SCHEMA_DIR = ROOT / "schemas" / "istio"
CORPUS_DIR = DATA / "istio"
OVERLAYS = ROOT / "deploy" / "overlays"

GROUP = "networking.istio.io"
KINDS = {
    "VirtualService": "virtualservice",
    "DestinationRule": "destinationrule",
    "Gateway": "gateway",
}
PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
}
EXPECT = "test.meshcanary.dev/expect"
CEL = "test.meshcanary.dev/cel"

INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
BASE64 = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


# ------------------------------------------------------------------ loading


@cache
def crd_versions(kind: str) -> dict[str, dict[str, Any]]:
    """version name -> openAPIV3Schema of Istio's CRD for `kind`."""
    crd = yaml.safe_load((CRD_DIR / f"{PLURALS[kind]}.{GROUP}.yaml").read_text(encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == kind
    return {
        v["name"]: v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["served"]
    }


@cache
def our_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{KINDS[kind]}.schema.json").read_text(encoding="utf-8"))


@cache
def our_validator(kind: str) -> Any:
    return jsonschema_rs.validator_for(our_schema(kind))


# ------------------------------------------------------------------ OpenAPI v3 (CRD) -> JSON Schema


def translate(node: dict[str, Any]) -> dict[str, Any]:
    """One structural-schema node of a CRD as JSON Schema, with the API server's semantics.

    - `nullable: true` adds "null" to the type;
    - `x-kubernetes-int-or-string: true` is the type ["integer", "string"] (its anyOf is dropped);
    - `x-kubernetes-preserve-unknown-fields` is dropped: JSON Schema keeps unknown fields anyway;
    - `x-kubernetes-validations` (CEL) is dropped: see cel_violations();
    - `format` int32/int64 become the range the API server enforces, `format: byte` the base64
      pattern it checks; double and date-time assert nothing here.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in (
            "description",
            "x-kubernetes-validations",
            "x-kubernetes-preserve-unknown-fields",
        ):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: translate(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = translate(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [translate(sub) for sub in value]
        elif key == "format":
            if value in INT_FORMATS:
                low, high = INT_FORMATS[value]
                out["minimum"] = max(low, node.get("minimum", low))
                out["maximum"] = min(high, node.get("maximum", high))
            elif value == "byte":
                out["pattern"] = BASE64
        elif key in ("minimum", "maximum") and node.get("format") in INT_FORMATS:
            continue  # merged with the format's range above
        elif key.startswith("x-kubernetes-") and key != "x-kubernetes-int-or-string":
            raise AssertionError(f"untranslated CRD keyword {key}")
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        del out["x-kubernetes-int-or-string"]
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable"):
        del out["nullable"]
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
    return out


@cache
def crd_validator(kind: str, version: str) -> jsonschema.Draft202012Validator:
    """The CRD's schema for one version, plus what the API server checks of every object."""
    schema = translate(crd_versions(kind)[version])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["required"] = ["apiVersion", "kind", "metadata", *schema.get("required", [])]
    schema["properties"] = {
        "apiVersion": {"const": f"{GROUP}/{version}"},
        "kind": {"const": kind},
        "metadata": {"type": "object"},
        **schema["properties"],
    }
    return jsonschema.Draft202012Validator(schema)


def crd_errors(doc: dict[str, Any], kind: str) -> list[str]:
    """Errors of the CRD's structural schema (no CEL); an unserved version is an error."""
    version = str(doc.get("apiVersion", "")).removeprefix(f"{GROUP}/")
    if version not in crd_versions(kind):
        return [f"{kind} is not served as {doc.get('apiVersion')!r}"]
    return [
        f"{list(e.absolute_path)}: {e.message}"
        for e in crd_validator(kind, version).iter_errors(doc)
    ]


def our_errors(doc: dict[str, Any], kind: str, schema: dict[str, Any] | None = None) -> list[str]:
    validator = our_validator(kind) if schema is None else jsonschema_rs.validator_for(schema)
    rs = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(doc)]
    # The reference implementation must agree with jsonschema-rs on our schema.
    py = jsonschema.Draft202012Validator(our_schema(kind) if schema is None else schema).is_valid(
        doc
    )
    assert py == (not rs), f"jsonschema and jsonschema-rs disagree on our schema: {rs}"
    return rs


# ------------------------------------------------------------------ CEL rules of the CRDs

_UNIT_NS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def go_duration_ns(text: str) -> Fraction | None:
    """Go's time.ParseDuration (which CEL's duration() uses), in nanoseconds; None if invalid."""
    s, sign = text, 1
    if s[:1] in ("+", "-"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return Fraction(0)
    if not s:
        return None
    total = Fraction(0)
    while s:
        number = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        assert number is not None
        whole, frac = number.group(1), number.group(2) or ""
        if not whole and not frac:
            return None
        s = s[number.end() :]
        unit = re.match(r"[^0-9.]*", s)
        assert unit is not None
        s = s[unit.end() :]
        if unit.group() not in _UNIT_NS:
            return None
        value = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
        total += value * _UNIT_NS[unit.group()]
    return sign * total


def _at_most_one_present(rule: str) -> list[str] | None:
    """Fields of a rule shaped `(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) <= 1`."""
    if re.fullmatch(r"(\(has\(self\.\w+\) \? 1 : 0\)( \+ )?)+ <= 1", rule):
        return re.findall(r"has\(self\.(\w+)\)", rule)
    return None


def cel_holds(rule: str, value: Any) -> bool:
    """Evaluate one of the CEL rule shapes Istio's CRDs use; an unknown rule fails the test."""
    if rule == "duration(self) >= duration('1ms')":
        ns = go_duration_ns(value)
        return ns is not None and ns >= 10**6
    if rule == 'self.all(key, !key.contains("*"))':
        return all("*" not in key for key in value)
    if rule == "self.all(key, key.size() != 0)":
        return all(key != "" for key in value)
    if rule == '!self.contains("*")':
        return "*" not in value
    fields = _at_most_one_present(rule)
    if fields is not None:
        return sum(field in value for field in fields) <= 1
    raise AssertionError(f"CEL rule not emulated by this test: {rule}")


def cel_violations(doc: dict[str, Any], kind: str) -> list[str]:
    """Messages of the CEL rules `doc` breaks (run only on structurally valid documents)."""
    schema = crd_versions(kind)[doc["apiVersion"].removeprefix(f"{GROUP}/")]
    broken: list[str] = []

    def walk(node: dict[str, Any], value: Any) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            if not cel_holds(rule["rule"], value):
                broken.append(rule["message"])
        if isinstance(value, dict):
            for name, sub in value.items():
                if name in node.get("properties", {}):
                    walk(node["properties"][name], sub)
                elif isinstance(node.get("additionalProperties"), dict):
                    walk(node["additionalProperties"], sub)
        elif isinstance(value, list) and "items" in node:
            for item in value:
                walk(node["items"], item)

    walk(schema, doc)
    return broken


def cel_rules(kind: str) -> dict[str, str]:
    """message -> rule of every CEL rule in the CRD's schemas."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations", []):
                found[rule["message"]] = rule["rule"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(crd_versions(kind))
    return found


# ------------------------------------------------------------------ corpus


@dataclass(frozen=True)
class Case:
    kind: str
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{KINDS[self.kind]}/{self.doc['metadata']['name']}"

    @property
    def expect_valid(self) -> bool:
        verdict = self.doc["metadata"]["annotations"][EXPECT]
        assert verdict in ("valid", "invalid"), self.id
        return bool(verdict == "valid")

    @property
    def cel(self) -> str | None:
        value = self.doc["metadata"]["annotations"].get(CEL)
        return str(value) if value is not None else None


def load_corpus() -> list[Case]:
    return [
        Case(kind, doc)
        for kind, stem in KINDS.items()
        for doc in yaml.safe_load_all((CORPUS_DIR / f"{stem}.yaml").read_text(encoding="utf-8"))
    ]


CORPUS = load_corpus()


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
def test_our_schema_and_the_crd_agree(case: Case) -> None:
    structural = crd_errors(case.doc, case.kind)
    broken = [] if structural else cel_violations(case.doc, case.kind)
    api_server_accepts = not structural and not broken
    ours = our_errors(case.doc, case.kind)

    assert api_server_accepts == case.expect_valid, (
        f"the CRD says {structural or broken or 'valid'}"
    )
    assert (not ours) == case.expect_valid, f"our schema says {ours or 'valid'}"
    if broken or case.cel:
        # The structural schema alone accepts the document; a CEL rule decides.
        assert case.cel is not None, f"{case.id} depends on CEL rules {broken}: annotate {CEL}"
        assert case.cel in cel_rules(case.kind), f"no CEL rule with message {case.cel!r}"
        assert not structural, f"{case.id} is rejected without CEL too: drop the {CEL} annotation"
        assert not broken or case.cel in broken, (
            f"{case.id} breaks {broken}, annotated {case.cel!r}"
        )


def test_the_corpus_covers_every_kind_version_and_verdict() -> None:
    assert len(CORPUS) >= 30
    assert len({case.id for case in CORPUS}) == len(CORPUS), "corpus names must be unique"
    assert sum(case.expect_valid for case in CORPUS) >= 15
    assert sum(not case.expect_valid for case in CORPUS) >= 15
    for kind in KINDS:
        cases = [case for case in CORPUS if case.kind == kind]
        assert {case.expect_valid for case in cases} == {True, False}, kind
        for valid in (True, False):
            versions = {case.doc["apiVersion"] for case in cases if case.expect_valid == valid}
            assert {f"{GROUP}/{v}" for v in crd_versions(kind)} <= versions, (kind, valid)


# ------------------------------------------------------------------ schema against CRD, field by field


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _crd_types(node: dict[str, Any]) -> set[str]:
    types = {"integer", "string"} if node.get("x-kubernetes-int-or-string") else {node["type"]}
    return types | ({"null"} if node.get("nullable") else set())


def _our_types(node: dict[str, Any]) -> set[str]:
    return set(node["type"]) if isinstance(node["type"], list) else {node["type"]}


def _bounds(node: dict[str, Any]) -> tuple[Any, Any]:
    low, high = INT_FORMATS.get(node.get("format", ""), (None, None))
    minimum, maximum = node.get("minimum", low), node.get("maximum", high)
    return minimum if low is None else max(minimum, low), maximum if high is None else min(
        maximum, high
    )


def _compare(
    crd: dict[str, Any], ours: dict[str, Any], root: dict[str, Any], path: str, out: list[str]
) -> None:
    ours = _resolve(ours, root)
    if _crd_types(crd) != _our_types(ours):
        out.append(f"{path}: type {_crd_types(crd)} in the CRD, {_our_types(ours)} here")
    for keyword in ("enum", "required"):
        if sorted(crd.get(keyword, [])) != sorted(ours.get(keyword, [])):
            out.append(f"{path}: {keyword} {crd.get(keyword)} in the CRD, {ours.get(keyword)} here")
    for keyword in ("minItems", "maxItems", "maxProperties", "maxLength", "minLength"):
        if crd.get(keyword) != ours.get(keyword):
            out.append(f"{path}: {keyword} {crd.get(keyword)} in the CRD, {ours.get(keyword)} here")
    if _bounds(crd) != _bounds(ours):
        out.append(f"{path}: range {_bounds(crd)} in the CRD, {_bounds(ours)} here")
    # Constraints beyond types: the CRD's oneOf/allOf, CEL rules and format: byte match our
    # not/allOf, pattern and propertyNames (their meaning is checked by the corpus).
    crd_extra = (
        any(k in crd for k in ("oneOf", "allOf", "x-kubernetes-validations"))
        or crd.get("format") == "byte"
    )
    our_extra = any(k in ours for k in ("not", "allOf", "pattern", "propertyNames"))
    if crd_extra != our_extra:
        out.append(f"{path}: constraints {crd_extra} in the CRD, {our_extra} here")
    crd_props, our_props = crd.get("properties", {}), ours.get("properties", {})
    if set(crd_props) != set(our_props):
        out.append(
            f"{path}: fields only in the CRD {sorted(set(crd_props) - set(our_props))}, only here {sorted(set(our_props) - set(crd_props))}"
        )
    for name in sorted(set(crd_props) & set(our_props)):
        _compare(crd_props[name], our_props[name], root, f"{path}.{name}", out)
    if ("items" in crd) != ("items" in ours):
        out.append(f"{path}: items {'items' in crd} in the CRD, {'items' in ours} here")
    elif "items" in crd:
        _compare(crd["items"], ours["items"], root, f"{path}[]", out)
    crd_map, our_map = crd.get("additionalProperties"), ours.get("additionalProperties")
    if isinstance(crd_map, dict) != isinstance(our_map, dict):
        out.append(f"{path}: map values {crd_map} in the CRD, {our_map} here")
    elif isinstance(crd_map, dict) and isinstance(our_map, dict):
        _compare(crd_map, our_map, root, f"{path}{{}}", out)


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_the_crd_has_the_same_shape_here(kind: str) -> None:
    schema = our_schema(kind)
    problems: list[str] = []
    for version, crd in crd_versions(kind).items():
        for part in ("spec", "status"):
            _compare(
                crd["properties"][part],
                schema["properties"][part],
                schema,
                f"{version}:{part}",
                problems,
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", KINDS)
def test_our_schema_is_draft_2020_12_with_apiversion_kind_and_descriptions(kind: str) -> None:
    schema = our_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["kind"]["const"] == kind
    assert sorted(schema["properties"]["apiVersion"]["enum"]) == sorted(
        f"{GROUP}/{v}" for v in crd_versions(kind)
    )
    undescribed: list[str] = []
    crd_text = {
        " ".join(str(d).split())
        for d in _all_values(crd_versions(kind), "description")
        if len(" ".join(str(d).split())) > 40
    }
    copied: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert node.get("additionalProperties") is not False, f"{path}: strict mode adds that"
            for name, sub in node.get("properties", {}).items():
                if not str(sub.get("description", "")).strip():
                    undescribed.append(f"{path}.{name}")
                if " ".join(str(sub.get("description", "")).split()) in crd_text:
                    copied.append(f"{path}.{name}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(schema, "#")
    assert not undescribed, f"properties without a description: {undescribed}"
    assert not copied, f"descriptions copied from the CRD: {copied}"


def _all_values(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [
            x for v in node.values() for x in _all_values(v, key)
        ]
    if isinstance(node, list):
        return [x for v in node for x in _all_values(v, key)]
    return []


# ------------------------------------------------------------------ durations

DURATIONS = [
    "1ms", "10s", "1.5s", "2.5m", "1h30m", "2h45m30.5s", "+1s", ".5s", "1.s", "1000us",
    "1000µs", "1000μs", "1000000ns", "0s1ms", "0", "0s", "0.0h", "-1s", "-0", "abc", "10", "",
    "1 s", "1S", "5ms ", "1d", "1.5", ".s", "1h-30m", "500us", "0.5ms", "999µs", "1ns",
]  # fmt: skip


def test_the_duration_pattern_follows_go_parse_duration() -> None:
    """Our Duration is Go's duration syntax and not zero; the CEL rule also wants >= 1ms."""
    schema = our_schema("VirtualService")
    duration = jsonschema_rs.validator_for({"$ref": "#/$defs/Duration", "$defs": schema["$defs"]})
    rule = "duration(self) >= duration('1ms')"
    lenient = []
    for text in DURATIONS:
        if duration.is_valid(text) != cel_holds(rule, text):
            lenient.append(text)
            ns = go_duration_ns(text)
            assert duration.is_valid(text) and ns is not None and 0 < ns < 10**6, text
    # The only gap: positive durations under a millisecond, which a pattern cannot sum up.
    assert lenient == ["500us", "0.5ms", "999µs", "1ns"]


# ------------------------------------------------------------------ rendered examples


def rendered_istio_objects() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(OVERLAYS.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in KINDS:
                found.append((path, doc))
    return found


def test_rendered_examples_are_valid() -> None:
    found = rendered_istio_objects()
    assert {doc["kind"] for _, doc in found} == set(KINDS), "the examples render all three kinds"
    for path, doc in found:
        where = path.relative_to(ROOT)
        assert not our_errors(doc, doc["kind"]), where
        assert not our_errors(doc, doc["kind"], strict(our_schema(doc["kind"]))), where
        assert not crd_errors(doc, doc["kind"]) and not cel_violations(doc, doc["kind"]), where


# ------------------------------------------------------------------ strict mode


def strict(schema: Any) -> Any:
    """A copy of `schema` where every object with `properties` forbids other fields.

    Subschemas marked x-kubernetes-preserve-unknown-fields (status, as in the CRD) stay open.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("enum", "const", "default", "examples"):
            out[key] = value
        else:
            out[key] = strict(value)
    if isinstance(schema.get("properties"), dict) and not schema.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        out.setdefault("additionalProperties", False)
    return out


def test_strict_mode_rejects_a_misspelt_field() -> None:
    doc = yaml.safe_load(
        """
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
        """
    )
    loose = our_schema("VirtualService")
    assert not our_errors(doc, "VirtualService")
    assert not crd_errors(doc, "VirtualService")
    errors = list(jsonschema_rs.validator_for(strict(loose)).iter_errors(doc))
    assert [list(e.instance_path) for e in errors] == [["spec", "http", 0, "route", 1]]
    assert "wieght" in errors[0].message
    assert loose == our_schema("VirtualService"), "strict() must not change the schema it is given"


@pytest.mark.parametrize("case", [c for c in CORPUS if c.expect_valid], ids=lambda case: case.id)
def test_strict_mode_accepts_valid_documents_without_unknown_fields(case: Case) -> None:
    doc = copy.deepcopy(case.doc)
    unknown = {"futureField", "somethingNew", "unknownFutureSetting"}

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k not in unknown}
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value

    strict_errors = our_errors(drop(doc), case.kind, strict(our_schema(case.kind)))
    assert not strict_errors
    if drop(doc) != doc:
        assert our_errors(doc, case.kind, strict(our_schema(case.kind)))
