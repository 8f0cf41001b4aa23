"""Where things stand in a release file's text, and changes spliced into it.

ruamel.yaml only finds where things stand (the start and end offset of each composed node);
a change is spliced into the original text. Comments, blank lines, quoting, flow or block
style, indentation, key order, CRLF line endings and a byte-order mark therefore stay exactly
as written: only the changed scalars (or the lines of an added or removed version) differ.
`EditRefused` is what every edit of a release file raises when the file or the request cannot
take it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from meshcanary.errors import InputError


class EditRefused(InputError):
    """An edit the release file, or the request, does not allow; `message` is for the person
    who asked, without the file, which the edit command locates."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        # The bare reason, as a caller quotes it in its own message; `text` is how it is shown.
        return self.message


def find(text: str, sought: str, start: int, what: str) -> int:
    """Where `sought` stands in `text` after `start` and blanks only: any other layout (an
    explicit `? key` without a value, say) is a refusal, never a write in the wrong place."""
    at = start
    while at < len(text) and text[at] in " \t":
        at += 1
    if not text.startswith(sought, at):
        raise EditRefused(f"cannot edit {what} in place: write it as a plain `key: value`")
    return at


# Tags and anchors written before a scalar (`!!int "70"`, `&w 70`): not part of the value.
_PROPERTIES = re.compile(r"(?:[!&][^\s,\[\]{}]*\s+)*")
# What stands between two pairs of a flow mapping.
PAIR_SEPARATOR = re.compile(r"[ \t]*,\s*")
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_KEY = "<<"


@dataclass(frozen=True)
class Doc:
    """One parsed release file: its text, its composed nodes and its constructed values."""

    text: str
    root: Any  # MappingNode
    data: Any  # CommentedMap
    shared: frozenset[int]  # ids of nodes reached more than once (anchors with aliases, merges)


@dataclass(frozen=True)
class Splice:
    """`text` in place of the original text from offset `start` to `end`."""

    start: int
    end: int
    text: str


def parse(text: str) -> Doc:
    """The release file's nodes and values; refused when it is not a YAML mapping."""
    if re.search("\r(?!\n)", text):
        # ruamel counts a lone CR as a line break; the line arithmetic here counts LF only.
        raise EditRefused(
            "the file has carriage returns without line feeds; save it with LF or CRLF line endings"
        )
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = YAML(typ="rt").compose(text)
        data = yaml.load(text)
    except YAMLError as exc:
        raise EditRefused(_yaml_problem(exc, text)) from None
    if not isinstance(root, MappingNode):
        raise EditRefused("a release file holds a mapping at the top level")
    seen: set[int] = set()
    shared: set[int] = set()
    collect(root, seen, shared)
    return Doc(text, root, data, frozenset(shared))


def _yaml_problem(exc: YAMLError, text: str) -> str:
    # The loader reports these with hints; an edit only sees them if the file changed since.
    from meshcanary.positions import yaml_problem

    found = yaml_problem(exc, "", text)
    where = found.location
    what = found.message.removeprefix("invalid YAML: ")
    return f"not valid YAML at line {where.line}, column {where.column}: {what}"


def collect(node: Any, seen: set[int], shared: set[int]) -> None:
    """Every node under `node` into `seen`; those reached a second time into `shared`."""
    if id(node) in seen:
        shared.add(id(node))
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            collect(key, seen, shared)
            collect(value, seen, shared)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            collect(item, seen, shared)


def lookup(mapping: Any, key: str) -> tuple[Any, Any] | None:
    """The key and value nodes of `key` in a mapping node (merge keys not followed)."""
    for key_node, value in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key and key != _MERGE_KEY:
            return key_node, value
    return None


def refuse_shared(doc: Doc, node: Any, what: str) -> None:
    """Refuse to change a node that an anchor, alias or merge key also reaches."""
    if id(node) in doc.shared:
        raise EditRefused(
            f"{what} is shared through a YAML anchor, alias or merge key; "
            "changing it here would change it everywhere it is used, so edit it by hand"
        )


def versions_node(doc: Doc) -> Any:
    """The `versions:` mapping node, refused when missing, empty or shared."""
    found = lookup(doc.root, "versions")
    if found is None or not isinstance(found[1], MappingNode) or not found[1].value:
        raise EditRefused("the release file has no versions")
    refuse_shared(doc, found[1], "versions")
    return found[1]


def version_names(versions: Any) -> list[str]:
    return [str(key.value) for key, _ in versions.value]


def version_node(doc: Doc, name: str) -> tuple[Any, Any]:
    """The key and mapping nodes of version `name`."""
    versions = versions_node(doc)
    for key, value in versions.value:
        if key.value == name:
            if not isinstance(value, MappingNode):
                raise EditRefused(
                    f'version "{name}" is not a mapping of image, replicas and weight'
                )
            refuse_shared(doc, value, f'version "{name}"')
            return key, value
    raise EditRefused(
        f'unknown version "{name}" (the release has {", ".join(version_names(versions))})'
    )


def start_of(node: Any) -> int:
    index: int = node.start_mark.index
    return index


def end_of(node: Any) -> int:
    index: int = node.end_mark.index
    return index


def is_empty(node: Any) -> bool:
    """A key with nothing after it: ruamel places that null at the next token, lines below."""
    return (
        isinstance(node, ScalarNode)
        and node.tag == _NULL_TAG
        and node.value == ""
        and node.style is None
    )


