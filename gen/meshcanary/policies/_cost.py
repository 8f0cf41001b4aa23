"""A static size and cost estimate of a compiled CEL expression, checked when a policy loads.

The engine (cel-expr-python) stops an evaluation after 10,000 comprehension iterations, but it
has no cost budget for what one step does: `'a'.replace('a', 'aaaaaaaaaa')` chained ten
times, or a variable that doubles the one before it, builds gigabytes in one call that no
Python-side guard can interrupt. Like the API server, which refuses expressions whose
estimated cost is over a limit, this module walks the checked expression (the engine's
`CheckedExpr`, decoded from its protobuf wire form) and bounds, for every node:

- the size of the value it builds, as `k * N + c` where N is the size of the input (the
  object and `objects`): at most MAX_GROWTH times the input plus MAX_SIZE bytes or items,
  never input times input (`s.replace('', s)`), never growing geometrically in a loop;
- the work of one evaluation, counting every byte or item a string or list function touches
  and every node once, with the nodes inside comprehensions counted ITERATIONS times (the
  engine's budget is shared by all comprehensions of one evaluation): at most MAX_COST
  units. Work proportional to the input is not limited here (the input is already read);
  the per-policy wall-clock budget bounds it (`_worker` kills the evaluation at it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# The engine's own limit on comprehension iterations in one evaluation.
ITERATIONS = 10_000
# The largest value an expression may build beyond what is proportional to its input.
MAX_SIZE = 10_000_000
# How many times its input an expression's values may grow (a concatenation of 100 fields).
MAX_GROWTH = 100
# Work of one evaluation not proportional to the input: bytes or items touched, nodes visited.
MAX_COST = 100_000_000

INPUTS = frozenset({"object", "oldObject", "objects", "request", "namespaceObject", "params"})


class CostError(Exception):
    """An expression over a limit; `offset` is where in its text (0-based), when known."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.offset = offset


# Protobuf wire format, just enough for cel.expr.CheckedExpr ------------------------------


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 1:
            value, position = int.from_bytes(data[position : position + 8], "little"), position + 8
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire == 5:
            value, position = int.from_bytes(data[position : position + 4], "little"), position + 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, value


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, position


@dataclass
class Node:
    """One `cel.expr.Expr`: the kind of node and its parts, as far as the estimate needs them."""

    id: int = 0
    kind: str = ""  # const, ident, select, call, list, struct, comprehension
    name: str = ""  # identifier, selected field or called function
    text: int | None = None  # length of a string or bytes constant
    children: list[Node] = field(default_factory=list)  # call: target first when there is one
    target: bool = False
    iter_vars: tuple[str, ...] = ()
    accu_var: str = ""


def _expr(data: bytes) -> Node:
    node = Node()
    for number, value in _fields(data):
        if number == 2 and isinstance(value, int):
            node.id = value
        elif not isinstance(value, bytes):
            continue
        elif number == 3:
            node.kind = "const"
            for part, constant in _fields(value):
                if part in (6, 7) and isinstance(constant, bytes):
                    node.text = (
                        len(constant.decode("utf-8", "replace")) if part == 6 else len(constant)
                    )
        elif number == 4:
            node.kind = "ident"
            node.name = next(
                (v.decode() for n, v in _fields(value) if n == 1 and isinstance(v, bytes)), ""
            )
        elif number == 5:
            node.kind = "select"
            for part, item in _fields(value):
                if part == 1 and isinstance(item, bytes):
                    node.children.append(_expr(item))
                elif part == 2 and isinstance(item, bytes):
                    node.name = item.decode()
        elif number == 6:
            node.kind = "call"
            args: list[Node] = []
            for part, item in _fields(value):
                if part == 1 and isinstance(item, bytes):
                    node.children.insert(0, _expr(item))
                    node.target = True
                elif part == 2 and isinstance(item, bytes):
                    node.name = item.decode()
                elif part == 3 and isinstance(item, bytes):
                    args.append(_expr(item))
            node.children.extend(args)
        elif number == 7:
            node.kind = "list"
            node.children = [_expr(v) for n, v in _fields(value) if n == 1 and isinstance(v, bytes)]
        elif number == 8:
            node.kind = "struct"
            for part, entry in _fields(value):
                if part == 2 and isinstance(entry, bytes):
                    node.children += [
                        _expr(v) for n, v in _fields(entry) if n in (3, 4) and isinstance(v, bytes)
                    ]
        elif number == 9:
            node.kind = "comprehension"
            parts: dict[int, Node] = {}
            names: dict[int, str] = {}
            for part, item in _fields(value):
                if not isinstance(item, bytes):
                    continue
                if part in (1, 3, 8):
                    names[part] = item.decode()
                else:
                    parts[part] = _expr(item)
            # children: range, init, condition, step, result
            node.children = [parts.get(i, Node(kind="const")) for i in (2, 4, 5, 6, 7)]
            node.iter_vars = tuple(names[i] for i in (1, 8) if names.get(i))
            node.accu_var = names.get(3, "")
    return node


