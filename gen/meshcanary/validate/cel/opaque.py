"""Values of Kubernetes' own CEL types (Quantity, URL, IP, CIDR, Semver), as the engine holds them.

cel-expr-python has no opaque types (a function may neither take nor return one), so a value of
such a type is a one-entry map from `@<type name>` to its canonical text: `==` then compares
two values as the API server does, and each library function checks the tag before it reads
the text. The functions are declared on maps, so a call on the wrong kind of value fails when
the expression runs rather than when it compiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from cel_expr_python import cel

# What a function of these libraries takes and returns in place of the opaque type.
TYPE = cel.Type.Map(cel.Type.STRING, cel.Type.STRING)
STRING, INT, BOOL, DOUBLE = cel.Type.STRING, cel.Type.INT, cel.Type.BOOL, cel.Type.DOUBLE


def wrap(kind: str, text: str) -> dict[str, str]:
    return {f"@{kind}": text}


def kind_of(value: Any) -> str | None:
    """The type name of a wrapped value; None for any other value."""
    if isinstance(value, dict) and len(value) == 1:
        (key, text), *_ = value.items()
        if isinstance(key, str) and key.startswith("@") and isinstance(text, str):
            return key[1:]
    return None


def unwrap(kind: str, value: Any) -> str:
    """The text of a wrapped `kind`; an error, as the API server's, for anything else."""
    if kind_of(value) != kind:
        raise ValueError(f"no such overload: {kind} expected, found {describe(value)}")
    text: str = value[f"@{kind}"]
    return text


def describe(value: Any) -> str:
    kind = kind_of(value)
    if kind is not None:
        return kind
    return {bool: "bool", int: "int", float: "double", str: "string", list: "list"}.get(
        type(value), "map" if isinstance(value, dict) else type(value).__name__
    )


def member(name: str, result: Any, parameters: Sequence[Any], impl: Callable[..., Any]) -> Any:
    """A receiver-style overload (`x.name(...)`); the receiver is the first parameter."""
    return cel.Overload(_id("member", name, parameters), result, list(parameters), True, impl)


def function(name: str, result: Any, parameters: Sequence[Any], impl: Callable[..., Any]) -> Any:
    """A global overload (`name(...)`)."""
    return cel.Overload(_id("global", name, parameters), result, list(parameters), False, impl)


def _id(style: str, name: str, parameters: Sequence[Any]) -> str:
    # Overload IDs must be unique in the environment; the signature makes them so.
    words = [style, name, *(str(p.name()) for p in parameters)]
    return "k8s_" + "_".join(re.sub(r"\W+", "_", word.lower()).strip("_") for word in words)
