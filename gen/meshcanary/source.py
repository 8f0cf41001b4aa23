"""Read one YAML document with the position of every key and value.

Release files, environment files and bases go through here, so every message about them can
point at `file:line:col`. Parse failures become `InputError`s carrying one located problem.
"""

from __future__ import annotations

import json
import os
import re
import stat
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcanary.errors import InputError
from meshcanary.positions import (
    JsonPath,
    at_mark,
    commented_position,
    line_column,
    node_position,
    stray_space,
    yaml_problem,
)
from meshcanary.problem import Location, Problem

if TYPE_CHECKING:
    # ruamel is imported where a file needs it (one the fast path cannot read, a position
    # the fast path did not keep, an edit): reading a good file, or `lint`, never does.
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

# A release file is a few kilobytes; a limit keeps alias bombs and huge files from stalling a run.
MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
# A release nests a handful of levels; without a limit a deeply nested file exhausts Python's
# recursion (a traceback, not a message), in ruamel's composer and in everything after it.
MAX_DEPTH = 64


class SourceDoc:
    """One parsed YAML mapping and where each of its parts stands in the file.

    `data` is the plain value. `root` is ruamel's round-trip tree, with the positions and
    comments; a file read on the fast path has it built on first use, which is only when
    something about the file is reported or edited.
    """

    def __init__(
        self,
        display: str,
        root: CommentedMap | None,
        data: dict[str, Any],
        text: str = "",
        nodes: Any = None,
    ) -> None:
        self.display = display
        self.data = data
        self._root = root
        self._text = text
        self._nodes = nodes  # libyaml's node tree, on the fast path

    def _node_tree(self) -> Any:
        """libyaml's node tree of a file read on the fast path, composed again when a
        position in it is first asked for: a run reads thousands of release files and
        reports on few, and the trees would be most of what it holds of them."""
        if self._nodes is None:
            _, loader_class = _fast_loader()
            loader = loader_class(self._text)
            try:
                self._nodes = loader.get_single_node()
            finally:
                loader.dispose()
        return self._nodes

    @property
    def root(self) -> CommentedMap:
        if self._root is None:
            self._root = _ruamel_mapping(self._text, self.display)
        return self._root

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        """Position of the value at `path` (or of its key, with `key=True`).

        Falls back to the nearest enclosing node that has a position, so a message about a
        missing field points at the mapping that should hold it.
        """
        if self._root is None:
            # The same places ruamel gives, which puts every null at its key.
            position = node_position(self._node_tree(), path, key=key, nulls_at_key=True)
            return Location(self.display, *position)
        return Location(self.display, *commented_position(self.root, path, key=key))


_KINDS = {"int": "an integer", "float": "a number", "bool": "a boolean", "timestamp": "a date"}


@cache
def _constructor() -> type:
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor

    class _Constructor(RoundTripConstructor):
        """ruamel's round-trip constructor, with a position on every scalar it cannot read.

        `!!int thirty`, an integer of more than 4300 digits (Python refuses to convert it), a
        date such as 2024-13-45, `!!bool maybe` or the plain scalar `-_` (which ruamel takes
        for an integer) raise plain ValueErrors, KeyErrors or IndexErrors without a mark.
        """

        def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
            try:
                return super().construct_non_recursive_object(node, tag)
            except (ValueError, KeyError, TypeError, OverflowError, IndexError) as exc:
                value = str(node.value) if isinstance(node.value, str) else ""
                shown = (
                    json.dumps(value)
                    if len(value) <= 40
                    else f"{value[:20]}... ({len(value)} characters)"
                )
                tag = str(node.tag).rsplit(":", 1)[-1]
                reason = ""
                if tag == "timestamp":
                    reason = f": {exc}"  # "month must be in 1..12"
                elif "digits" in str(exc):
                    reason = ": integers are limited to 4300 digits"
                kind = _KINDS.get(tag, f"a {node.tag}")
                raise ConstructorError(
                    None, None, f"cannot read {shown} as {kind}{reason}", node.start_mark
                ) from None

    return _Constructor


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Constructor = _constructor()
    yaml.max_depth = MAX_DEPTH
    return yaml


def _located(display: str, line: int, column: int, message: str, hint: str = "") -> InputError:
    return InputError([Problem(Location(display, line, column), message, hint)])


