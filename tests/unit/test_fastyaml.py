"""The fast reader gives the full loader's value, of the same type, or says it is unsure.

The full loader (`manifest._load_with_pyyaml`, which `load_document` was before the fast
reader) is the reference, with `yaml.load(text, Loader=manifest.Loader)` beside it: generated
block-style texts built from YAML 1.1's tricky spellings and damaged on purpose, every YAML
file of the repository, and real kustomize output.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from meshcanary import fastyaml, manifest
from meshcanary.kustomize import command as kustomize_command
from meshcanary.manifest import MAX_DEPTH, Loader, load_document, split_documents
from tests.support import ROOT, write
from tests.support.yaml_values import entries, json_keys

UNSURE = "unsure"


def _same(got: Any, want: Any) -> bool:
    """Equal, of the same types all the way down, mapping keys in the same order; NaN is NaN."""
    if type(got) is not type(want):
        return False
    if isinstance(got, float):
        return got == want or (math.isnan(got) and math.isnan(want))
    if isinstance(got, dict):
        return list(got) == list(want) and all(_same(got[k], want[k]) for k in got)
    if isinstance(got, list):
        return len(got) == len(want) and all(map(_same, got, want))
    return bool(got == want)


def _outcome(load: Any, text: str) -> Any:
    """A loader's value for `text`, or the kind of error it raised. Besides YAMLError and
    BadDocument, that is ValueError for an integer of more digits than Python's `int` reads
    (4,300), in both loaders."""
    try:
        return load(text)
    except (yaml.YAMLError, ValueError) as exc:
        return type(exc)


def _fast(text: str) -> Any:
    try:
        return manifest._FAST.load(text)
    except fastyaml.Unsure:
        return UNSURE


def _agrees(text: str) -> bool:
    """Assert the fast reader and load_document agree with the full loader on `text`;
    whether the fast reader read it."""
    want = _outcome(manifest._load_with_pyyaml, text)
    got = _outcome(_fast, text)
    if isinstance(got, type):
        assert got is want  # the constructor's ValueError, raised by both
    elif got != UNSURE:
        assert not isinstance(want, type), f"read what the full loader refuses ({want})"
        assert _same(got, want), (got, want)
        # PyYAML's own value, unless keys that are one key in Python (1 and `on`, True)
        # collided there; the full loader makes each its JSON key first.
        pyyaml = json_keys(yaml.load(text, Loader=Loader))  # noqa: S506 - a safe loader
        assert _same(got, pyyaml) or entries(pyyaml) < entries(got)
    whole = _outcome(load_document, text)
    assert whole == want if isinstance(want, type) else _same(whole, want)
    return got != UNSURE


# Generated documents ---------------------------------------------------------------------


def _spellings(*groups: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from([spelling for group in groups for spelling in group])


PLAIN = _spellings(
    # YAML 1.1 spellings that are not strings, and strings that look like them.
    ["0644", "0o644", "08", "0x1F", "1_000", "1e3", "1.0e+3", "1e-05", ".5", "+.5", "1."],
    ["-.inf", ".Inf", ".NaN", ".nan", "-1", "+1", "0", "-0", "0.0", "190:20:30", "0b101"],
    ["yes", "No", "ON", "off", "y", "n", "Y", "true", "False", "~", "null", "Null", "NULL"],
    ["2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<", "12:30"],
    # Strings, some with characters that mean something elsewhere.
    ["a", "app", "v1", "http://x:80/y", "a:b", "a#b", "a #b", "a b", "a  b", "-a", "?a", ":a"],
    ["a,b", "a]", "a}", "a{", "é", "a\xa0b", "a'b", 'a"b', "a\\b", "100m", "64Mi"],
    # Not plain scalars, or not one-line ones: other readings or the full loader's errors.
    ["- a", "? a", ": a", "-", "?", ":", "&a x", "*a", "!!str 3", "!t x", "!!binary aGk="],
    ["%x", "@x", "`x", "a: b", "a:", "'", '"', "#", ",a", "]", "a\tb", "a\rb", "a\x85b"],
)
FLOW = _spellings(
    # Flat flow collections, and what goes beyond them.
    ["[a, b]", "{a: 1}", "[]", "{}", "[ ]", "{ }", "[a, [b]]", "{a: {b: 1}}", "[a,]", "[,]"],
    ["[a, 'b, c']", '["a", "b"]', "{a, b}", "{'a': 1}", "{a:1}", "[a:b]", "[-1]", "[a?b]"],
    ["[a, 'b']", "{a: 'x y', b: \"z\"}", "[a", "{a: 1", "[a] b", "[a] # c", "{a: }", "[- a]"],
    ["[0644, yes, ~, .nan, 1e3]", "{on: off, 1: 2, ~: x}", "[a:]", "[a:, b]", "[a:b]", "[a:?]"],
)
QUOTED = _spellings(
    ["''", '""', "'it''s'", '"\\u00e9\\t"', '"\\x41\\n"', '"\\/"', '"\\ud800"'],
    ['"\\U0001F600"', '"\\q"', '"a\\\\b"', '"it\'s"', '"a # b"', "'a: b'", '"  spaced  "'],
    ["'a' 'b'", '"a"b', "'0644'", '"yes"', "'~'", '"1e3"', "'#'", '"\\"quoted\\""', "'a''"],
    ['"a\\"', '"\\e\\N\\_"'],
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
SCALAR = st.one_of(
    PLAIN,
    QUOTED,
    FLOW,
    TEXT,
    TEXT.map(lambda s: "'" + s.replace("'", "''") + "'"),
    TEXT.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)
AFTER = st.sampled_from(["", "", "", "   ", " # a comment", "#x", "  #c: d"])
KEY = st.one_of(
    _spellings(
        ["a", "b", "name", "a:b", "http://x", "a b", "1", "0644", "yes", "~", "null", "1e3"],
        [".nan", "<<", "=", "'q'", '"d"', "'a: b'", '"x" ', "a #b", "-k", "? k", "[k]"],
        ["{k: 1}", "&a k", "!t k", "'it''s'", "", "k ", '"\\u00e9"', "a\xa0", "*a"],
    ),
    TEXT,
)
HEADER = st.sampled_from(["|", ">", "|-", ">-", "|+", ">+", "| # c", "|2", ">1-", "|#c", "|x"])
# Tame documents keep to what the fast reader reads, so that it reads many of them.
TAME_TEXT = st.text(st.sampled_from("abz019 .-_/"), min_size=1, max_size=6)
TAME_SCALAR = st.one_of(
    _spellings(
        ["0644", "0o644", "08", "0x1F", "1_000", "1e3", "1.0e+3", "1e-05", ".5", "-.inf", ".NaN"],
        ["yes", "No", "ON", "off", "y", "n", "~", "null", "Null", "2001-12-14", "=", "12:30"],
        ["a", "http://x:80/y", "a:b", "a#b", "a #b", "a  b", "-a", "?a", ":a", "a,b", "a]", "é"],
        ["''", '""', "'it''s'", '"\\u00e9\\x41"', "'a: b'", '"a # b"', '"  spaced  "', "'#'"],
        ["[a, b]", "{a: 1}", "[]", "{ }", "[a, 'b']", "{a: 'x y', b: \"z\"}", "[0644, yes, ~]"],
    ),
    TAME_TEXT,
)
TAME_KEY = st.one_of(
    _spellings(
        ["a", "b", "name", "a:b", "http://x", "a b", "1", "0644", "yes", "~", "null", "1e3"],
        [".nan", "=", "'q'", '"d"', "'a: b'", '"x" ', "-k", "'it''s'", "k ", '"\\u00e9"'],
    ),
    TAME_TEXT,
)
TAME_HEADER = st.sampled_from(["|", ">", "|-", ">-", "|+", ">+", "| # c"])
BLOCK_LINE = st.sampled_from(["x", "y z", "", "", "   ", "  more", "#no comment", "a: b", "- c"])


def _draw(draw: st.DrawFn, wild: int, tame: Any, untamed: Any) -> Any:
    """One in `wild` draws (none when 0) from `untamed`, the others from `tame`."""
    return draw(untamed if wild and draw(st.integers(1, wild)) == 1 else tame)


@st.composite
def _collection(draw: st.DrawFn, indent: int, depth: int, wild: int) -> list[str]:
    lines: list[str] = []
    mapping = draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        head = " " * indent + (_draw(draw, wild, TAME_KEY, KEY) + ":" if mapping else "-")
        lines += draw(_value(head, indent, depth, not mapping, wild))
    return lines


@st.composite
def _value(draw: st.DrawFn, head: str, indent: int, depth: int, item: bool, wild: int) -> list[str]:
    """The lines of a key's or item's value, `head` being `key:` or `-` with its indent."""
    kinds = ["scalar", "scalar", "empty", "block"]
    if depth < 4:
        kinds += ["nested", "compact" if item else "indentless"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        tame = st.tuples(st.just(" "), TAME_SCALAR, st.sampled_from(["", " # c"]))
        untamed = st.tuples(st.sampled_from([" ", " ", "  ", ""]), SCALAR, AFTER)
        return [head + "".join(_draw(draw, wild, tame, untamed))]
    if kind == "empty":
        return [head + draw(st.sampled_from(["", " ", " # c"]))]
    if kind == "block":
        margin = " " * (indent + draw(st.integers(1, 3)))
        body = draw(st.lists(BLOCK_LINE, max_size=4))
        header = _draw(draw, wild, TAME_HEADER, HEADER)
        return [head + " " + header] + [margin + line if line else line for line in body]
    if kind == "indentless":
        return [head, *draw(_collection(indent, depth + 1, wild))]
    if kind == "compact":  # `- key: value` and `- - item`: the first line shares the `-`
        child = draw(_collection(indent + 2, depth + 1, wild))
        return [head + " " + child[0][indent + 2 :], *child[1:]]
    deeper = indent + draw(st.integers(1, 4))
    nested = draw(_collection(deeper, depth + 1, wild))
    return [head + draw(st.sampled_from(["", " # c"])), *nested]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Tame documents (what the fast reader reads), wild ones, and tame ones with one wild
    spelling or damaged line in several (what it must notice)."""
    wild = draw(st.sampled_from([0, 0, 6, 6, 1]))
    lines = draw(_collection(draw(st.sampled_from([0, 0, 0, 1, 2])), 0, wild))
    # Comments, empty lines, and damage: lines moved, dropped, repeated, or added.
    for _ in range(draw(st.integers(0, 3 if wild == 1 else 1))):
        where = draw(st.integers(0, len(lines)))
        changes = ["comment", "blank"] + (["indent", "dedent", "drop", "again"] if wild else [])
        change = draw(st.sampled_from(changes))
        if change == "comment":
            lines.insert(where, " " * draw(st.integers(0, 6)) + "# c")
        elif change == "blank":
            lines.insert(where, " " * draw(st.integers(0, 6)))
        elif where < len(lines):
            line = lines[where]
            if change == "indent":
                lines[where] = " " + line
            elif change == "dedent":
                lines[where] = line.removeprefix(" ")
            elif change == "drop":
                del lines[where]
            else:
                lines.insert(where, line)
    if wild and draw(st.integers(0, 9)) == 0:
        lines.insert(0, draw(st.sampled_from(["---", "--- a", "...", "%YAML 1.1", "a"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "\n", "", "\n\n", "\n  "]))


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_read_as_the_full_loader_reads_them(text: str) -> None:
    event("fast" if _agrees(text) else "unsure")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_what_pyyaml_writes_reads_back(value: Any) -> None:
    for style in (False, None):
        _agrees(yaml.safe_dump({"data": value}, default_flow_style=style, allow_unicode=True))


# Fixed documents -------------------------------------------------------------------------

TRICKY = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: tricky   # a comment
  annotations:
    "quoted key": 'it''s'
    'single': "\\u00e9\\x41\\"\\\\"
    a:b: http://x:80/y
    hash: a#b
    spaced: a  b
    empty: ''
    colon: ':'
data:
  mode: 0644
  octal: 0o644
  eight: 08
  hex: 0x1F
  under: 1_000
  go: 1e-05
  exp: 1.0e+3
  half: .5
  inf: -.inf
  nan: .NaN
  bools: [yes, No, ON, off, y, n]
  nulls: [~, null, Null, '']
  when: 2001-12-14
  value: =
  flow: {on: off, 1: 2, ~: x, 0644: a}
  none: {}
  nothing: []
  unset:
  literal: |
    line one
      more indented

    after an empty line
  kept: |+
    kept

  stripped: >-
    folded
    into one
      except this

    and this
  items:
  - plain
  - 'single'
  - - nested
    - list
  - key: value
    other: 2
  -
  - name: last
    list:
    - indentless
    - sequence
    after: it
  end: here
"""


def test_the_tricky_spellings_are_read_fast_and_as_the_full_loader_reads_them() -> None:
    assert _agrees(TRICKY)
    data = load_document(TRICKY)["data"]
    assert (data["mode"], data["octal"], data["eight"], data["go"]) == (420, "0o644", "08", 1e-05)
    assert data["flow"] == {"true": False, "1": 2, "null": "x", "420": "a"}


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: !!str 3\n",  # tags
        "a: b\n  c\n",  # a plain scalar over two lines
        "a: 'b\n  c'\n",  # a quoted one
        "a: [b,\n  c]\n",  # a flow collection over two lines
        "a: {b: [c]}\n",  # nested flow
        "? a\n: b\n",  # an explicit key
        "<<: {a: 1}\n",  # a merge key
        "a: |2\n   x\n",  # an indentation indicator
        "a:\tb\n",  # a tab
        "a: b\r\n",  # a carriage return
        "--- a: b\n",  # a document marker
        "a\n",  # a document that is a scalar
        # Near misses: in the fast reader's shape, but the full loader's errors.
        "a: b: c\n",
        "a: b:\n",
        "a: 1\n- b\n",
        "- a\nb: 1\n",
        "a: 'x' y\n",
        "a: 'x\n",
        'a: "x" y\n',
        "a #b: c\n",
        "a: [a:]\n",
        "a: [a:, b]\n",
        "a: [a, b] c\n",
        "a: {a: b:}\n",
        "a: {b}\n",
        "a: |\n    x\n  y\n",
        "a:\n  b: 1\n c: 2\n",
    ],
)
def test_what_the_fast_reader_leaves_to_the_full_loader(text: str) -> None:
    assert _fast(text) == UNSURE
    assert not _agrees(text)


def test_depth_up_to_the_bound_is_read_and_beyond_it_is_the_full_loaders_error() -> None:
    def nested(levels: int) -> str:
        return "".join(" " * level + "a:\n" for level in range(levels)) + " " * levels + "a: 1\n"

    def dashes(levels: int) -> str:
        return "- " * (levels + 1) + "a\n"  # sequences on one line, as deep as `nested`

    for deep in (nested, dashes):
        assert _agrees(deep(MAX_DEPTH - 1))  # the deepest collection at MAX_DEPTH - 1
        assert _outcome(load_document, deep(MAX_DEPTH)) is manifest.TooLarge
        assert not _agrees(deep(MAX_DEPTH))


def test_a_document_as_long_as_the_node_bound_is_left_to_the_full_loader() -> None:
    reader = fastyaml.Reader(manifest._plain_scalar, manifest._plain_key, MAX_DEPTH, 100)
    assert reader.load("a: " + "x" * 90 + "\n") == {"a": "x" * 90}
    with pytest.raises(fastyaml.Unsure):
        reader.load("a: " + "x" * 100 + "\n")


# Real documents --------------------------------------------------------------------------

FILES = sorted(
    path.relative_to(ROOT).as_posix()
    for folder in ("tests", "examples")
    for pattern in ("*.yaml", "*.yml")
    for path in (ROOT / folder).rglob(pattern)
)


@pytest.mark.parametrize("name", FILES)
def test_every_yaml_file_of_the_repository_reads_as_the_full_loader_reads_it(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8").replace("\r\n", "\n")
    for piece, _ in split_documents(text):
        _agrees(piece)


def test_most_documents_of_the_repository_are_read_fast() -> None:
    pieces = [
        piece
        for name in FILES
        for piece, _ in split_documents((ROOT / name).read_text(encoding="utf-8"))
    ]
    fast = [piece for piece in pieces if _fast(piece) != UNSURE]
    assert len(pieces) > 500 and len(fast) > 0.8 * len(pieces)


KUSTOMIZED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    prometheus.io/scrape: "true"
    note: 'a: b # not a comment'
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        args: ["--port=8080", "--flag", yes, 0644, 1e-05, ~]
        env:
        - {name: A, value: "on"}
        - name: B
          value: |
            multi
              line
        resources: {}
      volumes:
      - name: config
        configMap: {name: generated, defaultMode: 0644}
"""


def _kustomize(folder: Path) -> str:
    return subprocess.run(
        [*kustomize_command(), str(folder)], capture_output=True, text=True, check=True
    ).stdout


def test_kustomize_output_is_read_fast_and_as_the_full_loader_reads_it(tmp_path: Path) -> None:
    write(tmp_path / "deployment.yaml", KUSTOMIZED)
    write(
        tmp_path / "kustomization.yaml",
        "resources: [deployment.yaml]\nnamespace: shop\nlabels:\n- pairs: {app: web}\n"
        "configMapGenerator:\n- name: generated\n  literals: [mode=0644, flag=yes, empty=]\n"
        "  files: [script.sh]\n",
    )
    write(tmp_path / "script.sh", "#!/bin/sh\n\necho 'a: b' # c\n  indented\n\n")
    pieces = [piece for piece, _ in split_documents(_kustomize(tmp_path)) if piece.strip()]
    assert len(pieces) == 2
    assert all(_agrees(piece) for piece in pieces)
