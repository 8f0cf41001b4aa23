"""The CEL engine (cel-expr-python, Google's C++ runtime): environment and Kubernetes libraries.

Imported only by `load()` and by the worker process (`_worker`), so a run without policies
never loads the engine. The runtime stops any single evaluation after 10,000 comprehension
iterations ("Iteration budget exceeded"), refuses expressions over 100,000 code points or
nested deeper than 32 levels, and `_cost` refuses, when a policy loads, expressions whose
estimated size or cost is over its limits; the worker is killed when a policy outlives its
wall-clock budget: together, the cost limits policies run under.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext.ext_bindings import ExtBindings
from cel_expr_python.ext.ext_math import ExtMath
from cel_expr_python.ext.ext_optional import ExtOptional
from cel_expr_python.ext.ext_strings import ExtStrings

from meshcanary.policies import _cost

# Names an expression may use, as a ValidatingAdmissionPolicy offers them offline.
VARIABLES = ("object", "oldObject", "request", "variables", "objects", "namespaceObject")


class CompileError(Exception):
    """The engine refused an expression; the text is the engine's own."""


CostError = _cost.CostError  # an expression over the size or cost limits


class EvaluationError(Exception):
    """An expression failed while it ran (missing field, budget exceeded, wrong type)."""


def _is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


def _index_of(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if item == value), -1)


def _last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if items[i] == value), -1)


def _lists_library() -> Any:
    """Kubernetes' list functions (`sum`, `min`, `max`, `indexOf`, `lastIndexOf`, `isSorted`)."""
    items = cel.Type.List(cel.Type.DYN)
    dyn = cel.Type.DYN

    def member(name: str, result: Any, impl: Callable[..., Any], *extra: Any) -> Any:
        overload = cel.Overload(
            f"k8s_list_{name}", result, [items, *extra], is_member=True, impl=impl
        )
        return cel.FunctionDecl(name, [overload])

    return cel.CelExtension(
        "kubernetes.lists",
        [
            member("sum", dyn, lambda xs: sum(xs)),
            member("min", dyn, lambda xs: min(xs)),
            member("max", dyn, lambda xs: max(xs)),
            member("isSorted", cel.Type.BOOL, _is_sorted),
            member("indexOf", cel.Type.INT, _index_of, dyn),
            member("lastIndexOf", cel.Type.INT, _last_index_of, dyn),
        ],
    )


class Engine:
    """One CEL environment with every variable a policy may use, compiled once per load."""

    def __init__(self) -> None:
        dyn = cel.Type.DYN
        declared = {name: dyn for name in VARIABLES}
        declared["objects"] = cel.Type.List(dyn)
        self._env = cel.NewEnv(
            variables=declared,
            extensions=[ExtOptional(), ExtStrings(), ExtMath(), ExtBindings(), _lists_library()],
        )

    def compile(self, source: str, expect: str) -> Any:
        """Compile `source`; `expect` ("bool", "string" or "dyn") is checked when the type is known."""
        try:
            program = self._env.compile(source)
        except RuntimeError as exc:
            raise CompileError(_clean(str(exc))) from None
        returned = program.return_type().name().lower()
        if expect != "dyn" and returned not in (expect, "dyn"):
            raise CompileError(f"expression must return {expect}, found {returned}")
        return program

    def estimate(self, program: Any, variables: Mapping[str, _cost.Size]) -> _cost.Size:
        """The size bound of `program`'s value; CostError when it is over a limit."""
        return _cost.estimate(program.serialize(), variables)

    def evaluate(self, program: Any, data: Mapping[str, Any]) -> Any:
        """The plain Python value of `program` over `data`."""
        try:
            value = program.eval(data=data)
        except RuntimeError as exc:
            raise EvaluationError(_clean(str(exc))) from None
        if value.type().name() == "ERROR" or str(value.type()) == "ERROR":
            raise EvaluationError(_clean(str(value.value())))
        return value.plain_value()


def _clean(text: str) -> str:
    """The engine's message without its status-code decorations."""
    for code in _STATUS_CODES:
        text = text.removeprefix(f"{code}: ").removesuffix(f" [{code}]")
    # The parser repeats some errors once per attempt, and has no position for them.
    lines = [line.replace("<input>:-1:-1: ", "") for line in text.strip().splitlines()]
    return "\n".join(dict.fromkeys(lines))


_STATUS_CODES = (
    "INVALID_ARGUMENT",
    "INTERNAL",
    "NOT_FOUND",
    "UNKNOWN",
    "CANCELLED",
    "OUT_OF_RANGE",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
)
