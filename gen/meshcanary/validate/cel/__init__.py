"""Kubernetes' CEL, offline: the environment the API server gives CRD validation rules and
ValidatingAdmissionPolicies, on cel-expr-python (Google's C++ runtime).

Imported only where an expression is compiled, so that a run with nothing to evaluate never
loads the engine. Besides CEL's standard library the environment holds what the API server
adds: optional types, the strings extension (`format`, `quote`, `reverse`...), math,
`cel.bind`, sets, two-variable comprehensions (`all(k, v, ...)`, `transformList`...), and
Kubernetes' own libraries, written here in Python: lists, regex (`find`, `findAll`), URLs,
quantities, IP addresses and CIDRs, semantic versions (one module each).

Limits of the runtime: one evaluation stops after 10,000 comprehension iterations
("Iteration budget exceeded"); an expression over 100,000 code points or nested deeper than
32 levels is refused.

Where this environment differs from the API server's:
- Values of Kubernetes' types (Quantity, URL, IP, CIDR, Semver) are tagged maps (`opaque`):
  they compare as the API server's do, but `type()` of one is a map, and a call on the wrong
  kind of value fails when it runs, not when it compiles.
- The checker has no mixed int/double/uint comparisons: `1 < 1.5` between two literals does
  not compile (a field compared with a number does).
- Not available: the `format.*` named formats (`format.dns1123Label()`), `image()`, the
  authorizer, and the newest quantity arithmetic (`mul`, `div`, `divInt`).
- `find` and `findAll` match with Python's `re`, not RE2 (see `regex`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext.ext_bindings import ExtBindings
from cel_expr_python.ext.ext_math import ExtMath
from cel_expr_python.ext.ext_optional import ExtOptional
from cel_expr_python.ext.ext_strings import ExtStrings

from meshcanary.validate.cel import lists, network, opaque, quantity, regex, semver, urls

# Extensions cel-expr-python only enables by configuration.
_CONFIGURATION = """\
extensions:
  - name: sets
  - name: two-var-comprehensions
"""


class CompileError(Exception):
    """The engine refused an expression; the text is the engine's own."""


class EvaluationError(Exception):
    """An expression failed while it ran (missing field, budget exceeded, wrong type)."""


def _comparisons() -> Any:
    """`compareTo`, `isLessThan` and `isGreaterThan`, of two quantities or two versions."""
    orders = {quantity.KIND: quantity.compare, semver.KIND: semver.compare}

    def compare(left: Any, right: Any) -> int:
        kind = opaque.kind_of(left)
        if kind not in orders:
            raise ValueError(f"no such overload: compareTo on {opaque.describe(left)}")
        return orders[kind](opaque.unwrap(kind, left), opaque.unwrap(kind, right))

    pair = [opaque.TYPE, opaque.TYPE]
    return cel.CelExtension(
        "kubernetes.comparisons",
        [
            cel.FunctionDecl("compareTo", [opaque.member("compareTo", opaque.INT, pair, compare)]),
            cel.FunctionDecl(
                "isLessThan",
                [opaque.member("isLessThan", opaque.BOOL, pair, lambda a, b: compare(a, b) < 0)],
            ),
            cel.FunctionDecl(
                "isGreaterThan",
                [opaque.member("isGreaterThan", opaque.BOOL, pair, lambda a, b: compare(a, b) > 0)],
            ),
        ],
    )


class Engine:
    """One CEL environment declaring `variables` (any value) and `list_variables` (lists)."""

    def __init__(self, variables: Iterable[str], list_variables: Iterable[str] = ()) -> None:
        dyn = cel.Type.DYN
        declared = {name: dyn for name in variables}
        declared |= {name: cel.Type.List(dyn) for name in list_variables}
        self._env = cel.NewEnv(
            config=cel.NewEnvConfigFromYaml(_CONFIGURATION),
            variables=declared,
            extensions=[
                ExtOptional(),
                ExtStrings(),
                ExtMath(),
                ExtBindings(),
                lists.library(),
                regex.library(),
                urls.library(),
                quantity.library(),
                network.library(),
                semver.library(),
                _comparisons(),
            ],
        )

    def compile(self, source: str, expect: str) -> Any:
        """Compile `source`; `expect` ("bool", "string" or "dyn") is checked when the type is known."""
        try:
            program = self._env.compile(source)
        except RuntimeError as exc:
            raise CompileError(clean(str(exc))) from None
        returned = program.return_type().name().lower()
        if expect != "dyn" and returned not in (expect, "dyn"):
            raise CompileError(f"expression must return {expect}, found {returned}")
        return program

    def bind(self, data: Mapping[str, Any]) -> Any:
        """The variables of evaluations, converted once for every expression run on them."""
        try:
            return self._env.Activation(data=data)
        except RuntimeError as exc:
            raise EvaluationError(clean(str(exc))) from None

    def evaluate(self, program: Any, data: Mapping[str, Any]) -> Any:
        """The plain Python value of `program` over `data`."""
        try:
            value = program.eval(data=data)
        except RuntimeError as exc:
            raise EvaluationError(clean(str(exc))) from None
        return _plain(value)

    def holds(self, program: Any, bound: Any) -> bool:
        """Whether `program` over variables from `bind` is true (an error is not)."""
        try:
            return program.eval(bound).value() is True
        except RuntimeError:
            return False

    def run(self, program: Any, bound: Any) -> Any:
        """The plain Python value of `program` over variables from `bind`."""
        try:
            value = program.eval(bound)
        except RuntimeError as exc:
            raise EvaluationError(clean(str(exc))) from None
        return _plain(value)


def _plain(value: Any) -> Any:
    if value.type().name() == "ERROR":
        raise EvaluationError(clean(str(value.value())))
    return value.plain_value()


def clean(text: str) -> str:
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
