"""A line-based reader for the block-style YAML that kustomize prints and people write.

It reads block mappings and sequences of one-line scalars (plain, quoted), literal and folded
block scalars, and flow collections of scalars on one line, and gives up (`Unsure`) on
everything else: anchors, aliases, tags, nested flow, multi-line plain and quoted scalars,
tabs, complex keys, directives and document markers. The caller then reads the text with the
full loader, which gives its exact value or error; so a text this module reads must have the
value the full loader gives, and any doubt is an `Unsure`.

What a plain scalar means (YAML 1.1 resolution) is the caller's: `Reader` is given it, and
remembers the answers, since manifests repeat the same keys and values thousands of times.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class Unsure(Exception):
    """The text is outside the subset read here: the full loader reads it."""


# Characters the full loader refuses or reads specially: tabs, carriage returns and other
# control characters, NEL, the Unicode line and paragraph separators, lone surrogates, the
# byte order mark and the non-characters U+FFFE and U+FFFF. A text with any of them goes to
# the full loader.
_AWKWARD = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# A plain scalar cannot start with these; `-`, `?` and `:` only when followed by a space.
_INDICATORS = frozenset(",[]{}#&*!|>'\"%@`")
_SINGLE = re.compile(r"'(?:[^']|'')*'")
_DOUBLE = re.compile(r'"(?:[^"\\]|\\(?:[0abtnvfre "/\\N_LP]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}))*"')
_ESCAPE = re.compile(r"\\(?:([0abtnvfre \"/\\N_LP])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4}))")
_ESCAPED = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
# `|` or `>`, a chomping indicator, a comment; an indentation indicator is left to the full
# loader, whose rules for it depend on the enclosing collection.
_BLOCK_HEADER = re.compile(r"([|>])([-+]?)(?: +#.*| *)")
# libyaml looks at most 1024 characters ahead for the `:` of a key.
_LONGEST_KEY = 1000
# Lines, keys and scalars remembered, at most; a memory is emptied when full, so that it
# follows what is being read.
_REMEMBERED = 50_000
# Document markers and directives at the start of a line: split_documents' work.
_MARKER = re.compile(r"^(?:---|\.\.\.|%)", re.MULTILINE)
_MISSING = object()


class _Later:
    """A value that is built where its line is placed: none yet (the value is on the lines
    below), a block scalar (its text is on them), or a flow collection (a new one each
    time, as each is a separate object)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_EMPTY = _Later("")
# A line read on its own: its column; where the items of its `- `s start (`- - a: 1` at
# column 0 has items at 2 and 4); its key (None for an item); and the value after the key or
# the last `- `. What a line says does not depend on the lines around it, and manifests
# repeat whole lines, so lines are remembered.
_Line = tuple[int, tuple[int, ...], str | None, Any]
_BLANK: _Line = (-1, (), None, None)


