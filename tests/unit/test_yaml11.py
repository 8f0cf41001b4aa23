"""Plain scalars without PyYAML: `yaml11` gives each text the value PyYAML's loader gives it.

The reference is PyYAML itself, through the manifest Loader (YAML 1.1 as Kubernetes reads it):
a text is put where a value or a key goes, kept when PyYAML reads it back as that one plain
scalar, and the value it gets there is the one the fast reader's callbacks
(`manifest._plain_scalar` and `manifest._plain_key`) must give.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from meshcanary import fastyaml, manifest, yaml11
from meshcanary.manifest import Loader, load_document
from tests.support.yaml_values import json_keys

UNSURE = "unsure"
MERGE = "tag:yaml.org,2002:merge"


def _same(got: Any, want: Any) -> bool:
    """Of the same type and equal; NaN is NaN, and -0.0 is not 0.0."""
    if type(got) is not type(want):
        return False
    if isinstance(got, float):
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    return bool(got == want)


def _outcome(read: Any, text: str) -> Any:
    try:
        return read(text)
    except fastyaml.Unsure:
        return UNSURE
    except ValueError as exc:  # an integer too long for Python to convert, say
        return type(exc)


def _plain_node(document: str, text: str, *, key: bool) -> yaml.ScalarNode | None:
    """The node of `text` in a one-entry mapping, if PyYAML reads it there as one plain
    scalar written exactly so (no comment, indicator, tag, anchor or folding around it)."""
    try:
        root = yaml.compose(document, Loader=Loader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or len(root.value) != 1:
        return None
    node = root.value[0][0 if key else 1]
    if isinstance(node, yaml.ScalarNode) and not node.style and node.value == text:
        return node
    return None


def pyyaml_value(text: str) -> tuple[Any] | None:
    """What the manifest Loader makes of `text` as a mapping's value (the value, the error it
    raised, or UNSURE for a merge key); None when PyYAML does not read it as one plain
    scalar."""
    node = _plain_node(f"k: {text}", text, key=False)
    if node is None:
        return None
    if node.tag == MERGE:
        return (UNSURE,)  # the fast reader leaves a merge key to the full loader
    return (_outcome(lambda t: yaml.load(f"k: {t}", Loader=Loader)["k"], text),)  # noqa: S506


def pyyaml_key(text: str) -> tuple[Any] | None:
    """The JSON key the manifest Loader (and sigs.k8s.io/yaml) makes of `text` as a key, as
    `pyyaml_value` gives a value."""
    node = _plain_node(f"{text}: v", text, key=True)
    if node is None:
        return None
    if node.tag == MERGE:
        return (UNSURE,)
    loaded = _outcome(lambda t: json_keys(yaml.load(f"{t}: v", Loader=Loader)), text)  # noqa: S506
    return (loaded if isinstance(loaded, type) else next(iter(loaded)),)


def _cases(word: str) -> st.SearchStrategy[str]:
    mixed = st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
    )
    return st.sampled_from([word, word.title(), word.upper()]) | mixed


WORDS = st.sampled_from(
    ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "inf", "nan"]
).flatmap(_cases)
TIMESTAMPS = st.sampled_from(
    [
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-15T02:59:43.1Z",
        "2001-12-15 2:59:43.10",
        "2002-12-14",
        "2002-1-4",
    ]
)
# Pieces of the spellings YAML 1.1 reads as something other than a string, and near misses.
ATOMS = st.one_of(
    st.sampled_from(list("0123456789+-._:eExXbBoOaAfF \u0661\uff11\u00b2")),
    st.sampled_from(["0", "00", "0b", "0x", "0o", "60", "59", "1_0", "~", "=", "<<", "#"]),
    st.sampled_from([".inf", ".Inf", ".INF", "-.inf", "+.Inf", ".nan", ".NaN", ".NAN", "."]),
    WORDS,
    TIMESTAMPS,
)


def _run(alphabet: str, least: int = 1) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(alphabet), min_size=least, max_size=4)


DECIMAL = "0123456789_"
# Digits to Python (int, float), not to YAML: Arabic-Indic, fullwidth, superscript.
NOT_ASCII = "\u0661\uff11\u00b2"
PLACES = st.lists(
    st.tuples(st.sampled_from(["", *"012345"]), st.sampled_from("0123456789")).map(
        lambda place: ":" + "".join(place)
    ),
    min_size=1,
    max_size=3,
).map("".join)
SHAPES: dict[str, Any] = {
    "decimal": st.tuples(st.sampled_from("123456789"), _run(DECIMAL, 0)),
    "octal": st.tuples(st.just("0"), _run("01234567_")),
    "binary": st.tuples(st.just("0b"), _run("01_")),
    "hexadecimal": st.tuples(st.just("0x"), _run("0123456789abcdefABCDEF_")),
    "base 60": st.tuples(_run(DECIMAL), PLACES),
    "base 60 fraction": st.tuples(_run(DECIMAL), PLACES, st.just("."), _run(DECIMAL, 0)),
    "fraction": st.tuples(_run(DECIMAL, 0), st.just("."), _run(DECIMAL, 0)),
    "exponent": st.tuples(
        _run(DECIMAL, 0),
        st.sampled_from(["", "."]),
        _run(DECIMAL, 0),
        st.sampled_from(["e", "E"]),
        st.sampled_from(["", "-", "+"]),
        _run("0123456789"),
    ),
    "special": st.tuples(st.sampled_from([".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"])),
}


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Spellings of the shapes of YAML 1.1's and Go's numbers, with a sign or none, and one in
    four a near miss: a character put in, taken out or changed."""
    shape = draw(st.sampled_from(sorted(SHAPES)))
    text = draw(st.sampled_from(["", "", "-", "+"])) + "".join(draw(SHAPES[shape]))
    event(shape)
    if draw(st.integers(0, 3)) == 0:
        where = draw(st.integers(0, len(text)))
        put = draw(st.sampled_from(["", *"0123456789_.:+-eExXbB"]) | st.sampled_from(NOT_ASCII))
        text = text[:where] + put + text[where + draw(st.integers(0, 1)) :]
    return text