def decode(raw: bytes, display: str) -> str:
    """`raw` as UTF-8, or an InputError at the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace")
        raise _located(
            display,
            *line_column(before, len(before)),
            f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
            "save the file as UTF-8",
        ) from None


def read_text(path: Path, display: str) -> str:
    """The file's text, or an InputError that says why it cannot be read."""
    try:
        info = path.stat()
        # Only regular files, and never more than the limit: reading a FIFO waits forever for
        # a writer, a link to /dev/zero never ends, and a 50 MB file need not be read to refuse.
        if stat.S_ISDIR(info.st_mode):
            raise _located(display, 1, 1, "is a directory, not a YAML file")
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            raise _located(display, 1, 1, f"is {kind}, not a YAML file")
        if info.st_size > MAX_BYTES:
            raise _located(display, 1, 1, f"file is {info.st_size} bytes; the limit is {MAX_BYTES}")
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        dangling = os.path.islink(path)
        raise _located(
            display, 1, 1, "is a symbolic link to nothing" if dangling else "no such file"
        ) from None
    except OSError as exc:
        raise _located(display, 1, 1, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:  # it grew after stat
        raise _located(display, 1, 1, f"file is over {MAX_BYTES} bytes, the limit")
    text = decode(raw, display)
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _check_characters(text: str, display: str) -> None:
    bom = text.find("\ufeff")
    if bom >= 0:
        # The one at the start is gone already; one further in (files joined together) would
        # otherwise end up, invisible, inside a key or a value.
        raise _located(
            display,
            *line_column(text, bom),
            "byte order mark (U+FEFF) inside the file",
            "files joined together often carry one; remove it",
        )
    nbsp = stray_space(text, display)
    if nbsp is not None:
        raise InputError([nbsp])


def _yaml_error(exc: YAMLError, display: str, text: str) -> InputError:
    from ruamel.yaml.composer import MaxDepthExceededError

    if isinstance(exc, MaxDepthExceededError) and exc.problem_mark is not None:
        return _located(
            display,
            *at_mark(exc.problem_mark),
            f"nested more than {MAX_DEPTH} levels deep",
            "release and environment files need only a few levels; look for unclosed brackets",
        )
    return InputError([yaml_problem(exc, display, text)])


TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
}


