"""Release files' fast path: libyaml with ruamel's resolver gives ruamel's values and places."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from meshcanary import source
from meshcanary.errors import InputError
from tests.support import json_paths

WORDS = st.sampled_from(
    ["v1", "yes", "on", "~", "null", "True", "FALSE", "0x1F", "036", "3_0", "1.5", "-0", "+7",
     "2024-01-01", "=", "<<", ".inf", "a b", "", "micro-api", "registry.example/x:1.2"]
)  # fmt: skip
# Floats as a release file writes them (99.5, 0.25) and as safe_dump writes others (1e+20,
# .inf, .nan): the fast path takes the first kind and leaves the rest to ruamel.
FLOATS = st.one_of(
    st.decimals(min_value=-1000, max_value=1000, places=3).map(float),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, WORDS, st.text(max_size=8))
KEYS = st.one_of(WORDS, st.text(alphabet="abcxyz-_", min_size=1, max_size=6))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=15,
)


def _ruamel(text: str) -> source.SourceDoc:
    root = source._ruamel_mapping(text, "f.yaml")
    return source.SourceDoc("f.yaml", root, source.to_plain(root, "f.yaml"))


@settings(max_examples=300)
@example({"k": "036"}, None, True)
@example({"-_": None}, None, False)  # ruamel took `-_` for an integer and raised IndexError
@example({"k": None, "l": [1, {"m": None}]}, False, True)
@given(
    st.dictionaries(KEYS, VALUES, min_size=1, max_size=4),
    st.sampled_from([None, True, False]),
    st.booleans(),
)
def test_the_fast_path_gives_ruamels_values_and_places(
    value: dict[str, Any], flow: bool | None, unquote: bool
) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)
    if unquote:
        text = text.replace("'", "")
    try:
        slow = _ruamel(text)
    except InputError:
        # ruamel refuses it: the fast path must not have accepted it.
        assert source._fast_mapping(text) is None
        return
    fast = source._fast_mapping(text)
    if fast is None:
        return  # not a case the fast path takes
    doc = source.SourceDoc("f.yaml", None, fast[0], text, fast[1])
    assert doc.data == slow.data
    for path in json_paths(doc.data):
        for key in (False, True):
            assert doc.location(path, key=key) == slow.location(path, key=key), path


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: 1\na: 2\n",  # a duplicate key: ruamel's error, at its place
        "%YAML 1.1\n---\na: yes\n",  # a directive changes the reading
        "a:\tb\n",  # a tab libyaml would take
        "a: 1e3\n",  # a float with an exponent
        "a: .5\n",  # a float without digits before its point
        "a: 1_000.5\n",  # a float with YAML 1.1's underscores
        "a: .inf\n",  # infinity
        "a: 2024-01-01\n",  # a date
        "a: 0x1F\n",  # an integer not written in decimal
        "a: !!float 3\n",  # an explicit tag beyond strings, integers and booleans
        "1: a\n",  # a key that is not a string
        "a: " + "9" * 30 + "\n",  # an integer too long for the quick conversion
        "a: [" * 40 + "]" * 40 + "\n",  # deeper than the fast path goes
    ],
)
def test_documents_the_fast_path_leaves_to_ruamel(text: str) -> None:
    assert source._fast_mapping(text) is None


def test_a_fast_document_builds_ruamels_tree_only_when_asked() -> None:
    doc = source.parse_mapping("service: a\nversions:\n  v1: {weight: 100}\n", "f.yaml")
    assert doc._root is None
    assert doc.location(["versions", "v1", "weight"]).line == 3
    assert doc._root is None  # places come from libyaml's nodes
    assert doc.root["versions"]["v1"]["weight"] == 100  # an edit needs ruamel's tree
