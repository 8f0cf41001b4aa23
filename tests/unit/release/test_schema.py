"""The JSON Schemas: strict, documented, and what the examples and editors use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshcanary.release import schema
from meshcanary.source import load_mapping
from tests.support import ROOT, json_paths

SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))


def _objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_strict_and_documents_every_field(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for where, node in _objects(document):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{where} accepts unknown fields"
            for name, field in node["properties"].items():
                assert field.get("description"), f"{where}/properties/{name} has no description"


def test_every_example_file_validates_and_names_its_schema() -> None:
    files = sorted((ROOT / "environments").rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        kind = "environment" if path.name == "environment.yaml" else "release"
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../../schemas/{kind}.schema.json"
        doc = load_mapping(path, str(path.relative_to(ROOT)))
        assert schema.check(kind, doc) == []


def test_float_weight_is_not_an_integer(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "service: a\nbase: b\nversions:\n  v1: {image: x:1, replicas: 1, weight: 100.0}\n",
        encoding="utf-8",
    )
    problems = schema.check("release", load_mapping(path, "r.yaml"))
    assert [(p.location.line, p.location.column) for p in problems] == [(4, 41)]
    assert problems[0].message == '"weight" must be an integer, found a number 100.0'


def _mutations() -> Any:
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-200, 200),
        st.sampled_from(["", "v1", "V1", "a b", "x:1", "10s", "30%", "mesh", "-x", "é", "a\n"]),
        st.text(max_size=6),
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["v1", "image", "weight", "x", "headers"]), inner, max_size=3
            )
        ),
        max_leaves=8,
    )


EXAMPLES = {
    "release": [
        load_mapping(p, p.name).data
        for p in sorted((ROOT / "environments").glob("*/*.yaml"))
        if p.name != "environment.yaml"
    ],
    "environment": [
        load_mapping(p, p.name).data
        for p in sorted((ROOT / "environments").glob("*/environment.yaml"))
    ],
}


def test_the_quick_validator_agrees_with_the_one_that_explains() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # check() trusts jsonschema-rs's "valid" without asking Python's jsonschema: on any
    # example with any one value replaced, the two must agree (floats aside, see check()).
    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(sorted(EXAMPLES)), st.data(), _mutations())
    def agree(name: str, data: Any, replacement: Any) -> None:
        example = json.loads(json.dumps(data.draw(st.sampled_from(EXAMPLES[name]))))
        path = data.draw(st.sampled_from(json_paths(example)[1:]))
        parent = example
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = replacement
        if schema._has_float(example):
            return
        explained = not list(schema.validator(name).iter_errors(example))
        assert schema._quick(name).is_valid(example) == explained, (path, replacement)

    agree()
