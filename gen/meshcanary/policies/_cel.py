"""The CEL engine of admission policies: Kubernetes' CEL environment (`validate.cel`) with the
variables a ValidatingAdmissionPolicy sees, and the cost estimate (`_cost`) a policy must pass.

Imported only by `load()` and by the worker process (`_worker`), so a run without policies
never loads the engine. The runtime stops any single evaluation after 10,000 comprehension
iterations ("Iteration budget exceeded"), refuses expressions over 100,000 code points or
nested deeper than 32 levels, and `_cost` refuses, when a policy loads, expressions whose
estimated size or cost is over its limits; the worker is killed when a policy outlives its
wall-clock budget: together, the cost limits policies run under.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshcanary.policies import _cost
from meshcanary.validate import cel

# Names an expression may use, as a ValidatingAdmissionPolicy offers them offline.
VARIABLES = ("object", "oldObject", "request", "variables", "objects", "namespaceObject")

CompileError = cel.CompileError  # the engine refused an expression
CostError = _cost.CostError  # an expression over the size or cost limits
EvaluationError = cel.EvaluationError  # an expression failed while it ran


class Engine(cel.Engine):
    """The environment of every policy expression, compiled once per load."""

    def __init__(self) -> None:
        super().__init__([name for name in VARIABLES if name != "objects"], ["objects"])

    def estimate(self, program: Any, variables: Mapping[str, _cost.Size]) -> _cost.Size:
        """The size bound of `program`'s value; CostError when it is over a limit."""
        return _cost.estimate(program.serialize(), variables)
