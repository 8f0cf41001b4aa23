"""One wording and one place for a YAML error, whichever library met it.

Release and environment files are read with ruamel, manifests and bases with libyaml: the
same mistake gets the same message and hint from both, at the place worked out by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from meshcanary.manifest import Loader
from meshcanary.names import is_dns_label
from meshcanary.positions import line_column, node_position, yaml_problem
from meshcanary.problem import Problem


def _ruamel(text: str) -> Problem:
    reader = YAML(typ="rt")
    reader.allow_duplicate_keys = False
    try:
        list(reader.load_all(text))
    except YAMLError as exc:
        return yaml_problem(exc, "f.yaml", text)
    raise AssertionError("ruamel read it")


def _libyaml(text: str, first_line: int = 1) -> Problem:
    try:
        list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as exc:
        return yaml_problem(exc, "f.yaml", text, first_line)
    raise AssertionError("libyaml read it")


BOTH = [_ruamel, _libyaml]


def _shown(problem: Problem) -> tuple[int, int, str, str]:
    where = problem.location
    return where.line, where.column, problem.message, problem.hint


@pytest.mark.parametrize("read", BOTH)
def test_a_tab_in_the_indentation(read: Any) -> None:
    assert _shown(read("a:\n\tb: 1\n")) == (
        2,
        1,
        "tab character where YAML needs a space",
        "YAML indents with spaces only; replace the tab",
    )


@pytest.mark.parametrize("read", BOTH)
def test_a_tab_after_a_dash(read: Any) -> None:
    # "-" is one character: the tab is at column 2, a separator, not indentation.
    assert _shown(read("- a\n-\tb\n")) == (
        2,
        2,
        "tab character where YAML needs a space",
        "YAML indents and separates with spaces only; replace the tab",
    )


@pytest.mark.parametrize("read", BOTH)
@pytest.mark.parametrize(
    ("character", "kind"), [("\x07", "control character"), ("\ufffe", "character")]
)
def test_a_character_yaml_refuses(read: Any, character: str, kind: str) -> None:
    # "b: éé" is 5 characters (7 bytes of UTF-8): the refused one is at column 6 of line 2.
    code = f"U+{ord(character):04X}"
    assert _shown(read(f"a: 1\nb: éé{character}\n")) == (
        2,
        6,
        f"invalid YAML: {kind} {code} is not allowed",
        "remove it; write it as an escape such as \\t inside double quotes if it is meant",
    )


@pytest.mark.parametrize("read", BOTH)
def test_a_bracket_never_closed(read: Any) -> None:
    # The next key (line 2) is no deeper than the [ (line 1, column 8): the [ is reported.
    problem = read("hosts: [a, b\nx: 1\n")
    assert _shown(problem)[:2] == (1, 8)
    assert problem.message.startswith("this [ is never closed (")
    assert problem.hint == "add the missing ], or a comma between items"


@pytest.mark.parametrize("read", BOTH)
def test_a_missing_comma_inside_a_flow_mapping_stays_where_it_is(read: Any) -> None:
    # Line 3 is deeper than the { of line 1: still inside it, so not "never closed".
    problem = read('{\n  "a": 1\n  "b": 2\n}\n')
    assert _shown(problem)[:2] == (3, 6)
    assert problem.message.startswith("invalid YAML: ")
    assert problem.message.endswith("(while parsing a flow mapping)")


def test_a_duplicate_key_names_the_first() -> None:
    assert _shown(_ruamel("a: 1\nb: 2\na: 3\n")) == (
        3,
        1,
        'duplicate key "a"',
        "the first is at line 1; each key may appear once",
    )


def test_a_document_further_down_a_file_counts_from_its_first_line() -> None:
    # The second document starts on line 4; its ':' error is on its line 1, column 5.
    assert _shown(_libyaml("a: b: c\n", first_line=4))[:2] == (4, 5)


def test_line_column_counts_characters_from_one() -> None:
    assert line_column("ab\ncdé\nf", 0) == (1, 1)
    assert line_column("ab\ncdé\nf", 5) == (2, 3)
    assert line_column("ab\ncdé\nf", 7) == (3, 1)


def test_an_empty_value_is_placed_at_its_key() -> None:
    root = yaml.compose("a:\nb: ~\nc:\n  - x\n", Loader=Loader)
    assert node_position(root, ["a"]) == (1, 1)
    assert node_position(root, ["b"]) == (2, 4)  # a written null is a value with a place
    assert node_position(root, ["b"], nulls_at_key=True) == (2, 1)
    assert node_position(root, ["c", 0]) == (4, 5)
    assert node_position(root, ["c", 0, "missing"]) == (4, 5)
    assert node_position(None, ["a"], first_line=7) == (7, 1)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("a", True),
        ("micro-api", True),
        ("v2", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("", False),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a.b", False),
        ("a_b", False),
        ("a\n", False),
    ],
)
def test_dns_labels(text: str, label: bool) -> None:
    assert is_dns_label(text) is label
