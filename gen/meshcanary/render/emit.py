"""A small, deterministic YAML emitter for the generated files.

Generated files hold only mappings, lists, strings, numbers and booleans, in the key order the
renderer chose. Writing them by hand keeps the bytes fixed across library versions and is far
faster than a general emitter. Strings are plain only when YAML 1.1 and 1.2 both read them
back as the same string; anything else is double-quoted (JSON escapes are valid YAML).
"""

from __future__ import annotations

import math
import re
from typing import Any

_PLAIN = re.compile(
    r"(?:[A-Za-z0-9_./$]|-[A-Za-z_])[A-Za-z0-9_./@=+$%-]*(?::[A-Za-z0-9_./@=+$%-]+)*"
)
# Strings some YAML reader (1.1 or 1.2, as in Go's yaml.v2 and v3) would not read as strings:
# booleans, nulls, numbers in any base or notation, sexagesimals, timestamps.
_RESERVED = re.compile(
    r"""(?ix)
    y|n|yes|no|true|false|on|off|null|~
    |[-+]?\.?(inf|infinity|nan)
    |[-+]?[0-9_.:]*([eE][-+]?[0-9]+)?
    |[-+]?0[xob][0-9a-f_]+
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([tT ].*)?
    """
)
# Both classes below name the few small ranges outside the printable characters YAML writes
# as they are (\x20-\x7e, \xa0-\u2027, \u202a-\ud7ff, \ue000-\ufefe, \uff00-\ufffd and
# \U00010000-\U0010ffff), not those wide ranges: a class of them takes 10 ms to compile, at
# every start-up. tests/unit/test_emit_charsets.py holds them equal.
# Characters a literal block may hold as they are: the printable set and \n.
_LITERAL_SAFE = re.compile(
    r"[^\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]*"
)
# Characters a double-quoted scalar must escape: everything outside the printable set, the
# quote and backslash, and the line breaks YAML 1.1 reads (NEL, LS, PS).
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"\\]')
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}
# Implicit keys may be at most 1024 characters; longer ones need the explicit "? " form.
_MAX_IMPLICIT_KEY = 1000


def quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar that every reader takes back unchanged."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in _ESCAPES:
            return _ESCAPES[char]
        code = ord(char)
        return (
            f"\\x{code:02x}"
            if code <= 0xFF
            else f"\\u{code:04x}"
            if code <= 0xFFFF
            else f"\\U{code:08x}"
        )

    return '"' + _UNSAFE.sub(escape, text) + '"'


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot write {value} to a generated file")
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 reads a float only with a dot in the mantissa: 1e-05 would be a string.
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and not _RESERVED.fullmatch(value):
            return value
        return quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} to a generated file")


def _literal_ok(text: str) -> bool:
    lines = text.split("\n")
    # The first line sets the block's indentation: it must be there and start with no space.
    return (
        "\n" in text
        and not text.endswith("\n")
        and bool(_LITERAL_SAFE.fullmatch(text))
        and bool(lines[0])
        and not lines[0].startswith(" ")
        and all(line == line.rstrip(" ") for line in lines)
    )


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            name = scalar(str(key))
            if len(name) > _MAX_IMPLICIT_KEY:
                _explicit(name, item, indent, out)
            elif isinstance(item, dict) and item:
                out.append(f"{pad}{name}:")
                _emit(item, indent + 2, out)
            elif isinstance(item, list) and item:
                out.append(f"{pad}{name}:")
                _emit(item, indent, out)
            elif isinstance(item, str) and _literal_ok(item):
                out.append(f"{pad}{name}: |-")
                out.extend(f"{pad}  {line}" if line else "" for line in item.split("\n"))
            else:
                out.append(f"{pad}{name}: {_inline(item)}")
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                inner: list[str] = []
                _emit(item, indent + 2, inner)
                first = inner[0][indent + 2 :]
                out.append(f"{pad}- {first}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {_inline(item)}")
        return
    out.append(pad + _inline(value))


def _explicit(name: str, item: Any, indent: int, out: list[str]) -> None:
    """A long key in the explicit form: `? key` then `: value`."""
    pad = " " * indent
    out.append(f"{pad}? {name}")
    if isinstance(item, dict | list) and item:
        out.append(f"{pad}:")
        _emit(item, indent + 2, out)
    elif isinstance(item, str) and _literal_ok(item):
        out.append(f"{pad}: |-")
        out.extend(f"{pad}  {line}" if line else "" for line in item.split("\n"))
    else:
        out.append(f"{pad}: {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def document(value: dict[str, Any] | list[Any], header: str = "") -> str:
    """One YAML document, with `header` as comment lines on top."""
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    if not value:
        out.append(_inline(value))
    _emit(value, 0, out)
    return "\n".join(out) + "\n"