def type_name(value: object) -> str:
    """How a message names the type of a parsed value: "a string", "a mapping", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def to_plain(node: Any, display: str) -> Any:
    """Plain dicts, lists and scalars (what JSON Schema validates), with a size guard."""
    from ruamel.yaml.comments import CommentedMap, TaggedScalar

    count = 0

    def at(mapping: Any, key: Any, outer: tuple[int, int]) -> tuple[int, int]:
        # Positions of the top-level values: an alias bomb is reported at the one that explodes.
        if mapping is not node or not isinstance(mapping, CommentedMap):
            return outer
        try:
            line, column = mapping.lc.value(key)
        except (KeyError, TypeError):
            return outer
        return line + 1, column + 1

    def walk(value: Any, where: tuple[int, int] = (1, 1)) -> Any:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise _located(display, *where, f"more than {MAX_NODES} YAML nodes (alias bomb?)")
        if isinstance(value, dict):
            return {
                str(k) if not isinstance(k, str) else k: walk(v, at(value, k, where))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v, where) for v in value]
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, TaggedScalar):
            # YAML 1.1's `=` ("value") and other tagged scalars: read as the text they are.
            return str(value.value)
        return value

    return walk(node)


def _documents(text: str, display: str) -> Iterator[Any]:
    from ruamel.yaml.error import ReusedAnchorWarning, YAMLError

    try:
        with warnings.catch_warnings():
            # YAML lets an anchor be redefined; ruamel's warning would be an unlocated stderr line.
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            yield from _yaml().load_all(text)
    except YAMLError as exc:
        raise _yaml_error(exc, display, text) from None


def load_mapping(path: Path, display: str) -> SourceDoc:
    """Parse a file that must hold exactly one YAML mapping."""
    return parse_mapping(read_text(path, display), display)


def parse_mapping(text: str, display: str) -> SourceDoc:
    """Parse text that must hold exactly one YAML mapping."""
    _check_characters(text, display)
    fast = _fast_mapping(text)
    if fast is not None:
        return SourceDoc(display, None, fast[0], text)
    root = _ruamel_mapping(text, display)
    return SourceDoc(display, root, to_plain(root, display))


def _ruamel_mapping(text: str, display: str) -> CommentedMap:
    docs = [doc for doc in _documents(text, display) if doc is not None]
    if not docs:
        raise _located(display, 1, 1, "file is empty", "see the README for the file format")
    if len(docs) > 1:
        # Scalars carry no position; the composed nodes do.
        nodes = [n for n in _yaml().compose_all(text) if n is not None]
        line = nodes[1].start_mark.line + 1 if len(nodes) > 1 else 1
        raise _located(
            display,
            line,
            1,
            "expected one YAML document, found several",
            "a release file describes one service; remove the --- and what follows",
        )
    root = docs[0]
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(root, CommentedMap):
        raise _located(
            display, 1, 1, f"expected a mapping at the top level, found {type_name(root)}"
        )
    return root


# The fast path: libyaml (PyYAML's C parser) composes the document and ruamel's YAML 1.2
# resolver rules type each scalar, so a plain file gives exactly the value ruamel would, about
# ten times faster. Anything the fast path does not handle the same way for certain (anchors,
# tags beyond plain strings, integers and booleans, duplicate or non-string keys, directives,
# deep nesting, any error) goes to ruamel, which also reports every problem with its place.
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_SIMPLE_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]+")


@cache
def _implicit() -> tuple[tuple[str, re.Pattern[str], frozenset[str]], ...]:
    """ruamel's implicit resolvers for YAML 1.2 (`implicit_resolvers` in ruamel.yaml.resolver),
    in its order, each tried only on a plain scalar that starts with a character it lists, as
    ruamel tries them.

    Copied rather than imported: importing ruamel costs a hook about 20 ms, and
    tests/unit/test_source.py holds the fast path to ruamel's values. Compiled on first use:
    `lint` imports this module and never reads a release file.
    """
    return (
        (
            "bool",
            re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
            frozenset("tTfF"),
        ),
        (
            "float",
            re.compile(
                r"""^(?:
                 [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""",
                re.X,
            ),
            frozenset("-+0123456789."),
        ),
        (
            "int",
            re.compile(
                r"""^(?:[-+]?0b[0-1_]+
                |[-+]?0o?[0-7_]+
                |[-+]?[0-9_]+
                |[-+]?0x[0-9a-fA-F_]+)$""",
                re.X,
            ),
            frozenset("-+0123456789"),
        ),
        ("merge", re.compile(r"^(?:<<)$"), frozenset("<")),
        ("null", re.compile(r"^(?: ~ |null|Null|NULL | )$", re.X), frozenset(("~", "n", "N", ""))),
        (
            "timestamp",
            re.compile(
                r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                (?:[Tt]|[ \t]+)[0-9][0-9]?
                :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
                re.X,
            ),
            frozenset("0123456789"),
        ),
        ("value", re.compile(r"^(?:=)$"), frozenset("=")),
    )


_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_BOOLEANS["FALSE"] = False
_T = "tag:yaml.org,2002:"


class _NotFast(Exception):
    """The fast path cannot promise ruamel's answer for this document."""


def _scalar_tag(value: str, plain: bool) -> str:
    """The tag ruamel gives a scalar without one: `plain` when it is not quoted."""
    if plain:
        first = value[:1]
        for name, pattern, starts in _implicit():
            if first in starts and pattern.match(value):
                return f"{_T}{name}"
    return f"{_T}str"


@cache
def _fast_loader() -> tuple[Any, Any]:
    import yaml

    class Loader(yaml.CSafeLoader):
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode:
                return _scalar_tag(value, bool(implicit[0]))
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    return yaml, Loader


def _fast_mapping(text: str) -> tuple[dict[str, Any], Any] | None:
    if "%" in text and re.search(r"^%", text, re.MULTILINE):
        return None  # a %YAML directive changes how scalars read
    if "\t" in text:
        return None  # libyaml takes a tab where ruamel (and this project) refuse one
    yaml, loader_class = _fast_loader()
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return None
        value = _fast_value(yaml, node, 0, set())
    except (yaml.YAMLError, _NotFast, RecursionError):
        return None
    finally:
        loader.dispose()
    return (value, node) if isinstance(value, dict) else None


def _fast_value(yaml: Any, node: Any, depth: int, seen: set[int]) -> Any:
    if id(node) in seen or depth > MAX_DEPTH // 2:
        raise _NotFast  # an alias, or deeper than ruamel allows
    seen.add(id(node))
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        value = node.value
        if tag == f"{_T}str":
            return value
        if tag == f"{_T}int" and len(value) < 19 and _DECIMAL.fullmatch(value):
            return int(value)
        if tag == f"{_T}float" and _SIMPLE_FLOAT.fullmatch(value):
            return float(value)  # digits, a point, digits: every YAML reads it alike
        if tag == f"{_T}bool" and value in _BOOLEANS:
            return _BOOLEANS[value]
        if tag == f"{_T}null" and value in ("", "~", "null", "Null", "NULL"):
            return None
        raise _NotFast
    if isinstance(node, yaml.SequenceNode) and tag == f"{_T}seq":
        return [_fast_value(yaml, item, depth + 1, seen) for item in node.value]
    if isinstance(node, yaml.MappingNode) and tag == f"{_T}map":
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _fast_value(yaml, key_node, depth + 1, seen)
            if not isinstance(key, str) or key in mapping or key == "<<":
                raise _NotFast
            mapping[key] = _fast_value(yaml, value_node, depth + 1, seen)
        return mapping
    raise _NotFast