class Reader:
    """Reads documents of the subset; `plain` gives a plain scalar's value and `key` its JSON
    key text (both may raise Unsure). A document nested `max_depth` deep or `max_nodes`
    characters long is left to the full loader, which enforces those bounds."""

    def __init__(
        self,
        plain: Callable[[str], Any],
        key: Callable[[str], str],
        max_depth: int,
        max_nodes: int,
    ) -> None:
        self._plain = plain
        self._key = key
        self._max_depth = max_depth
        # Every value of the subset takes at least one character of the text, so a text
        # shorter than this cannot expand beyond the bound.
        self._max_chars = max_nodes
        self._lines: dict[str, _Line] = {}
        self._values: dict[str, Any] = {}  # text after `key: ` or `- ` -> its scalar
        self._keys: dict[str, str] = {}  # text before `: ` -> the key

    def load(self, text: str) -> Any:
        """The value of one document (None when it holds none); Unsure outside the subset."""
        if len(text) >= self._max_chars or _AWKWARD.search(text) or _MARKER.search(text):
            raise Unsure
        lines = text.split("\n")
        if lines[-1] and not lines[-1].strip(" "):
            raise Unsure  # trailing spaces without a line break: a corner of block scalars
        count = len(lines)
        seen = self._lines
        max_depth = self._max_depth
        root: Any = _MISSING
        node: Any = None  # the innermost open collection
        column = -1  # its column
        around: list[tuple[Any, int]] = []  # the collections it is in, and their columns
        # A key or item whose value is on the lines below, if any: its collection, key
        # (None for an item) and column.
        waiting: Any = None
        waiting_key: str | None = None
        waiting_column = 0
        index = 0
        while index < count:
            line = lines[index]
            index += 1
            entry = seen.get(line)
            if entry is None:
                entry = self._read_line(line)
            if entry is _BLANK:
                continue
            at, items, key, value = entry
            child: Any
            # The next key of the same mapping, or item of the same sequence, goes straight
            # in; any other line changes which collection it is in.
            if waiting is not None or at != column or (type(node) is list) != bool(items):
                if waiting is not None and (
                    at > waiting_column
                    or (at == waiting_column and items and type(waiting) is dict)
                ):
                    # The waiting value: a collection starting here (a sequence at its
                    # key's own column is YAML's indentless sequence).
                    child = [] if items else {}
                    _place(waiting, waiting_key, child)
                    waiting = None
                    around.append((node, column))
                    node, column = child, at
                    if len(around) >= max_depth:
                        raise Unsure
                else:
                    if waiting is not None:
                        _place(waiting, waiting_key, None)
                        waiting = None
                    if root is _MISSING:
                        root = node = [] if items else {}
                        column = at
                    # Close the collections the line is outside of; a sequence at its
                    # mapping's column ends at the mapping's next key.
                    while column > at or (column == at and not items and type(node) is list):
                        if not around:
                            raise Unsure  # a second value at the top
                        node, column = around.pop()
                    if column != at:
                        raise Unsure  # a continuation line
            if items:
                if type(node) is not list:
                    raise Unsure  # an item among a mapping's keys
                # `- - a`, `- key: value`: a `- ` opens a collection on the same line.
                for item_at in items[:-1]:
                    child = []
                    node.append(child)
                    around.append((node, column))
                    node, column = child, item_at
                    if len(around) >= max_depth:
                        raise Unsure
                if key is None:
                    if type(value) is _Later:
                        if value is _EMPTY:
                            waiting, waiting_key, waiting_column = node, None, column
                            continue
                        value, index = self._later(value, lines, index, column)
                    node.append(value)
                    continue
                child = {}
                node.append(child)
                around.append((node, column))
                node, column = child, items[-1]
                if len(around) >= max_depth:
                    raise Unsure
            elif type(node) is not dict:
                raise Unsure  # a key among a sequence's items
            if type(value) is _Later:
                if value is _EMPTY:
                    waiting, waiting_key, waiting_column = node, key, column
                    continue
                value, index = self._later(value, lines, index, column)
            node[key] = value
        if waiting is not None:
            _place(waiting, waiting_key, None)
        return None if root is _MISSING else root

    def _read_line(self, line: str) -> _Line:
        rest = line.lstrip(" ")
        if not rest or rest[0] == "#":
            entry = _BLANK
        else:
            entry = self._parse_line(len(line) - len(rest), rest)
        _remember(self._lines, line, entry)
        return entry

    def _parse_line(self, at: int, rest: str) -> _Line:
        """What a line says, from its first character (`rest`, at column `at`) on."""
        items: list[int] = []
        position = at
        while rest[0] == "-" and (len(rest) == 1 or rest[1] == " "):
            item = rest[1:].lstrip(" ")
            position += len(rest) - len(item)
            items.append(position)
            if not item or item[0] == "#":
                return at, tuple(items), None, _EMPTY
            rest = item
        if items and not _is_key(rest):
            return at, tuple(items), None, self._scalar(rest)
        key, after = self._key_of(rest)
        return at, tuple(items), key, self._scalar(after) if after else _EMPTY

    def _key_of(self, rest: str) -> tuple[str, str]:
        """A line's key, and the text after its `: `."""
        if rest[0] in "\"'":
            return self._quoted_key(rest)
        colon = rest.find(": ")
        if colon < 0:
            if rest[-1] != ":":
                raise Unsure  # not a key: a continuation or a stray scalar
            key_text, after = rest[:-1], ""
        else:
            key_text, after = rest[:colon], rest[colon + 2 :]
        key = self._keys.get(key_text)
        if key is None:
            key = self._key(_plain_key(key_text))
            _remember(self._keys, key_text, key)
        return key, after

    def _scalar(self, raw: str) -> Any:
        """What is written after `key: ` or `- `: a one-line scalar, or what is built later."""
        value = self._values.get(raw, _MISSING)
        if value is not _MISSING:
            return value
        text = raw.lstrip(" ")
        if not text or text[0] == "#":
            return _EMPTY
        first = text[0]
        if first in "|>":
            if _BLOCK_HEADER.fullmatch(text) is None:
                raise Unsure
            return _Later(text)
        if first in "[{":
            self._flow(text)  # refused now, if it is refused
            return _Later(text)
        if first in "\"'":
            value, after = _quoted(text)
            _end_of_line(after)
        else:
            value = self._plain(_plain_text(text))
        _remember(self._values, raw, value)
        return value

    def _later(self, later: _Later, lines: list[str], index: int, column: int) -> tuple[Any, int]:
        """The flow collection or block scalar of a line before `lines[index]`, in a
        collection at `column`, and the index of the line after it."""
        text = later.text
        if text[0] in "[{":
            return self._flow(text), index
        header = _BLOCK_HEADER.fullmatch(text)
        if header is None:
            raise Unsure
        style, chomping = header.groups()
        return _block(lines, index, column, style == ">", chomping)

    def _quoted_key(self, text: str) -> tuple[str, str]:
        """A quoted key and the text after its `:`."""
        key, after = _quoted(text)
        after = after.lstrip(" ")
        if not after.startswith(":") or after[1:2] not in ("", " "):
            raise Unsure  # a quoted scalar where a key is due, or a flow-style `"a":b`
        return key, after[1:]

    def _flow(self, text: str) -> list[Any] | dict[str, Any]:
        """A flow sequence or mapping of scalars on one line, like `[a, 'b']` or `{a: 1}`."""
        end = text.find("]" if text[0] == "[" else "}")
        if end < 0:
            raise Unsure  # it goes on over more lines
        _end_of_line(text[end + 1 :])
        inner = text[1:end]
        if any(mark in inner for mark in "[]{}#?"):
            raise Unsure  # nested flow collections, comments, explicit keys
        parts = inner.split(",") if inner.strip(" ") else []
        if text[0] == "[":
            return [self._flow_scalar(part) for part in parts]
        mapping: dict[str, Any] = {}
        for part in parts:
            key_text, colon, value_text = part.partition(": ")
            key_text = key_text.strip(" ")
            if not colon or not key_text or key_text[0] in "\"'":
                raise Unsure  # `{a}`, `{a:b}`, quoted keys
            mapping[self._key(_flow_plain(key_text))] = self._flow_scalar(value_text)
        return mapping

    def _flow_scalar(self, part: str) -> Any:
        text = part.strip(" ")
        if not text:
            raise Unsure  # `[a,,b]`, `[a,]`, `{a: }`
        if text[0] in "\"'":
            value, after = _quoted(text)
            if after:
                raise Unsure  # a quoted scalar with a comma or more after it
            return value
        return self._plain(_flow_plain(text))


