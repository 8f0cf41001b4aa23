"""Generate schemas/crds/ from Istio's and the Gateway API's CustomResourceDefinitions.

    .venv/bin/python scripts/generate_schemas.py            # rewrite schemas/crds/
    .venv/bin/python scripts/generate_schemas.py --check    # exit 1 when it is stale

One JSON Schema per group, served version and kind, in the layout of kubeconform's
openapi2jsonschema and the CRDs-catalog (`<group>/<kind>_<version>.json`), converted by the
code that converts `lint --crd` files (`validate/catalog.py`), plus `index.json` (apiVersion ->
kind -> file), which is how `lint` finds them. The CRDs' `x-kubernetes-*` keys, CEL rules
included, are kept as they are. Strictness is not written in: `--strict` adds it when loading.

On top of the CRDs, the checks meshcanary's hand-written Istio schemas made and the CRDs'
structural schemas leave to the API server (`schema_overlay.json` and `api_server_checks`):
the shape of `metadata`, which every object must have; the range of `format: int32` and
`int64` integers; base64 for `format: byte`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from meshcanary.manifest import load_document, split_documents
from meshcanary.validate import catalog

ROOT = Path(__file__).resolve().parent.parent
ISTIO_CRDS = ROOT / "tests" / "data" / "istio-crds" / "crd-all.gen.yaml"
GATEWAY_API_CRDS = ROOT / "tests" / "data" / "gateway-api-crds"
OUTPUT = ROOT / "schemas" / catalog.CRD_SCHEMAS
OVERLAY = Path(__file__).resolve().with_name("schema_overlay.json")
INDEX = "index.json"

INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
DATA = ("enum", "default", "example", "x-kubernetes-validations")  # values, not schemas
BASE64 = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def sources() -> list[Path]:
    return [ISTIO_CRDS, *sorted(GATEWAY_API_CRDS.glob("*.yaml"))]


def served_versions(path: Path) -> Iterator[catalog.CrdVersion]:
    text = path.read_text(encoding="utf-8")
    for piece, _ in split_documents(text):
        for version in catalog.crd_versions(load_document(piece)):
            if version.served:
                yield version


def api_server_checks(schema: Any) -> Any:
    """`schema` with the integer ranges and base64 the API server checks of these formats."""
    if isinstance(schema, list):
        return [api_server_checks(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {
        key: value if key in DATA else api_server_checks(value) for key, value in schema.items()
    }
    types = schema.get("type")
    integer = types == "integer" or (isinstance(types, list) and "integer" in types)
    if integer and schema.get("format") in INTEGER_RANGES:
        low, high = INTEGER_RANGES[schema["format"]]
        result["minimum"] = max(low, schema.get("minimum", low))
        result["maximum"] = min(high, schema.get("maximum", high))
    if schema.get("format") == "byte" and "pattern" not in schema:
        result["pattern"] = BASE64
    return result


def with_overlay(schema: Any, overlay: dict[str, Any]) -> Any:
    result = api_server_checks(schema)
    result["properties"] = {**result["properties"], **copy.deepcopy(overlay["properties"])}
    result["required"] = sorted({*result.get("required", []), *overlay["required"]})
    return result


def render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """Relative path -> text of every file of schemas/crds/ but its hand-written SOURCE.md."""
    overlay = json.loads(OVERLAY.read_text(encoding="utf-8"))
    files: dict[str, str] = {}
    index: dict[str, dict[str, str]] = {}
    for path in sources():
        for version in served_versions(path):
            name = f"{version.group}/{version.kind.lower()}_{version.version}.json"
            if name in files:
                raise SystemExit(f"{path}: {version.api_version} {version.kind} is defined twice")
            files[name] = render(with_overlay(version.schema, overlay))
            index.setdefault(version.api_version, {})[version.kind] = name
    files[INDEX] = render(index)
    return files


def on_disk(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.json"))
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: schemas/crds/")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the output is stale"
    )
    args = parser.parse_args(argv)
    wanted, present = generate(), on_disk(args.output) if args.output.is_dir() else {}
    stale = sorted(
        name for name in wanted.keys() | present.keys() if wanted.get(name) != present.get(name)
    )
    if args.check:
        for name in stale:
            print(f"{args.output / name}: stale; run scripts/generate_schemas.py", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        target = args.output / name
        if name not in wanted:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted[name], encoding="utf-8")
    for folder in sorted(p for p in args.output.iterdir() if p.is_dir()):
        if not any(folder.iterdir()):
            folder.rmdir()  # a group none of the CRDs defines any more
    print(f"{len(wanted) - 1} schemas in {args.output}: {len(stale)} written or removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