TEXTS = st.one_of(
    numbers(),
    numbers(),
    st.lists(ATOMS, min_size=1, max_size=5).map("".join),
    WORDS | st.sampled_from(["", "~", "~~", "=", "==", "<<", "<", "<<<", "<< "]),
    TIMESTAMPS,
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
)


@settings(max_examples=3000)
@given(TEXTS)
def test_a_plain_value_is_what_pyyaml_reads(text: str) -> None:
    read = pyyaml_value(text)
    assume(read is not None)
    (want,) = read
    event(type(want).__name__ if want != UNSURE else UNSURE)
    assert _same(_outcome(manifest._plain_scalar, text), want)


@settings(max_examples=3000)
@given(TEXTS)
def test_a_plain_key_is_the_json_key_pyyaml_reads(text: str) -> None:
    read = pyyaml_key(text)
    assume(read is not None)
    (want,) = read
    assert _outcome(manifest._plain_key, text) == want


INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # Integers: binary, octal, decimal, hexadecimal, base 60, with `_`s and a sign.
        *[("0644", 420), ("-0644", -420), ("0_644", 420), ("00", 0), ("0_", 0), ("-0", 0)],
        *[("08", "08"), ("0o644", "0o644"), ("0b101", 5), ("-0b1_01", -5), ("0x1F", 31)],
        *[("+0x_1f", 31), ("0b_", "0b_"), ("-0x__", "-0x__"), ("0x", "0x"), ("0b2", "0b2")],
        *[("1_000", 1000), ("+12", 12), ("_1", "_1"), ("1__", 1), ("190:20:30", 685230)],
        *[("-1:30", -90), ("12:30", 750), ("0:30", "0:30"), ("1:60", "1:60"), ("1:5:9", 3909)],
        ("1" * 5000, ValueError),  # longer than Python converts, in both readers
        # Floats: YAML 1.1's, as PyYAML narrows them, and Go's exponents without a dot.
        *[("1.", 1.0), ("1._", 1.0), (".5", 0.5), ("+.5", "+.5"), ("-.5", "-.5"), ("0.0", 0.0)],
        *[("-0.0", -0.0), ("1_0.5e+3", 10500.0), ("1.5e3", 1500.0), ("1e-05", 1e-05)],
        *[("1E5", 100000.0), ("-.5E3", -500.0), ("1_0e5", "1_0e5"), ("1.2.3", "1.2.3")],
        *[("190:20:30.15", 685230.15), ("-1:30.5", -90.5), ("1:60.0", "1:60.0"), (".", ".")],
        # Summed from the last place up, as PyYAML sums: 3840 + 36.72 rounds otherwise.
        *[("1:4:36.72", 36.72 + 4 * 60 + 3600), ("-1:4:36.72", -(36.72 + 4 * 60 + 3600))],
        *[(".inf", INF), ("-.Inf", -INF), ("+.INF", INF), (".iNf", ".iNf"), ("inf", "inf")],
        *[(".NaN", NAN), (".nan", NAN), ("-.nan", "-.nan"), (".Nan", ".Nan")],
        # Booleans: yes, no, true, false, on and off in three cases; not y and n.
        *[("yes", True), ("No", False), ("ON", True), ("off", False), ("TRUE", True)],
        *[("False", False), ("oFF", "oFF"), ("tRUE", "tRUE"), ("y", "y"), ("N", "N")],
        # Null.
        *[("~", None), ("null", None), ("Null", None), ("NULL", None), ("nULL", "nULL")],
        # Strings to Kubernetes: timestamps, `=`; and digits that are not ASCII.
        *[("2001-12-14", "2001-12-14"), ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5")],
        *[("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"), ("=", "=")],
        *[("\u0967\u0968", "\u0967\u0968"), ("\uff11", "\uff11"), ("1\u00b2", "1\u00b2")],
        *[("1\u0661", "1\u0661"), ("1.\uff11", "1.\uff11"), ("1e\u0661", "1e\u0661")],
        # A merge key is the full loader's.
        ("<<", UNSURE),
    ],
)
def test_edge_cases(text: str, value: Any) -> None:
    got = _outcome(manifest._plain_scalar, text)
    assert _same(got, value)
    read = pyyaml_value(text)
    assert read is not None and _same(got, read[0])


