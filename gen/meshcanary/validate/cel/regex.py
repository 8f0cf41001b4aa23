"""Kubernetes' regex library: `s.find(re)`, `s.findAll(re)` and `s.findAll(re, limit)`.

The API server matches with Go's RE2; here Python's `re` matches, after the pattern is
translated where the two read the same text differently: `\\z`, `$` outside multi-line mode,
the POSIX classes `[[:alpha:]]`, and `\\d`, `\\w`, `\\s`, `\\b` (ASCII only in RE2). What RE2
has and `re` lacks (`\\pL`, `\\p{Greek}`, `\\Q...\\E`, `\\C`) is refused as an illegal regex.
Unlike RE2, `re` backtracks: a pathological pattern can be slow, which the policies' time
budget stops.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from cel_expr_python import cel

from meshcanary.validate.cel.opaque import INT, STRING, member

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")
_UNSUPPORTED = {"p": "\\p", "P": "\\P", "Q": "\\Q", "C": "\\C"}


@functools.lru_cache(maxsize=256)
def compile_re2(pattern: str) -> re.Pattern[str]:
    """`pattern`, an RE2 regular expression, as Python's `re` reads it the same way."""
    multiline = bool(re.search(r"\(\?[a-zA-Z]*m", pattern))
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escape = pattern[index + 1]
            if escape in _UNSUPPORTED:
                raise ValueError(f"Illegal regex: {_UNSUPPORTED[escape]} is not supported offline")
            out.append("\\Z" if escape == "z" and not in_class else pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            posix = _POSIX_CLASS.match(pattern, index)
            if posix:
                if posix[1]:
                    raise ValueError(f"Illegal regex: negated class [:^{posix[2]}:]")
                if posix[2] not in _POSIX:
                    raise ValueError(f"Illegal regex: invalid character class range {posix[0]}")
                out.append(_POSIX[posix[2]])
                index = posix.end()
                continue
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            out.append(char)
            index += 1
            # A `]` first in a class (after an optional `^`) is a literal, as in RE2.
            if pattern.startswith("^", index):
                out.append("^")
                index += 1
            if pattern.startswith("]", index):
                out.append("\\]")
                index += 1
            continue
        elif char == "$" and not multiline:
            out.append("\\Z")  # RE2's `$` is the end of the text; re's also matches before a \n
            index += 1
            continue
        out.append(char)
        index += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise ValueError(f"Illegal regex: {exc}") from None


def find(text: str, pattern: str) -> str:
    """The leftmost match of `pattern` in `text`, or "" when there is none."""
    match = compile_re2(pattern).search(text)
    return match.group() if match else ""


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's FindAllString: successive matches, an empty one right after a match left out."""
    compiled = compile_re2(pattern)
    found: list[str] = []
    position, previous_end = 0, -1
    if limit < 0:
        limit = len(text) + 1
    while len(found) < limit and position <= len(text):
        match = compiled.search(text, position)
        if match is None:
            break
        start, end = match.span()
        if end == start:
            keep = start != previous_end
            position = end + 1
        else:
            keep, position = True, end
        previous_end = end
        if keep:
            found.append(match.group())
    return found


def library() -> Any:
    strings = cel.Type.List(STRING)
    return cel.CelExtension(
        "kubernetes.regex",
        [
            cel.FunctionDecl("find", [member("find", STRING, [STRING, STRING], find)]),
            cel.FunctionDecl(
                "findAll",
                [
                    member("findAll", strings, [STRING, STRING], find_all),
                    member("findAll", strings, [STRING, STRING, INT], find_all),
                ],
            ),
        ],
    )
