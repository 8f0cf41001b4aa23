"""Kubernetes' list library: `sum`, `min`, `max`, `indexOf`, `lastIndexOf`, `isSorted`."""

from __future__ import annotations

import itertools
from typing import Any

from cel_expr_python import cel

from meshcanary.validate.cel.opaque import BOOL, INT, member


def _is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


def _index_of(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if item == value), -1)


def _last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if items[i] == value), -1)


def library() -> Any:
    items, dyn = cel.Type.List(cel.Type.DYN), cel.Type.DYN
    return cel.CelExtension(
        "kubernetes.lists",
        [
            cel.FunctionDecl("sum", [member("sum", dyn, [items], lambda xs: sum(xs))]),
            cel.FunctionDecl("min", [member("min", dyn, [items], lambda xs: min(xs))]),
            cel.FunctionDecl("max", [member("max", dyn, [items], lambda xs: max(xs))]),
            cel.FunctionDecl("isSorted", [member("isSorted", BOOL, [items], _is_sorted)]),
            cel.FunctionDecl("indexOf", [member("indexOf", INT, [items, dyn], _index_of)]),
            cel.FunctionDecl(
                "lastIndexOf", [member("lastIndexOf", INT, [items, dyn], _last_index_of)]
            ),
        ],
    )
