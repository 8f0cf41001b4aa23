"""Where schemas come from: bundled Kubernetes and CRD schemas, --crd files, location templates.

Kubernetes schemas are those of the `kubernetes-validate` package (one folder per minor
version, with a `-strict` twin that forbids unknown fields). Istio's and the Gateway API's are
generated from their CustomResourceDefinitions by `scripts/generate_schemas.py` into
`schemas/crds/<group>/<kind>_<version>.json` (the CRDs-catalog layout kubeconform users know),
listed by apiVersion and kind in `schemas/crds/index.json`. `--schema-location` takes
kubeconform's templates; a location that is a URL cannot be fetched offline and finds nothing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.resources import data_dir

DEFAULT = "default"
CRD_SCHEMAS = "crds"  # the folder of generated CRD schemas inside schemas/
_TEMPLATE_VARIABLE = re.compile(r"{{\s*\.(\w+)\s*}}")
_VARIABLES = {
    "NormalizedKubernetesVersion",
    "StrictSuffix",
    "ResourceKind",
    "ResourceAPIVersion",
    "Group",
    "KindSuffix",
}
KUBERNETES_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"


@cache
def kubernetes_root() -> Path:
    # Only its schema files are used: finding the package without importing it spares every
    # run the import of jsonschema that kubernetes-validate makes (about 45 ms).
    import importlib.util

    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("kubernetes-validate is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))).resolve()
    return folder / "kubernetes-json-schema"


@cache
def bundled_versions() -> tuple[tuple[int, int, int], ...]:
    found = []
    for folder in kubernetes_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-local", folder.name)
        if match:
            found.append((int(match[1]), int(match[2]), int(match[3])))
    return tuple(sorted(found))


def parse_version(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise InputError(
            f'invalid Kubernetes version "{text}": write a full version x.y.z, such as 1.31.0'
        )
    return int(match[1]), int(match[2]), int(match[3])


def bundled_version(requested: str | None) -> tuple[str, str]:
    """The bundled schema version to use for `requested`, and a note when it differs."""
    versions = bundled_versions()
    if requested is None:
        newest = versions[-1]
        return "{}.{}.{}".format(*newest), ""
    wanted = parse_version(requested)
    if not versions[0][:2] <= wanted[:2] <= versions[-1][:2]:
        low, high = "{}.{}".format(*versions[0][:2]), "{}.{}".format(*versions[-1][:2])
        raise InputError(
            f"Kubernetes {requested} schemas are not bundled: the bundled versions are "
            f"{low} to {high}; choose one of them, or give --schema-location"
        )
    same_minor = [v for v in versions if v[:2] == wanted[:2]]
    if same_minor:
        return "{}.{}.{}".format(*same_minor[-1]), ""
    nearest = min(versions, key=lambda v: abs(v[1] - wanted[1]) + 100 * abs(v[0] - wanted[0]))
    chosen = "{}.{}.{}".format(*nearest)
    return chosen, f"Kubernetes {requested} schemas are not bundled; using {chosen}"


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def kind_suffix(api_version: str) -> str:
    group, version = group_version(api_version)
    first = group.split(".")[0].lower() if group else ""
    return f"-{first}-{version.lower()}" if first else f"-{version.lower()}"


def check_template(location: str) -> None:
    """Refuse a location template with variables kubeconform does not know."""
    for match in _TEMPLATE_VARIABLE.finditer(location):
        if match[1] not in _VARIABLES:
            raise InputError(
                f'--schema-location "{location}": unknown template variable .{match[1]} '
                f"(known: {', '.join(sorted(_VARIABLES))})"
            )
    if "{{" in _TEMPLATE_VARIABLE.sub("", location):
        raise InputError(f'--schema-location "{location}": malformed template')


def expand(location: str, api_version: str, kind: str, version: str | None, strict: bool) -> str:
    """kubeconform's template expansion of one schema location."""
    if "{{" not in location and not location.endswith(".json"):
        location = (
            location.rstrip("/")
            + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
            + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
        )
    group, api = group_version(api_version)
    values = {
        "NormalizedKubernetesVersion": f"v{version}" if version else "master",
        "StrictSuffix": "-strict" if strict else "",
        "ResourceKind": kind.lower(),
        "ResourceAPIVersion": api,
        "Group": group,
        "KindSuffix": kind_suffix(api_version),
    }
    return _TEMPLATE_VARIABLE.sub(lambda m: values[m[1]], location)


@cache
def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# Where a definition starts in `_definitions.json`, which prints one to a line, indented four
# spaces under `$defs`. A raw line break cannot be inside a JSON string, so only keys match.
_DEFINITION_LINE = '\n    "'
_DEFINITION_NAME = re.compile(r'\n    "([^"\\\n]*)": ')
_DECODER = json.JSONDecoder()