def _content_end(key: Any, value: Any) -> int:
    """Offset just after the last character written for `key: value` (comments excluded).

    A block collection's own end mark lies at the next token, possibly past comments and
    blank lines, so the end of its last member counts instead.
    """
    if is_empty(value):
        return end_of(key)
    if isinstance(value, MappingNode) and not value.flow_style and value.value:
        return _content_end(*value.value[-1])
    if isinstance(value, SequenceNode) and not value.flow_style and value.value:
        return _content_end(key, value.value[-1])
    return end_of(value)


def line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _next_line(text: str, index: int) -> int:
    """Start of the line after the one holding `index` (the end of the text on the last line)."""
    if index > 0 and text[index - 1] == "\n":
        return index  # a block scalar ends after its line break
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def line_break(text: str, index: int) -> str:
    """The line break that ends the line holding `index` (the file's usual one on the last)."""
    found = text.find("\n", index)
    if found < 0:
        return "\r\n" if "\r\n" in text else "\n"
    return "\r\n" if found > 0 and text[found - 1] == "\r" else "\n"


def key_indent(text: str, node: Any) -> str:
    """The spaces before a block key, which starts its line."""
    start = line_start(text, start_of(node))
    indent = text[start : start_of(node)]
    if indent.strip(" "):
        raise EditRefused(
            f'"{node.value}" does not start its line; meshcanary edits block mappings '
            "written one key per line"
        )
    return indent


def entry_end(text: str, key: Any, value: Any) -> int:
    """Start of the line after a block mapping entry, past comment lines indented under it."""
    column = len(key_indent(text, key))
    position = _next_line(text, _content_end(key, value))
    while position < len(text):
        found = text.find("\n", position)
        line_end = len(text) if found < 0 else found + 1
        line = text[position:line_end].rstrip("\r\n")
        body = line.lstrip(" ")
        if not body.startswith("#") or len(line) - len(body) <= column:
            break
        position = line_end
    return position


def spliced(text: str, splices: list[Splice]) -> str:
    """`text` with every splice applied; they must not overlap."""
    result = text
    limit = len(text)
    for splice in sorted(splices, key=lambda s: (s.start, s.end), reverse=True):
        if splice.end > limit:
            raise RuntimeError("overlapping edits")  # a bug here, not bad input
        result = result[: splice.start] + splice.text + result[splice.end :]
        limit = splice.start
    return result


# Writing values ---------------------------------------------------------------------------


def _plain_reads_back(value: str, flow: bool) -> bool:
    """Whether `value` written unquoted reads back as the same string where it goes."""
    probe = f"{{k: {value}, z: 0}}\n" if flow else f"k: {value}\n"
    try:
        loaded = YAML(typ="rt").load(probe)
    except YAMLError:
        return False
    expected = ["k", "z"] if flow else ["k"]
    return (
        isinstance(loaded, dict)
        and list(loaded) == expected
        and isinstance(loaded["k"], str)
        and loaded["k"] == value
    )


def _double_quoted(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def string_text(value: str, like: Any | None, flow: bool) -> str:
    """`value` written as a scalar in the quoting style of `like` (plain where it can be)."""
    style = like.style if isinstance(like, ScalarNode) else None
    if style == '"':
        return _double_quoted(value)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value if _plain_reads_back(value, flow) else _double_quoted(value)


def int_text(value: int, like: Any | None) -> str:
    # A quoted number is a string (the schema refuses it): write the integer plain, unless a
    # `!!int` tag makes the quoted text an integer, where the quotes can stay.
    if isinstance(like, ScalarNode) and like.style in ('"', "'") and like.tag == _INT_TAG:
        return f"{like.style}{value}{like.style}"
    return str(value)


def scalar_span(text: str, node: Any, what: str) -> tuple[int, int]:
    if not isinstance(node, ScalarNode):
        raise EditRefused(f"{what} is not a single value")
    if node.style in ("|", ">"):
        raise EditRefused(f"{what} is a block scalar ({node.style}); write it on one line first")
    start, end = start_of(node), end_of(node)
    found = _PROPERTIES.match(text, start, end)
    return (found.end() if found else start), end


def flow_separator(text: str, mapping: Any) -> str:
    """What stands between two pairs of a flow mapping (`, ` unless the file says otherwise)."""
    if len(mapping.value) >= 2:
        gap = text[end_of(mapping.value[0][1]) : start_of(mapping.value[1][0])]
        if PAIR_SEPARATOR.fullmatch(gap) and "#" not in gap:
            return gap
    return ", "


def flow_mapping(text: str, like: Any | None, fields: list[tuple[str, str]]) -> str:
    """`{image: …, replicas: …, weight: …}` spaced like the flow mapping `like`."""
    opening = closing = ""
    separator = ", "
    if isinstance(like, MappingNode) and like.flow_style and like.value:
        brace = find(text, "{", start_of(like), "the flow mapping")
        gap = text[brace + 1 : start_of(like.value[0][0])]
        opening = gap if gap.strip(" ") == "" else ""
        gap = text[end_of(like.value[-1][1]) : end_of(like) - 1]
        closing = gap if gap.strip(" ") == "" else ""
        separator = flow_separator(text, like)
    body = separator.join(f"{name}: {value}" for name, value in fields)
    return "{" + opening + body + closing + "}"
