"""Read one YAML document with the position of every key and value.

Release files, environment files and bases go through here, so every message about them can
point at `file:line:col`. Parse failures become `InputError`s carrying one located problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
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
                if last and key:
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
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _located(
            display,
            line,
            column,
            f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
            "save the file as UTF-8",
        ) from None
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


def _yaml_error(exc: YAMLError, display: str) -> InputError:
    if not isinstance(exc, MarkedYAMLError):
        return _located(display, 1, 1, f"invalid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    hint = ""
    if "duplicate key" in problem:
        first = exc.context_mark
        key = problem.split('"')[1] if '"' in problem else ""
        problem = f'duplicate key "{key}"' if key else "duplicate key"
        if first is not None:
            hint = f"the first is at line {first.line + 1}; each key may appear once"
    elif "'\\t'" in problem:
        problem = "tab character where YAML needs spaces"
        hint = "indent with spaces"
    else:
        context = (exc.context or "").strip()
        if context and context != problem:
            problem = f"{problem} ({context})"
        problem = f"invalid YAML: {problem}"
    return _located(display, line, column, problem, hint)


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
        return value

    return walk(node)


def _documents(text: str, display: str) -> Iterator[Any]:
    try:
        yield from _yaml().load_all(text)
    except YAMLError as exc:
        raise _yaml_error(exc, display) from None


def load_mapping(path: Path, display: str) -> SourceDoc:
    """Parse a file that must hold exactly one YAML mapping."""
    text = read_text(path, display)
    _check_nbsp(text, display)
    docs = [doc for doc in _documents(text, display) if doc is not None]
    if not docs:
        raise _located(display, 1, 1, "file is empty", "see the README for the file format")
    if len(docs) > 1:
        second = docs[1]
        line = second.lc.line + 1 if hasattr(second, "lc") else 1
        raise _located(display, line, 1, "expected one YAML document, found several")
    root = docs[0]
    if not isinstance(root, CommentedMap):
        kind = type(root).__name__ if not isinstance(root, CommentedSeq) else "list"
        raise _located(display, 1, 1, f"expected a mapping at the top level, found a {kind}")
    return SourceDoc(display, root, to_plain(root, display))
