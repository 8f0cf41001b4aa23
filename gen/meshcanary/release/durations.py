"""Durations as release files and Go write them: 250ms, 5m, 1.5h, 1m30s."""

from __future__ import annotations

import re
from fractions import Fraction

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_WHOLE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+")
_UNIT = {"h": Fraction(3600), "m": Fraction(60), "s": Fraction(1), "ms": Fraction(1, 1000)}


def seconds(duration: str) -> Fraction:
    """`duration` in seconds, exactly; ValueError when it is not a duration."""
    if not _WHOLE.fullmatch(duration):
        raise ValueError(f"not a duration: {duration!r}")
    return sum((Fraction(n) * _UNIT[unit] for n, unit in _PART.findall(duration)), Fraction(0))