@pytest.mark.parametrize(
    ("text", "key"),
    [
        *[("0644", "420"), ("0x1F", "31"), (".inf", "inf"), ("-.Inf", "-inf"), (".NaN", "nan")],
        *[("1e-05", "1e-05"), ("1.", "1.0"), ("-0.0", "-0.0"), ("1_000", "1000")],
        *[("on", "true"), ("No", "false"), ("~", "null"), ("y", "y"), ("=", "=")],
        *[("2001-12-14", "2001-12-14"), ("0b_", "0b_"), ("<<", UNSURE)],
    ],
)
def test_edge_cases_as_keys(text: str, key: str) -> None:
    assert _outcome(manifest._plain_key, text) == key
    assert pyyaml_key(text) == (key,)


def test_the_indicators_alone_are_left_to_the_full_loader() -> None:
    # Never plain scalars (the fast reader refuses them first); PyYAML calls them `!!yaml`
    # and has no value for them.
    for text in ("!", "&", "*"):
        with pytest.raises(fastyaml.Unsure):
            yaml11.value(text)


# Beyond the fast reader: an anchor and its alias, a tag, a plain scalar over two lines, a merge
# key, a flow mapping in a flow sequence. The values as before PyYAML was imported lazily.
FALLBACK = (
    "a: &x 0644\n"
    "b: *x\n"
    "c: !!str 0644\n"
    "d: one\n"
    "  1e-05\n"
    "e: [yes, {f: 1e-05}, .NaN]\n"
    "g: {h: &m {on: 1:30}}\n"
    "i:\n"
    "  <<: *m\n"
    "  j: 0b_\n"
)


def test_a_document_beyond_the_fast_reader_reads_as_before() -> None:
    with pytest.raises(fastyaml.Unsure):
        manifest._FAST.load(FALLBACK)
    value = load_document(FALLBACK)
    nan = value["e"].pop()
    assert math.isnan(nan)
    assert value == {
        "a": 420,
        "b": 420,
        "c": "0644",
        "d": "one 1e-05",
        "e": [True, {"f": 1e-05}],
        "g": {"h": {"true": 90}},
        "i": {"true": 90, "j": "0b_"},
    }
    # ... and its positions, from PyYAML's node tree.
    document = manifest.Document("f.yaml", FALLBACK, 3, 0)
    assert document.location(["i", "j"]).line == 3 + 9
