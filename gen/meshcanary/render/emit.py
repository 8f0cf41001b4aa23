"""A small, deterministic YAML emitter for the generated files.

Generated files hold only mappings, lists, strings, numbers and booleans, in the key order the
renderer chose. Writing them by hand keeps the bytes fixed across library versions and is far
faster than a general emitter. Strings are plain only when YAML 1.1 and 1.2 both read them
back as the same string; anything else is double-quoted (JSON escapes are valid YAML).
"""

from __future__ import annotations

import json
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
_LITERAL_SAFE = re.compile(r"[^\t\r\x00-\x08\x0b-\x1f\x7f\ufeff\u0085\u2028\u2029]*")


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
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and not _RESERVED.fullmatch(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} to a generated file")


def _literal_ok(text: str) -> bool:
    lines = text.split("\n")
    return (
        "\n" in text
        and not text.endswith("\n")
        and bool(_LITERAL_SAFE.fullmatch(text))
        and not lines[0].startswith(" ")
        and all(line == line.rstrip(" ") for line in lines)
    )


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            name = scalar(str(key))
            if isinstance(item, dict) and item:
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


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def document(value: dict[str, Any], header: str = "") -> str:
    """One YAML document, with `header` as comment lines on top."""
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(value, 0, out)
    return "\n".join(out) + "\n"
