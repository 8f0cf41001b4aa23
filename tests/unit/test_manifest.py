"""The manifest loader: PyYAML's answers, faster, within bounds on depth and alias expansion."""

from __future__ import annotations

import marshal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcanary.manifest import MAX_DEPTH, Loader, TooLarge, Unsupported, _Builder, load_document
from tests.support.bounds import count_calls
from tests.support.yaml_values import entries, json_keys

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    # Plain words YAML 1.1 reads as something else: the loader must resolve them the same.
    st.sampled_from(["yes", "No", "on", "~", "0x1F", "017", "1_000", "1e-05", "2001-12-14", "="]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300)
@given(VALUES, st.sampled_from([None, True, False]))
def test_the_loader_gives_what_pyyaml_gives(value: Any, flow: bool | None) -> None:
    text = yaml.safe_dump({"data": value}, default_flow_style=flow)
    plain = yaml.safe_dump({"data": value}, default_flow_style=flow).replace("'", "")
    for source in (text, plain):
        try:
            expected = yaml.load(source, Loader=Loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            with pytest.raises(yaml.YAMLError):
                load_document(source)
            continue
        got = load_document(source)
        # Keys that are one key in Python (0 and False, 1 and True) collide in PyYAML's
        # value; the loader makes each its JSON key first, as sigs.k8s.io/yaml does.
        assert got == json_keys(expected) or entries(json_keys(expected)) < entries(got)


@pytest.mark.parametrize(
    "text",
    [
        "x: &a {p: 1}\ny:\n  <<: *a\n  q: 2\n",  # merge keys: PyYAML's constructor
        "a: &x [1, 2]\nb: *x\n",
        "a: !!str 3\nb: !!int '4'\n",
        "? [1, 2]\n: v\n",
    ],
)
def test_documents_beyond_the_fast_path_load_as_pyyaml_loads_them(text: str) -> None:
    try:
        expected: Any = yaml.load(text, Loader=Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        expected = type(exc)
    try:
        got: Any = load_document(text)
    except yaml.YAMLError as exc:
        got = type(exc)
    assert got == expected


@pytest.mark.parametrize(
    ("text", "tag"), [("a: !!binary aGVsbG8=\n", "!!binary"), ("a: !!set {x, y}\n", "!!set")]
)
def test_tags_json_cannot_hold_are_refused_at_the_tag(text: str, tag: str) -> None:
    with pytest.raises(Unsupported, match=f"tag {tag} builds a value JSON cannot hold") as caught:
        load_document(text)
    assert caught.value.mark is not None and caught.value.mark.column == 3


def test_keys_that_are_not_strings_become_the_json_keys_kubernetes_makes() -> None:
    assert load_document("on: a\n1: b\n~: c\n3.5: d\nno: e\n") == {
        "true": "a",
        "1": "b",
        "null": "c",
        "3.5": "d",
        "false": "e",
    }


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_at_once_and_where_it_expands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _laughs(9)
    visits = count_calls(monkeypatch, _Builder, "__call__")
    with pytest.raises(TooLarge, match="aliases expand") as caught:
        load_document(text)  # 10**9 values once expanded
    # At once: each node of the text is visited at most once, an alias never expanded.
    assert 0 < len(visits) < len(text)
    assert (
        caught.value.mark is not None and caught.value.mark.line == 6
    )  # a6 (0-based line 6): 10**7 values


def test_aliases_that_share_a_little_are_fine() -> None:
    assert load_document(_laughs(3))["a2"][0][0] == ["x"] * 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(MAX_DEPTH + 5)), "nested deeper"),
        ("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), "nested deeper"),
        ("&a [*a]", "refers to a node that contains it"),
        ("x: &a {y: *a}", "refers to a node that contains it"),
    ],
)
def test_deep_and_cyclic_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(TooLarge, match=message):
        load_document(text)


