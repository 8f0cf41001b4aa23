"""Places in YAML text, and what a YAML parse error says and where.

Both YAML readers report through here: ruamel (release and environment files) and libyaml
(manifests, bases). Offsets become lines and columns, a JSON path becomes the place of a node,
and a parse error of either library becomes one located `Problem` worded the same way. The
two libraries' errors share a shape: `MarkedYAMLError` (`problem`, `problem_mark`, `context`,
`context_mark`) and `ReaderError` (`position`, `character`, `reason`); they are read by those
attributes, and each library is imported only by the walker over its own tree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

from meshcanary.problem import Location, Problem

JsonPath = Sequence[str | int]

NBSP = "\u00a0"
_TAB_HINT = "YAML indents with spaces only; replace the tab"
_SEPARATOR_TAB_HINT = "YAML indents and separates with spaces only; replace the tab"
_FLOW = {"while parsing a flow sequence": ("[", "]"), "while parsing a flow mapping": ("{", "}")}


class Mark(Protocol):
    """Where a YAML library says something stands: line and column from 0."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


def line_column(text: str, offset: int) -> tuple[int, int]:
    """Line and column (from 1) of the character at `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def at_mark(mark: Mark | None, first_line: int = 1) -> tuple[int, int]:
    """Line and column (from 1) of a mark in a document that starts on line `first_line`."""
    if mark is None:
        return first_line, 1
    return first_line + mark.line, mark.column + 1


def node_position(
    root: Any, path: JsonPath, *, key: bool = False, nulls_at_key: bool = False, first_line: int = 1
) -> tuple[int, int]:
    """Line and column of the value at `path` in a libyaml node tree (of its key, with `key`).

    Falls back to the nearest enclosing node, so a message about a missing field points at
    the mapping that should hold it. An empty value's own place is the next token, possibly
    lines below, so its key's stands for it; `nulls_at_key` does so for every null, as
    ruamel's positions do. Of keys given twice, the last counts, as it does in the value.
    """
    import yaml

    node = root
    mark = node.start_mark if node is not None else None
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in reversed(node.value) if k.value == str(part)), None)
            if found is None:
                break
            value = found[1]
            # str(): on the release fast path the tags are ruamel's Tag objects.
            null = isinstance(value, yaml.ScalarNode) and str(value.tag).endswith("null")
            empty = null and (nulls_at_key or value.value == "")
            mark = found[0].start_mark if (last and key) or empty else value.start_mark
            node = value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return at_mark(mark, first_line)


def commented_position(root: Any, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
    """Line and column of the value at `path` in ruamel's round-trip values (of its key, with
    `key`), or of the nearest enclosing one, as `node_position` gives them."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    node = root
    line, column = 0, 0
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, CommentedMap) and part not in node:
            # A key that is not a string (1, null, [a, b]) is named in a path by its text.
            part = next((k for k in node if not isinstance(k, str) and str(k) == part), part)
        if isinstance(node, CommentedMap) and part in node:
            # ruamel places an empty value at the next token, possibly lines below.
            if (last and key) or node[part] is None:
                line, column = node.lc.key(part)
            else:
                line, column = node.lc.value(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            break
    return line + 1, column + 1


def stray_space(text: str, file: str) -> Problem | None:
    """The first non-breaking space in `text`, which YAML reads as part of a key or value."""
    offset = text.find(NBSP)
    if offset < 0:
        return None
    more = text.count(NBSP) - 1
    extra = f" ({more} more in this file)" if more else ""
    return Problem(
        Location(file, *line_column(text, offset)),
        f"non-breaking space (U+00A0) where YAML needs an ordinary space{extra}",
        "text copied from a web page often carries them; replace each with a space",
    )


def yaml_problem(exc: Exception, file: str, text: str, first_line: int = 1) -> Problem:
    """A YAML error of either library, met reading `text`, as a located Problem.

    `text` is what was parsed: one document of a file that starts on line `first_line`, or
    the whole file.
    """
    line, column, message, hint = _describe(exc, text)
    return Problem(Location(file, first_line + line - 1, column), message, hint)


def _describe(exc: Exception, text: str) -> tuple[int, int, str, str]:
    position = getattr(exc, "position", None)
    if isinstance(position, int) and hasattr(exc, "reason"):
        return _reader_error(exc, position, text)
    if not hasattr(exc, "problem_mark"):
        return 1, 1, f"invalid YAML: {exc}", ""
    problem_mark: Mark | None = getattr(exc, "problem_mark", None)
    context_mark: Mark | None = getattr(exc, "context_mark", None)
    problem = (getattr(exc, "problem", None) or getattr(exc, "context", None) or "").strip()
    problem = problem or "invalid YAML"
    context = (getattr(exc, "context", None) or "").strip()
    line, column = at_mark(problem_mark or context_mark)
    if "duplicate key" in problem:
        return line, column, *_duplicate_key(problem, text, problem_mark, context_mark)
    tab, tab_column = _tab_near(text, problem_mark)
    if "'\\t'" in problem or tab == "at":
        hint = _tab_hint(text, problem_mark, tab_column)
        return line, column, "tab character where YAML needs a space", hint
    if context in _FLOW and problem_mark is not None and context_mark is not None:
        opened, closing = _FLOW[context]
        if _ran_into_block(text, problem_mark, context_mark):
            # The flow collection ran on into the next block-level line: it is the bracket the
            # reader needs to find, not the line where the parser gave up.
            return (
                *at_mark(context_mark),
                f"this {opened} is never closed ({problem})",
                f"add the missing {closing}, or a comma between items",
            )
    if context and context != problem:
        problem = f"{problem} ({context})"
    hint = _tab_hint(text, problem_mark, tab_column) if tab == "before" else ""
    return line, column, f"invalid YAML: {problem}", hint


def _reader_error(exc: Exception, position: int, text: str) -> tuple[int, int, str, str]:
    # Not a marked error: the reader knows only the offset of the character it refuses.
    if getattr(exc, "encoding", None) == "?":
        # libyaml's C reader counts bytes of the text as UTF-8, not characters.
        position = len(text.encode("utf-8")[:position].decode("utf-8", errors="ignore"))
    line, column = line_column(text, max(0, min(position, len(text))))
    character = getattr(exc, "character", None)
    if isinstance(character, str) and len(character) == 1:
        character = ord(character)
    if not isinstance(character, int):
        return line, column, f"invalid YAML: {getattr(exc, 'reason', exc)}", ""
    kind = "control character" if unicodedata.category(chr(character)) == "Cc" else "character"
    return (
        line,
        column,
        f"invalid YAML: {kind} U+{character:04X} is not allowed",
        "remove it; write it as an escape such as \\t inside double quotes if it is meant",
    )


def _duplicate_key(
    problem: str, text: str, problem_mark: Mark | None, context_mark: Mark | None
) -> tuple[str, str]:
    key = problem.split('"')[1] if '"' in problem else ""
    first = None
    if key and context_mark is not None and problem_mark is not None:
        first = _first_key(text, key, context_mark.line, problem_mark.line - 1, problem_mark.column)
    hint = f"the first is at line {first}; " if first else ""
    return (f'duplicate key "{key}"' if key else "duplicate key"), hint + "each key may appear once"


def _first_key(text: str, key: str, start: int, end: int, column: int) -> int | None:
    """Line (from 1) of the first `key:` in lines start..end at `column`, else anywhere."""
    lines = text.split("\n")[start : end + 1]
    pattern = re.compile(r"""(?:^|[\s{,])(?:%s|"%s"|'%s')\s*:""" % ((re.escape(key),) * 3))
    fallback = None
    for offset, line in enumerate(lines):
        found = pattern.search(line)
        if found is None:
            continue
        at = found.start() + (0 if line[found.start()] not in " \t{," else 1)
        if at == column:
            return start + offset + 1
        if fallback is None:
            fallback = start + offset + 1
    return fallback


def _line(text: str, mark: Mark) -> str:
    lines = text.split("\n")
    return lines[mark.line] if 0 <= mark.line < len(lines) else ""


def _tab_near(text: str, mark: Mark | None) -> tuple[str, int]:
    """Where a tab stands by the mark: "at" it, "before" it on its line, or "" (no tab).

    libyaml does not say it met a tab; the text where it stopped does.
    """
    if mark is None:
        return "", -1
    line = _line(text, mark)
    if line[mark.column : mark.column + 1] == "\t":
        return "at", mark.column
    tab = line.find("\t", 0, mark.column)
    return ("before", tab) if tab >= 0 else ("", -1)


def _tab_hint(text: str, mark: Mark | None, tab: int) -> str:
    line = _line(text, mark) if mark is not None else ""
    return _SEPARATOR_TAB_HINT if tab < 0 or line[:tab].strip(" \t") else _TAB_HINT


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _ran_into_block(text: str, problem_mark: Mark, context_mark: Mark) -> bool:
    """Whether the parser stopped on a later line indented no deeper than the bracket's.

    Inside a block, a flow collection's lines go deeper than the line it opens on; a line
    that does not (the next key, the end of the file) means the bracket was never closed.
    A deeper line is still inside it: a missing comma, say, reported where it is.
    """
    if problem_mark.line <= context_mark.line:
        return False
    return _indent(_line(text, problem_mark)) <= _indent(_line(text, context_mark))