def decode(serialized: bytes) -> tuple[Node, dict[int, int]]:
    """The expression tree of a serialized CheckedExpr (in an Any) and its node offsets."""
    checked = next((v for n, v in _fields(serialized) if n == 2 and isinstance(v, bytes)), b"")
    root, positions = Node(kind="const"), {}
    for number, value in _fields(checked):
        if number == 4 and isinstance(value, bytes):
            root = _expr(value)
        elif number == 5 and isinstance(value, bytes):
            for part, entry in _fields(value):
                if part == 4 and isinstance(entry, bytes):
                    pair = dict(_fields(entry))
                    key, offset = pair.get(1, 0), pair.get(2, 0)
                    if isinstance(key, int) and isinstance(offset, int):
                        positions[key] = offset
    return root, positions


# The estimate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """At most `k * N + e * E + c`: N the size of the input, E of the element a comprehension
    is at (summed over its iterations, the elements are at most the whole range); `k` is inf
    past linear."""

    k: float = 0.0
    c: float = 1.0
    e: float = 0.0

    def __add__(self, other: Size) -> Size:
        return Size(self.k + other.k, self.c + other.c, self.e + other.e)

    def __sub__(self, other: Size) -> Size:
        return Size(
            max(0.0, self.k - other.k), max(0.0, self.c - other.c), max(0.0, self.e - other.e)
        )

    def times(self, other: Size) -> Size:
        if (self.k or self.e) and (other.k or other.e):
            return Size(math.inf, math.inf)
        return Size(
            self.k * other.c + other.k * self.c,
            self.c * other.c,
            self.e * other.c + other.e * self.c,
        )

    def scaled(self, factor: float) -> Size:
        return Size(self.k * factor, self.c * factor, self.e * factor)

    def bounded(self, element: Size) -> Size:
        """The same bound with the element replaced by what it is at most."""
        return Size(self.k + self.e * element.k, self.c + self.e * element.c)


ONE = Size(0, 1)
INPUT = Size(1, 0)
ELEMENT = Size(0, 0, 1)
# Functions whose result is a small scalar whatever their arguments (the work is counted apart),
# Kubernetes' libraries (validate.cel) among them: their values (a quantity, an address, a
# version) are at most the size of the text they were read from, and what they answer is a
# number or a bool.
SCALAR = frozenset(
    {
        "size", "matches", "startsWith", "endsWith", "contains", "indexOf", "lastIndexOf",
        "isSorted", "_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_&&_", "_||_", "!_",
        "@in", "int", "uint", "double", "bool", "duration", "timestamp", "type", "has",
        "@not_strictly_false", "_-_", "_*_", "_/_", "_%_", "-_", "sum", "min", "max",
        "isQuantity", "isInteger", "asInteger", "asApproximateFloat", "sign", "compareTo",
        "isLessThan", "isGreaterThan", "isURL", "getPort", "isIP", "isCIDR", "ip.isCanonical",
        "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast",
        "isGlobalUnicast", "containsIP", "containsCIDR", "prefixLength", "isSemver", "major",
        "minor", "patch", "sets.contains", "sets.equivalent", "sets.intersects",
    }
)  # fmt: skip


class Estimator:
    """Walks one expression; `variables` holds the sizes of the policy's earlier variables."""

    def __init__(self, positions: Mapping[int, int], variables: Mapping[str, Size]) -> None:
        self.positions = positions
        self.variables = variables
        self.cost = 0.0
        self.element = Size(0, 0)  # what the current comprehension's element is at most
        self.counting = True

    def fail(self, node: Node, message: str) -> CostError:
        return CostError(message, self.positions.get(node.id))

    def check(self, node: Node, size: Size) -> Size:
        whole = size.bounded(self.element)
        if math.isinf(whole.k) or math.isnan(whole.k):
            raise self.fail(node, "builds a value that grows with the square of its input")
        if whole.k > MAX_GROWTH:
            raise self.fail(
                node, f"builds a value up to {whole.k:,.0f} times its input (limit {MAX_GROWTH})"
            )
        if whole.c > MAX_SIZE:
            raise self.fail(
                node,
                f"builds a value of up to {_count(whole.c)} bytes or items (limit {MAX_SIZE:,})",
            )
        return size

    def work(self, node: Node, amount: Size, repeat: float) -> None:
        if not self.counting:
            return
        # Only work that does not scale with the input is limited (the input is already read).
        self.cost += amount.c * repeat
        if self.cost > MAX_COST:
            raise self.fail(
                node,
                f"may take over {MAX_COST:,} steps in one evaluation"
                + (f" (this part runs up to {repeat:,.0f} times)" if repeat > 1 else ""),
            )

    def size(self, node: Node, scope: Mapping[str, Size], repeat: float = 1) -> Size:
        self.work(node, ONE, repeat)
        kind = node.kind
        if kind == "const":
            return Size(0, node.text or 1)
        if kind == "ident":
            if node.name in scope:
                return scope[node.name]
            if node.name == "variables":
                return sum(self.variables.values(), ONE)
            return INPUT if node.name in INPUTS else ONE
        if kind == "select":
            operand = node.children[0]
            if operand.kind == "ident" and operand.name == "variables" and "variables" not in scope:
                return self.variables.get(node.name, ONE)
            return self.size(operand, scope, repeat)
        if kind in ("list", "struct"):
            total = Size(0, len(node.children) + 1)
            for child in node.children:
                total = total + self.size(child, scope, repeat)
            return self.check(node, total)
        if kind == "comprehension":
            return self._comprehension(node, scope, repeat)
        return self._call(node, scope, repeat)

    def _call(self, node: Node, scope: Mapping[str, Size], repeat: float) -> Size:
        args = [self.size(child, scope, repeat) for child in node.children]
        name = node.name
        total = sum(args, Size(0, 0))
        result: Size
        if name == "replace" and len(args) >= 3:
            old, new = node.children[1], node.children[2]
            if old.kind == "const" and old.text and new.kind == "const":
                result = args[0].scaled(max(1, math.ceil((new.text or 0) / old.text)))
            else:  # an empty or computed pattern may match between every two characters
                result = args[0].times(args[2] + ONE) + args[2]
        elif name == "join" and args:
            result = args[0].times(args[1] + ONE) if len(args) > 1 else args[0]
        elif name in ("format", "quote", "split", "string", "bytes"):
            result = total.scaled(6)  # escapes (\u1234) and separators, at worst
        elif name in SCALAR:
            result = ONE
        elif name == "_?_:_" and len(args) == 3:
            result = Size(
                max(args[1].k, args[2].k), max(args[1].c, args[2].c), max(args[1].e, args[2].e)
            )
        elif name == "_[_]" and args:
            result = args[0]
        else:
            result = total
        self.check(node, result)
        if name not in ("_&&_", "_||_", "_?_:_", "@not_strictly_false"):
            self.work(node, total + result, repeat)
        return result

    def _comprehension(self, node: Node, scope: Mapping[str, Size], repeat: float) -> Size:
        iter_range, init, condition, step, result = node.children
        items = self.size(iter_range, scope, repeat).bounded(self.element)
        start = self.size(init, scope, repeat).bounded(self.element)
        # All comprehensions of one evaluation share the engine's iteration budget.
        count = float(ITERATIONS) if items.k else min(float(ITERATIONS), items.c)
        inner_repeat = min(float(ITERATIONS), repeat * max(count, 1))
        # Inside, the enclosing element is fixed: only this comprehension's element varies.
        outer = {name: size.bounded(self.element) for name, size in scope.items()}
        inner = {**outer, **dict.fromkeys(node.iter_vars, ELEMENT)}
        saved, self.element = self.element, items
        try:
            before = self.size(step, {**inner, node.accu_var: start}, inner_repeat)
            # How the accumulator grows: the step's size with it `probe` larger.
            probe = Size(0, 1_000_000)
            self.counting, counting = False, self.counting
            try:
                after = self.size(step, {**inner, node.accu_var: start + probe}, inner_repeat)
            finally:
                self.counting = counting
            if after.k > before.k or after.e > before.e or after.c - before.c > probe.c:
                raise self.fail(
                    node, "accumulates a value that grows geometrically with each iteration"
                )
            grown = before - start
            # Over all iterations the elements add up to the range, and an input range has
            # at most one element per byte of input.
            count_k, count_c = (items.k, 0.0) if items.k else (0.0, count)
            accumulated = start + Size(
                grown.k * count + grown.e * items.k + grown.c * count_k,
                grown.c * count_c + grown.e * items.c,
            )
            self.check(node, accumulated)
            self.size(condition, {**inner, node.accu_var: accumulated}, inner_repeat)
        finally:
            self.element = saved
        value = self.size(result, {**outer, node.accu_var: accumulated}, repeat)
        return self.check(node, value)


def _count(value: float) -> str:
    return f"{value:,.0f}" if value < 1e15 else f"{value:.1e}"


def estimate(serialized: bytes, variables: Mapping[str, Size]) -> Size:
    """The size of the expression's value; raises CostError when it is over a limit."""
    root, positions = decode(serialized)
    return Estimator(positions, variables).size(root, {})
