"""Kubernetes' quantity library: `quantity()`, `isQuantity()`, and on a Quantity `sign()`,
`isInteger()`, `asInteger()`, `asApproximateFloat()`, `add()`, `sub()`, `compareTo()`,
`isLessThan()` and `isGreaterThan()`.

Strings are read as resource.ParseQuantity reads them (`1.5Gi`, `200m`, `1e3`, `-0.5`): the
exact value, rounded away from zero to nine decimal places, binary (`Ki`...`Ei`) values capped
at 2^63-1. A quantity holds its value; two are equal when their values are. `isInteger()` and
`asInteger()` go by the value, as the API documents them: the API server also refuses values
it happens to hold as fixed-point decimals (`quantity('1.0').isInteger()` is false there).
Not available: the newest arithmetic, `mul`, `div` and `divInt`.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Any

from cel_expr_python import cel

from meshcanary.validate.cel import opaque
from meshcanary.validate.cel.opaque import BOOL, DOUBLE, INT, STRING, TYPE, function, member

KIND = "kubernetes.Quantity"
_FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_BAD_SUFFIX = "unable to parse quantity's suffix"
_DECIMAL_SUFFIXES = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18
}  # fmt: skip
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_CHARACTERS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_INT64 = (-(2**63), 2**63 - 1)
_NANO = Decimal("1e-9")
# Sums are exact; past this many digits one is refused rather than computed for ever.
_MAX_DIGITS = 1000


def _context(digits: int) -> decimal.Context:
    return decimal.Context(
        prec=max(digits, 1), Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
    )


def parse(text: str) -> Decimal:
    """The value of a quantity string; ValueError with the API server's message if none."""
    if not text:
        raise ValueError(_FORMAT_WRONG)
    negative, numerator, fraction, suffix = _split(text)
    base, exponent = _interpret(suffix)
    if base == 10:
        value = Decimal(f"{numerator}.{fraction or '0'}E{exponent}")
    else:
        exact = Decimal(f"{numerator}.{fraction or '0'}")
        value = exact.fma(2**exponent, 0, _context(len(numerator) + len(fraction) + 20))
    if value and value.as_tuple().exponent < -9:  # type: ignore[operator]
        # Anything asked for is at least the smallest amount there is: round up, not to 0.
        value = value.quantize(_NANO, decimal.ROUND_UP, _context(value.adjusted() + 12))
    if base == 2 and value > _INT64[1]:
        value = Decimal(_INT64[1])
    return -value if negative and value else value


def _split(text: str) -> tuple[bool, str, str, str]:
    """Sign, integer digits, fraction digits and suffix, as resource.Quantity scans them."""
    end = len(text)
    negative = text[0] == "-"
    position = 1 if text[0] in "+-" else 0
    while position < end and text[position] == "0":
        position += 1
    if position == end:
        return negative, "0", "", ""
    start = position
    while position < end and text[position] in _DIGITS:
        position += 1
    numerator = text[start:position] or "0"
    fraction = ""
    if position < end and text[position] == ".":
        start = position = position + 1
        while position < end and text[position] in _DIGITS:
            position += 1
        fraction = text[start:position]
    suffix_start = position
    while position < end and text[position] in _SUFFIX_CHARACTERS:
        position += 1
    if position < end and text[position] in "+-":
        position += 1
    while position < end and text[position] in _DIGITS:
        position += 1
    if position < end:
        raise ValueError(_FORMAT_WRONG)
    return negative, numerator, fraction, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix]
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix]
    match = _EXPONENT.fullmatch(suffix)
    # The API server keeps the exponent in an int32 it negates: past that, no quantity.
    if match and abs(int(match[1])) < 2**31:
        return 10, int(match[1])
    raise ValueError(_BAD_SUFFIX)


def canonical(value: Decimal) -> str:
    """One text per value, so that equal quantities are equal maps."""
    if not value:
        return "0"
    return str(value.normalize(_context(len(value.as_tuple().digits))))


def _value(quantity: Any) -> Decimal:
    return Decimal(opaque.unwrap(KIND, quantity))


def _wrap(value: Decimal) -> dict[str, str]:
    return opaque.wrap(KIND, canonical(value))


def _sum(left: Decimal, right: Decimal) -> Decimal:
    lowest = min(int(left.as_tuple().exponent), int(right.as_tuple().exponent), 0)
    digits = max(left.adjusted(), right.adjusted(), 0) - lowest + 2
    if digits > _MAX_DIGITS:
        raise ValueError(f"quantity arithmetic on more than {_MAX_DIGITS:,} digits")
    return left.fma(1, right, _context(digits))


def _integer(quantity: Any) -> int | None:
    value = _value(quantity)
    if value != value.to_integral_value() or not _INT64[0] <= value <= _INT64[1]:
        return None
    return int(value)


def _as_integer(quantity: Any) -> int:
    value = _integer(quantity)
    if value is None:
        raise ValueError("cannot convert value to integer")
    return value


def _is_quantity(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as the quantity whose text is `left` is below, at or above `right`'s."""
    a, b = Decimal(left), Decimal(right)
    return (a > b) - (a < b)


def library() -> Any:
    def sign(quantity: Any) -> int:
        value = _value(quantity)
        return (value > 0) - (value < 0)

    def add(quantity: Any, other: Any) -> dict[str, str]:
        term = Decimal(other) if isinstance(other, int) else _value(other)
        return _wrap(_sum(_value(quantity), term))

    def sub(quantity: Any, other: Any) -> dict[str, str]:
        term = Decimal(other) if isinstance(other, int) else _value(other)
        return _wrap(_sum(_value(quantity), -term))

    def declare(name: str, *overloads: Any) -> Any:
        return cel.FunctionDecl(name, list(overloads))

    return cel.CelExtension(
        "kubernetes.quantity",
        [
            declare("quantity", function("quantity", TYPE, [STRING], lambda s: _wrap(parse(s)))),
            declare("isQuantity", function("isQuantity", BOOL, [STRING], _is_quantity)),
            # The API server declares sign() as a global function and documents q.sign().
            declare("sign", function("sign", INT, [TYPE], sign), member("sign", INT, [TYPE], sign)),
            declare(
                "isInteger",
                member("isInteger", BOOL, [TYPE], lambda q: _integer(q) is not None),
            ),
            declare("asInteger", member("asInteger", INT, [TYPE], _as_integer)),
            declare(
                "asApproximateFloat",
                member("asApproximateFloat", DOUBLE, [TYPE], lambda q: float(_value(q))),
            ),
            declare(
                "add", member("add", TYPE, [TYPE, TYPE], add), member("add", TYPE, [TYPE, INT], add)
            ),
            declare(
                "sub", member("sub", TYPE, [TYPE, TYPE], sub), member("sub", TYPE, [TYPE, INT], sub)
            ),
        ],
    )
