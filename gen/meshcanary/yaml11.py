"""What a plain scalar means in YAML 1.1, as manifests are read: its type and its value.

Written from YAML 1.1's type definitions (yaml.org/type: null, bool, int, float, timestamp,
merge, value) as Kubernetes (Go) reads them, with the narrowings of PyYAML, whose C loader
reads what the fast reader does not and must give the same values:
- booleans are yes/no, true/false and on/off in lower, title or upper case; not y and n;
- a float has one dot, and a digit before it when it has a sign (`-.5` is a string); Go's
  spellings with an exponent are floats too (`1e-05`, `-.5E3`), where YAML 1.1 has strings;
- timestamps, `=` (value) and `0b_` or `0x_` (a prefix without digits) are strings, as Go
  reads them; `<<` (merge) is the full loader's to read, with the mapping it merges.
Only ASCII digits are digits. This module does not import PyYAML: a manifest that the fast
reader reads in full is read without it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from meshcanary.fastyaml import Unsure

_BOOLEANS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
# Spellings whose value is a word's: null is written `~`, `null` in three cases, or nothing.
_WORDS: dict[str, Any] = {
    "": None,
    "~": None,
    **{spelling: None for spelling in ("null", "Null", "NULL")},
    **{
        spelling: truth
        for word, truth in _BOOLEANS.items()
        for spelling in (word, word.title(), word.upper())
    },
}
_MISSING = object()
# A number starts with a sign, a dot or a digit.
_NUMERIC = frozenset("-+.0123456789")
# Merge keys, and the YAML "language independent" scalars that only an indicator spells: the
# full loader reads them (and refuses the latter).
_UNSURE = frozenset(("<<", "!", "&", "*"))

# Binary, octal (a leading 0), decimal, hexadecimal and sexagesimal (base 60) integers, with
# `_` anywhere after the first digit.
_INT = re.compile(
    r"[-+]?(?:0b[01_]+|0[0-7_]+|0|0x[0-9a-fA-F_]+|[1-9][0-9_]*(?::[0-5]?[0-9])*)",
)
# YAML 1.1's floats, where an exponent has its sign, then Go's, where it need not.
_FLOAT = re.compile(
    r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"  # no digit before the dot: no sign either
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"  # sexagesimal
    r"|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)"
    r"|[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+",  # Go's, as in 1e-05
)


def value(text: str) -> Any:
    """The value of a plain scalar written `text` (one line, without its comment): None, a
    bool, an int, a float or the text itself. Unsure for a merge key, which the full loader
    reads with the mapping it merges."""
    word = _WORDS.get(text, _MISSING)
    if word is not _MISSING:
        return word
    first = text[0]
    if first in _NUMERIC:
        if _INT.fullmatch(text):
            return _integer(text)
        if _FLOAT.fullmatch(text):
            return _float(text)
    elif text in _UNSURE:
        raise Unsure
    return text


def _integer(text: str) -> int | str:
    digits = text.replace("_", "")
    sign = -1 if digits[0] == "-" else 1
    digits = digits.lstrip("-+")
    if ":" in digits:
        total = 0
        for place, part in enumerate(reversed(digits.split(":"))):
            total += int(part) * 60**place
        return sign * total
    base = 10
    if digits[:2] == "0b":
        digits, base = digits[2:], 2
    elif digits[:2] == "0x":
        digits, base = digits[2:], 16
    elif digits[0] == "0" and len(digits) > 1:
        base = 8
    if not digits:
        return text  # `0b_`, `0x_`: Go reads a prefix without digits as a string
    return sign * int(digits, base)


def _float(text: str) -> float:
    number = text.replace("_", "").lower()
    if number.endswith("inf"):
        return -math.inf if number[0] == "-" else math.inf
    if number.endswith("nan"):
        return math.nan
    if ":" not in number:
        return float(number)
    sign = -1.0 if number[0] == "-" else 1.0
    # Summed from the last place up, the order that sets how the sum rounds.
    total, scale = 0.0, 1
    for part in reversed(number.lstrip("-+").split(":")):
        total += float(part) * scale
        scale *= 60
    return sign * total
