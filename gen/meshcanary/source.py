"""Read one YAML document with the position of every key and value.

Release files, environment files and bases go through here, so every message about them can
point at `file:line:col`. Parse failures become `InputError`s carrying one located problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem

JsonPath = Sequence[str | int]

NBSP = "\u00a0"
# A release file is a few kilobytes; a limit keeps alias bombs and huge files from stalling a run.
MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000


@dataclass(frozen=True)
class SourceDoc:
    """One parsed YAML mapping and where each of its parts stands in the file."""

    display: str
    root: CommentedMap
    data: dict[str, Any]

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        """Position of the value at `path` (or of its key, with `key=True`).

        Falls back to the nearest enclosing node that has a position, so a message about a
        missing field points at the mapping that should hold it.
        """
        node: Any = self.root
        line, column = 0, 0
        for index, part in enumerate(path):
            last = index == len(path) - 1
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
        return Location(self.display, line + 1, column + 1)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _located(display: str, line: int, column: int, message: str, hint: str = "") -> InputError:
    return InputError([Problem(Location(display, line, column), message, hint)])


def decode(raw: bytes, display: str) -> str:
    """`raw` as UTF-8, or an InputError at the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        start_of_line = before.rfind(b"\n") + 1
        column = len(raw[start_of_line : exc.start].decode("utf-8", errors="replace")) + 1
        raise _located(
            display,
            line,
            column,
            f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
            "save the file as UTF-8",
        ) from None


def read_text(path: Path, display: str) -> str:
    """The file's text, or an InputError that says why it cannot be read."""
    if path.is_dir():
        raise _located(display, 1, 1, "is a directory, not a YAML file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _located(display, 1, 1, "no such file") from None
    except OSError as exc:
        raise _located(display, 1, 1, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise _located(display, 1, 1, f"file is {len(raw)} bytes; the limit is {MAX_BYTES}")
    text = decode(raw, display)
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _check_nbsp(text: str, display: str) -> None:
    offset = text.find(NBSP)
    if offset < 0:
        return
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    more = text.count(NBSP) - 1
    extra = f" ({more} more in this file)" if more else ""
    raise _located(
        display,
        line,
        column,
        f"non-breaking space (U+00A0) where YAML needs an ordinary space{extra}",
        "text copied from a web page often carries them; replace each with a space",
    )


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


def _yaml_error(exc: YAMLError, display: str, text: str) -> InputError:
    if not isinstance(exc, MarkedYAMLError):
        return _located(display, 1, 1, f"invalid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context = (exc.context or "").strip()
    hint = ""
    if "duplicate key" in problem:
        key = problem.split('"')[1] if '"' in problem else ""
        problem = f'duplicate key "{key}"' if key else "duplicate key"
        first = None
        if key and exc.context_mark is not None and exc.problem_mark is not None:
            first = _first_key(
                text, key, exc.context_mark.line, exc.problem_mark.line - 1, exc.problem_mark.column
            )
        hint = f"the first is at line {first}; " if first else ""
        hint += "each key may appear once"
    elif "'\\t'" in problem:
        problem = "tab character where YAML needs a space"
        hint = "YAML indents and separates with spaces only; replace the tab"
    elif context.startswith("while parsing a flow") and exc.context_mark is not None:
        opened = exc.context_mark
        bracket = "[" if "sequence" in context else "{"
        closing = "]" if bracket == "[" else "}"
        line, column = opened.line + 1, opened.column + 1
        problem = f"this {bracket} is never closed ({problem})"
        hint = f"add the missing {closing}, or a comma between items"
    else:
        if context and context != problem:
            problem = f"{problem} ({context})"
        problem = f"invalid YAML: {problem}"
    return _located(display, line, column, problem, hint)


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
    count = 0

    def walk(value: Any) -> Any:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise _located(display, 1, 1, f"more than {MAX_NODES} YAML nodes (alias bomb?)")
        if isinstance(value, dict):
            return {str(k) if not isinstance(k, str) else k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
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
    try:
        yield from _yaml().load_all(text)
    except YAMLError as exc:
        raise _yaml_error(exc, display, text) from None


def load_mapping(path: Path, display: str) -> SourceDoc:
    """Parse a file that must hold exactly one YAML mapping."""
    text = read_text(path, display)
    _check_nbsp(text, display)
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
    if not isinstance(root, CommentedMap):
        raise _located(
            display, 1, 1, f"expected a mapping at the top level, found {type_name(root)}"
        )
    return SourceDoc(display, root, to_plain(root, display))