def test_the_same_bounds_hold_on_pyyamls_path() -> None:
    merged = "base: &b {k: v}\n" + _laughs(9) + "m:\n  <<: *b\n"
    with pytest.raises(TooLarge, match="aliases expand"):
        load_document(merged)


def test_lint_reports_a_bomb_as_a_located_problem(tmp_path, cli) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n"
        + "".join(f"  {line}\n" for line in _laughs(9).splitlines())
    )
    outcome = cli("lint", bomb)
    assert outcome.code == 2, outcome.out
    assert f"{bomb}:11:7: error: document too large: aliases expand" in outcome.err


def test_a_crd_file_is_read_within_the_same_bounds(tmp_path, cli, monkeypatch) -> None:
    crd = tmp_path / "crd.yaml"
    crd.write_text(
        "kind: CustomResourceDefinition\nspec:\n"
        + "".join(f"  {line}\n" for line in _laughs(9).splitlines())
    )
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    visits = count_calls(monkeypatch, _Builder, "__call__")
    outcome = cli("lint", "--crd", crd, manifest)
    assert 0 < len(visits) < len(crd.read_text())  # no alias of the CRD expanded
    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        f"error: --crd {crd}: cannot read: aliases expand this document to more than 5,000,000 values"
    ]


def test_objects_are_the_mappings_of_a_multi_document_text() -> None:
    from meshcanary.manifest import BadDocument, objects

    text = "kind: A\n---\n- a list\n---\n\n---\nkind: B\n...\n"
    assert objects(text) == [{"kind": "A"}, {"kind": "B"}]
    with pytest.raises(BadDocument):  # kustomize's output is held to the manifest bounds too
        objects("kind: A\n---\n" + "[" * 300 + "]" * 300 + "\n")


def test_integers_without_digits_are_strings_as_go_reads_them() -> None:
    """YAML 1.1's integer pattern takes `0b_` and `0x_` for integers, and PyYAML's constructor
    then failed with a traceback; sigs.k8s.io/yaml reads them as strings."""
    text = "a: 0b_\nb: -0x__\nc: 0b1\nd: 0x1F\nitems: [0x_, 0b_]\n"
    expected = {"a": "0b_", "b": "-0x__", "c": 1, "d": 31, "items": ["0x_", "0b_"]}
    assert load_document(text) == expected
    assert load_document("---\n" + text.replace("items: [0x_, 0b_]", "e: &x 0b_\nf: *x")) == {
        **{k: v for k, v in expected.items() if k != "items"},
        "e": "0b_",
        "f": "0b_",
    }


IDENTITY_FIELDS = st.one_of(st.none(), st.integers(), st.text(max_size=4), st.lists(st.none()))


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "metadata", "spec"]),
        st.one_of(
            IDENTITY_FIELDS,
            st.dictionaries(
                st.sampled_from(["name", "generateName", "namespace", "labels"]),
                IDENTITY_FIELDS,
            ),
        ),
    )
)
def test_a_resources_ref_is_what_its_object_gives(data: dict[str, Any]) -> None:
    # Resource.ref is made from the fields the object read at its start, not from the data
    # again: the same identity either way, whatever type each field has.
    from meshcanary.manifest import Document, Resource
    from meshcanary.problem import ResourceRef

    resource = Resource(data, Document("f.yaml", "", 1, 0))
    assert resource.ref == ResourceRef.of(data)


def test_marshal_writes_the_deepest_document_the_loader_reads() -> None:
    # lint's workers send objects back in marshal's format (lint._Part), which refuses other
    # types than JSON's and nesting past 2000.
    deepest = load_document("a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2))
    assert marshal.loads(marshal.dumps(deepest)) == deepest  # noqa: S302


@settings(max_examples=200)
@given(VALUES, st.sampled_from([None, True, False]))
def test_marshal_writes_whatever_the_loader_makes(value: Any, flow: bool | None) -> None:
    loaded = load_document(yaml.safe_dump({"data": value}, default_flow_style=flow))
    assert marshal.loads(marshal.dumps(loaded)) == loaded  # noqa: S302