def _place(collection: Any, key: str | None, value: Any) -> None:
    if key is None:
        collection.append(value)
    else:
        collection[key] = value


def _remember(memory: dict[str, Any], text: str, value: Any) -> None:
    if len(memory) >= _REMEMBERED:
        memory.clear()
    memory[text] = value


def _is_key(text: str) -> bool:
    """Whether an item's text (`- text`) starts a mapping; Unsure when quoting hides it."""
    if text[0] in "[{":
        return False  # a flow collection (one used as a key is refused when it is read)
    if text[0] in "\"'":
        _, after = _quoted(text)
        return after.lstrip(" ").startswith(":")
    return ": " in text or text.endswith(":")


def _plain_key(raw: str) -> str:
    """A one-line plain key, before its `:`."""
    if " #" in raw or len(raw) > _LONGEST_KEY:
        raise Unsure  # `a #b: c` is `a` and a comment: no key
    return _plain_text(raw)


def _plain_text(raw: str) -> str:
    """A one-line plain scalar without its comment and surrounding spaces."""
    cut = raw.find(" #")
    text = (raw if cut < 0 else raw[:cut]).strip(" ")
    if not text:
        raise Unsure
    first = text[0]
    if first in _INDICATORS or (first in "-?:" and (len(text) == 1 or text[1] == " ")):
        raise Unsure  # an anchor, alias, tag, indicator, or an error the full loader reports
    if ": " in text or text[-1] == ":":
        raise Unsure  # a second `key:` on the line: the full loader's error
    return text


