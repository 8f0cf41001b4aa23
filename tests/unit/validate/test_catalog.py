"""Which Kubernetes schemas validate: the bundled versions, and versions outside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.errors import InputError
from meshcanary.validate import catalog
from tests.support import ROOT

SERVICE = ROOT / "deploy/base/micro-api/service.yaml"


def test_a_version_outside_the_bundled_range_is_an_error_naming_it(cli) -> None:
    """Before, 1.40.0 silently validated against 1.37's schemas."""
    outcome = cli("lint", "-k", "1.40.0", str(SERVICE))
    assert outcome.code == 2
    low, high = catalog.bundled_versions()[0], catalog.bundled_versions()[-1]
    assert outcome.err == (
        f"error: Kubernetes 1.40.0 schemas are not bundled: the bundled versions are "
        f"{low[0]}.{low[1]} to {high[0]}.{high[1]}; choose one of them, or give "
        "--schema-location\n"
    )


def test_an_older_version_is_an_error_too() -> None:
    with pytest.raises(InputError, match="the bundled versions are"):
        catalog.bundled_version("1.10.0")


def test_a_version_inside_the_range_uses_its_minor() -> None:
    low = catalog.bundled_versions()[0]
    chosen, note = catalog.bundled_version(f"{low[0]}.{low[1]}.99")
    assert chosen == "{}.{}.{}".format(*low)
    assert note == ""


def test_the_environment_version_is_held_to_the_range(example_repo: Path, cli) -> None:
    env = example_repo / "environments/prod/environment.yaml"
    env.write_text(
        env.read_text().replace("kubernetesVersion: 1.31.0", "kubernetesVersion: 1.99.0")
    )
    outcome = cli("--repo", example_repo, "check", "--no-cache")
    assert outcome.code == 2
    assert "Kubernetes 1.99.0 schemas are not bundled" in outcome.err


# The bundled definitions, each decoded when reached -----------------------------------------


@pytest.mark.parametrize(
    "folder",
    sorted(p.name for p in catalog.kubernetes_root().iterdir() if p.is_dir()),
)
def test_the_definitions_read_as_needed_are_those_of_the_whole_file(folder: str) -> None:
    import json

    text = (catalog.kubernetes_root() / folder / "_definitions.json").read_text(encoding="utf-8")
    whole = json.loads(text)
    definitions = catalog.Definitions(text)
    assert definitions._starts is not None
    assert list(definitions) == list(whole["$defs"])
    name = "io.k8s.api.apps.v1.Deployment"
    assert name in definitions
    assert definitions[name] == whole["$defs"][name]
    assert definitions.document() == whole
    assert definitions.document({name: definitions[name]}) == {
        **whole,
        "$defs": {name: whole["$defs"][name]},
    }


@pytest.mark.parametrize(
    "shape",
    ["compact", "indented-by-four", "escaped-name", "defs-not-first", "twice"],
)
def test_a_file_of_another_shape_is_read_whole(shape: str) -> None:
    import json

    document = {
        "$defs": {
            "a.B": {"type": "object", "properties": {"c": {"$ref": "#/$defs/a.C"}}},
            'a."C"' if shape == "escaped-name" else "a.C": {"type": "string"},
        },
        "$id": "https://example.invalid/_definitions.json",
    }
    if shape == "defs-not-first":
        document = {"$id": document.pop("$id"), **document}
    text = {
        "compact": json.dumps(document),
        "indented-by-four": json.dumps(document, indent=4),
    }.get(shape, json.dumps(document, indent=2))
    if shape == "twice":  # the same name again: JSON's reader keeps the last
        text = text.replace('"a.C": {', '"a.C": {"type": "integer"},\n    "a.C": {', 1)
        document = json.loads(text)
    definitions = catalog.Definitions(text)
    assert definitions._starts is None
    assert dict(definitions) == document["$defs"]
    assert definitions.document() == document
