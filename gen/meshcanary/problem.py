"""Problems: bad data found in a file, with the position it was found at, and how to show
text quoted from such files without letting it forge output (`printable`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: error 2, warning 1, info 0."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file; line and column count from 1, as editors show them."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class ResourceRef:
    """Which Kubernetes object a problem is about."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> ResourceRef:
        """The identity of an object as parsed YAML: apiVersion, kind, name (else its
        generateName), namespace; a field of another type counts as absent."""

        def text(value: object) -> str:
            return value if isinstance(value, str) else ""

        meta = document.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        name = meta.get("name") or meta.get("generateName") or ""
        return cls(
            text(document.get("apiVersion")),
            text(document.get("kind")),
            str(name),
            text(meta.get("namespace")),
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, reported as `file:line:col: message`.

    `rule` is the ID of the check that found it ("input" for unreadable input, "schema" for
    schema validation, a built-in rule's ID, or a policy's); `path` is a JSON Pointer into
    `resource` when the problem is about one field of a Kubernetes object.
    """

    location: Location
    message: str
    hint: str = ""
    rule: str = "input"
    severity: Severity = Severity.ERROR
    resource: ResourceRef | None = None
    path: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.message)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def format(self) -> str:
        """`file:line:col: severity: message`, and the hint on a line of its own."""
        text = f"{printable(str(self.location))}: {self.severity.value}: {printable(self.message)}"
        if self.hint:
            text += f"\n  hint: {printable(self.hint)}"
        return text


# Untrusted text ---------------------------------------------------------------------------
#
# Messages quote file names, keys, values, kustomize's and git's output: all written by whoever
# wrote the files, who may be the author of the pull request CI is checking. Printed as they
# are, a newline starts a line of their choosing (GitHub Actions runs `::error ...::` and
# `::stop-commands::` lines as workflow commands), an escape sequence drives the terminal
# (clears it, sets its title, hides a link behind OSC 8), and a bidi override reorders what a
# reader sees. Every format passes such text through `printable` (or, for JSON, `printable_json`).

# What `printable` shows as an escape: C0 and C1 controls (newlines and tabs too) and DEL,
# Unicode format characters (Cf: bidi overrides and isolates, zero-width characters, the BOM,
# tag characters), line and paragraph separators, lone surrogates (file names that are not
# UTF-8), and U+FFFE/U+FFFF, which XML cannot carry. tests/acceptance/test_escaping.py checks the Cf
# ranges against the `unicodedata` of the running Python.
_INVISIBLE = (
    "\x7f-\x9f"
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\u2028\u2029\ud800-\udfff\ufffe\uffff"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_INVISIBLE}]")
# JSON escapes C0 controls itself; the line breaks left in its text are its own indentation.
_UNSAFE_IN_JSON = re.compile(f"[{_INVISIBLE}]")
# The Actions runner also runs the older `##[command]data` form found anywhere in a line,
# and a `::command::` line after leading white space.
_LEGACY_COMMAND = "##["
_COMMAND_AT_START = re.compile(r"\s*:(?=:)")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` as one line that is safe to print in a terminal, a CI log or a report.

    Controls and invisible characters become Python-style escapes (`\\n`, `\\x1b`, `\\u202e`),
    so the result never holds a line break; a leading `::` becomes `\\x3a:` and `##[` becomes
    `##\\x5b`, so it cannot be a GitHub Actions workflow command wherever it is placed on a line.
    Everything else, including backslashes, is left as it is: this is for reading, not for
    decoding.
    """
    text = _UNSAFE.sub(_escape, text)
    command = _COMMAND_AT_START.match(text)
    if command:
        text = f"{text[: command.end() - 1]}\\x3a{text[command.end() :]}"
    return text.replace(_LEGACY_COMMAND, "##\\x5b")


_LINE_BREAK = re.compile(r"(\r?\n)")


def printable_lines(text: str) -> str:
    """`printable` for each line of a multi-line text (a diff), keeping its LF or CRLF breaks."""
    parts = _LINE_BREAK.split(text)  # lines at even indexes, their breaks at odd ones
    return "".join(part if i % 2 else printable(part) for i, part in enumerate(parts))


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond U+FFFF
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable_json(value: object) -> str:
    """`value` as indented JSON whose text is as safe to print as `printable` makes text.

    The values are exactly the input's: what JSON itself does not escape (C1 controls, bidi
    and other format characters, separators, lone surrogates) is written as `\\uXXXX`, and the
    `#` of `##[` as `\\u0023`. Outside strings JSON is ASCII and has no `#`, so these
    replacements only ever land inside strings.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_json_escape, text).replace(_LEGACY_COMMAND, "#\\u0023[")
