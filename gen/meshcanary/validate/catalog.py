"""Where schemas come from: bundled Kubernetes and Istio schemas, CRDs, location templates.

Kubernetes schemas are those of the `kubernetes-validate` package (one folder per minor
version, with a `-strict` twin that forbids unknown fields). Istio's are meshcanary's own, in
`schemas/istio/`. `--schema-location` takes kubeconform's templates; a location that is a URL
cannot be fetched offline and finds nothing.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.resources import data_dir

DEFAULT = "default"
ISTIO_GROUP = "networking.istio.io"
ISTIO_KINDS = {"VirtualService", "DestinationRule", "Gateway"}
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


def kubernetes_schema(version: str, api_version: str, kind: str, strict: bool) -> Path | None:
    folder = kubernetes_root() / f"v{version}-local{'-strict' if strict else ''}"
    path = folder / f"{kind.lower()}{kind_suffix(api_version)}.json"
    return path if path.is_file() else None


def istio_schema(api_version: str, kind: str) -> Path | None:
    group, _ = group_version(api_version)
    if group != ISTIO_GROUP or kind not in ISTIO_KINDS:
        return None
    path = data_dir("schemas") / "istio" / f"{kind.lower()}.schema.json"
    return path if path.is_file() else None


def make_strict(schema: Any) -> Any:
    """A copy of `schema` in which every object with `properties` forbids other fields."""
    if isinstance(schema, list):
        return [make_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: make_strict(value) for key, value in schema.items()}
    if (
        "properties" in result
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