class Definitions(Mapping[str, Any]):
    """The `$defs` of a bundled `_definitions.json`, each decoded when first asked for.

    The file holds 635 definitions in 1.3 MB, and a Deployment reaches 114 of them:
    decoding the whole file took 5 to 11 ms of every run, finding where each definition
    starts about 3 ms and decoding those reached 1 ms. A file in any other shape than
    `{"$defs": {...}, ...}` indented by two spaces, or with a name that has an escape in it,
    is decoded whole.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._decoded: dict[str, Any] = {}
        self._starts: dict[str, int] | None = None  # None: every definition decoded already
        self._others: dict[str, Any] = {}  # the document's keys beside `$defs`
        # `$defs` first, closed by the only line `  },` (another key at the top, say
        # `$schema`, follows it), what follows read whole.
        end = text.find("\n  },\n")
        first = text.startswith('{\n  "$defs": {' + _DEFINITION_LINE)
        if first and end > 0 and text.find("\n  },", end + 1) < 0:
            try:
                others = json.loads("{" + text[end + 5 :])
            except ValueError:
                others = None
            starts = {m[1]: m.end() for m in _DEFINITION_NAME.finditer(text, 0, end)}
            # No name escaped (the pattern would skip it), none given twice.
            if isinstance(others, dict) and len(starts) == text.count(_DEFINITION_LINE, 0, end):
                self._starts, self._others = starts, others
        if self._starts is None:
            whole = json.loads(text)
            self._others = whole if isinstance(whole, dict) else {}
            found = self._others.get("$defs")
            self._decoded = found if isinstance(found, dict) else {}
        # The names, decoded or not: where each starts, or the decoded definitions themselves.
        self._names: Mapping[str, Any] = self._decoded if self._starts is None else self._starts

    @classmethod
    def read(cls, path: Path) -> Definitions:
        return cls(path.read_text(encoding="utf-8"))

    def document(self, definitions: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole document, its `$defs` replaced by `definitions` when given."""
        chosen = self if definitions is None else definitions
        others = {key: value for key, value in self._others.items() if key != "$defs"}
        return {"$defs": {name: chosen[name] for name in chosen}, **others}

    def __getitem__(self, name: str) -> Any:
        if name not in self._decoded:
            if self._starts is None:
                raise KeyError(name)
            self._decoded[name] = _DECODER.raw_decode(self._text, self._starts[name])[0]
        return self._decoded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def kubernetes_schema(version: str, api_version: str, kind: str, strict: bool) -> Path | None:
    folder = kubernetes_root() / f"v{version}-local{'-strict' if strict else ''}"
    path = folder / f"{kind.lower()}{kind_suffix(api_version)}.json"
    return path if path.is_file() else None


@cache
def crd_index() -> dict[str, dict[str, str]]:
    """apiVersion -> kind -> schema file (relative to schemas/crds/) of every bundled CRD kind."""
    index: dict[str, dict[str, str]] = load_json(data_dir("schemas") / CRD_SCHEMAS / "index.json")
    return index


@cache
def load_schema(path: Path, strict: bool) -> Any:
    """A bundled CRD schema, made strict when asked: once per run, however many objects use it."""
    schema = load_json(path)
    return make_strict(schema) if strict else schema


def crd_schema(api_version: str, kind: str) -> Path | None:
    """The bundled schema of an Istio or Gateway API kind, for a version its CRD serves."""
    name = crd_index().get(api_version, {}).get(kind)
    return data_dir("schemas") / CRD_SCHEMAS / name if name else None


_COMBINATORS = ("allOf", "anyOf", "oneOf", "not")
_NAMED = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_VALUES = ("enum", "const", "default", "examples", "x-kubernetes-validations")


def make_strict(schema: Any, *, branch: bool = False) -> Any:
    """A copy of `schema` in which every object with `properties` forbids other fields.

    A branch of allOf, anyOf, oneOf or not constrains the object its parent describes (the
    Gateway API's `oneOf: [{properties: {type: {enum: [IPAddress]}}}, ...]` names one field of
    it): forbidding the fields it leaves out would refuse every valid object, so it stays open.
    """
    if isinstance(schema, list):
        return [make_strict(item, branch=branch) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NAMED and isinstance(value, dict):
            result[key] = {name: make_strict(sub, branch=branch) for name, sub in value.items()}
        elif key in _VALUES:
            result[key] = value  # data, not schemas
        else:
            result[key] = make_strict(value, branch=branch or key in _COMBINATORS)
    if (
        not branch
        and "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def from_openapi(schema: Any) -> Any:
    """A CRD's OpenAPI v3 schema as JSON Schema: nullable, int-or-string, preserved fields."""
    if isinstance(schema, list):
        return [from_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: from_openapi(value) for key, value in schema.items()}
    if result.pop("x-kubernetes-int-or-string", False):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if result.pop("nullable", False) and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result


# Fields the API server keeps on every object although a CRD's schema need not name them;
# without them a strict schema would refuse the apiVersion of every Istio object.
_IMPLIED = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


@dataclass(frozen=True)
class CrdVersion:
    """One version of a CustomResourceDefinition, its schema converted to JSON Schema."""

    group: str
    version: str
    kind: str
    served: bool
    schema: Any

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def crd_versions(crd: Any) -> Iterator[CrdVersion]:
    """The versions a CustomResourceDefinition document defines (nothing for another kind)."""
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        return
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    # apiextensions.k8s.io/v1beta1 keeps one schema for every version under validation.
    shared = (spec.get("validation") or {}).get("openAPIV3Schema") or {}
    for version in spec.get("versions") or [{"name": spec.get("version")}]:
        schema = from_openapi(((version.get("schema") or {}).get("openAPIV3Schema")) or shared)
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            schema["properties"] = {**copy.deepcopy(_IMPLIED), **schema["properties"]}
        yield CrdVersion(
            group, str(version.get("name")), kind, bool(version.get("served", True)), schema
        )