def _flow_plain(text: str) -> str:
    """A plain scalar in a flow collection, where `:` and `?` have other meanings."""
    if not text or text[0] in _INDICATORS or text[0] in "?:" or ":" in text:
        raise Unsure
    if text[0] == "-" and (len(text) == 1 or text[1] == " "):
        raise Unsure
    return text


def _quoted(text: str) -> tuple[str, str]:
    """A single- or double-quoted scalar that closes on its line, and the text after it."""
    if text[0] == "'":
        match = _SINGLE.match(text)
        if match is None:
            raise Unsure  # it goes on over more lines
        return match.group()[1:-1].replace("''", "'"), text[match.end() :]
    match = _DOUBLE.match(text)
    if match is None:
        raise Unsure  # more lines, `\U`, or an escape YAML does not have
    body = match.group()[1:-1]
    if "\\" in body:
        body = _ESCAPE.sub(_unescape, body)
    return body, text[match.end() :]


def _unescape(match: re.Match[str]) -> str:
    named, two, four = match.groups()
    if named is not None:
        return _ESCAPED[named]
    code = int(two or four, 16)
    if 0xD800 <= code <= 0xDFFF:
        raise Unsure  # a surrogate: the full loader's error
    return chr(code)


def _end_of_line(after: str) -> None:
    """Nothing but spaces and a comment may follow a quoted scalar or a flow collection."""
    rest = after.lstrip(" ")
    if rest and not (rest[0] == "#" and after[0] == " "):
        raise Unsure


def _block(
    lines: list[str], index: int, parent: int, folded: bool, chomping: str
) -> tuple[str, int]:
    """A literal (`|`) or folded (`>`) block scalar starting at `lines[index]`, in a
    collection at column `parent`, and the index of the line after it. This follows
    libyaml's scanner: the indentation is the first line's, lines are folded only between
    two lines that do not start with a space, and the chomping indicator says what happens
    to the final line break and the empty lines after it."""
    last = len(lines) - 1  # the only line without a line break after it
    leading = 0
    widest = 0
    while index < last and not lines[index].strip(" "):
        widest = max(widest, len(lines[index]))
        leading += 1
        index += 1
    first = lines[index] if index <= last else ""
    indent = len(first) - len(first.lstrip(" "))
    if indent == len(first) or indent <= parent:
        # No text: empty, but for the line breaks that `+` keeps.
        return ("\n" * leading if chomping == "+" else ""), index
    if widest > indent:
        raise Unsure  # empty lines wider than the first line set the indentation
    margin = " " * indent
    chunks = ["\n"] * leading
    while True:
        text = lines[index][indent:]
        chunks.append(text)
        line_break = "\n" if index < last else ""
        index += 1
        breaks = 0
        while index < last and len(lines[index]) <= indent and not lines[index].strip(" "):
            breaks += 1
            index += 1
        following = lines[index] if index <= last else ""
        if len(following) <= indent or not following.startswith(margin):
            break
        if folded and line_break and text[0] != " " and following[indent] != " ":
            if not breaks:
                chunks.append(" ")
        else:
            chunks.append(line_break)
        chunks.append("\n" * breaks)
    if chomping != "-":
        chunks.append(line_break)
    if chomping == "+":
        chunks.append("\n" * breaks)
    return "".join(chunks), index
