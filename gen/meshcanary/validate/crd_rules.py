"""CustomResourceDefinition validation rules (`x-kubernetes-validations`), evaluated offline as
the API server evaluates them when an object is created.

A rule is a CEL expression on a node of a CRD's schema (OpenAPI v3, or the JSON Schema
`catalog` makes of it): `self` is the value at that node, and the rule applies only where the
node is present and not null. Before the rules run the object is made what the API server
makes of it: fields the schema does not name are dropped, nulls of fields that are not
nullable too, and `default`s fill what is missing. What `self` holds follows the schema:
properties by name, escaped where CEL needs it (`namespace` is `__namespace__`, `a-b` is
`a__dash__b`), `additionalProperties` as a map, `number`s as doubles, int-or-string as
either; at the root of a resource (and of an embedded one) `metadata` holds only `name` and
`generateName`; a `byte` string is bytes. Rules on `allOf` branches apply to the node they
constrain.

A rule that returns false is a finding at the field it names: its `fieldPath`, else the node.
Its message is what `messageExpression` gives (a non-empty string of one line), else
`message`, else "failed rule: <rule>". A rule that fails while it runs is a finding saying
why. Transition rules (those that read `oldSelf`) need the object as it was: offline there
is none, so, as on a create, they are skipped, unless `optionalOldSelf` is set, when they
run with `oldSelf` empty (`optional.none()`). `reason` does not change the finding (to the
API server it is the kind of error). An object with a field of the wrong type (schema
validation reports it) is not checked further, as the API server does not check it.

Findings carry the rule ID `schema`, as schema errors do: to the API server the rules are
part of the schema, and they are enforced at the same step, with the same errors. Each rule
is compiled once, when a value first reaches its node (most nodes with rules are absent from
most objects: a run that meets none never loads the CEL engine), an object is read once
however many rules it meets, and the rules of one node first run as one expression (a value
that passes them all costs one evaluation).
Rules run in this process, within the engine's budget of 10,000 comprehension iterations
per evaluation; unlike policies they are neither cost-estimated nor run in a worker that
can be killed: the shipped CRDs' rules are known, and a `--crd` file is the project's own.
Kubernetes' CEL libraries and what differs offline: `validate.cel`. Not done: list-type
`set` and `map` equality and concatenation (they compare as ordered lists); `date`,
`date-time` and `duration` formats stay strings (the engine cannot take timestamps as input).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.problem import Problem
from meshcanary.validate import problem

# CEL's reserved words: a property so named is `__<word>__` in a rule.
_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_ESCAPABLE = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*")
_TO_ESCAPE = re.compile(r"__|[.\-/]")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]  # as `catalog.from_openapi` writes it
_INT64 = (-(2**63), 2**63 - 1)
_SHOWN = 120  # characters of a rule quoted in a hint
_FIELD_PATH = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")
_ROOT_PROPERTIES: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}},
    },
}


def escape(name: str) -> str | None:
    """A property's name as a CEL rule reads it; None when no rule can read it."""
    if name in _RESERVED:
        return f"__{name}__"
    if not _ESCAPABLE.fullmatch(name):
        return None
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], name)


@dataclass(frozen=True)
class Compiled:
    """One rule, compiled: `program` is None when it is skipped (`error` says if it failed)."""

    source: str
    program: Any = None
    compiled: str = ""  # the text `program` was compiled from
    message: str = ""  # `message`, else the API server's default
    message_program: Any = None
    field_path: tuple[str, ...] = ()
    hint: str = ""
    error: str = ""  # why it does not compile
    transition: bool = False  # it reads oldSelf, which offline never has a value


@dataclass
class _Task:
    """The rules of one node, and the value they see."""

    plan: _Plan
    view: Any
    path: list[str | int]


class _WrongType(Exception):
    """A value of another type than its schema's: the API server stops before the rules."""


# Compilation ------------------------------------------------------------------------------

_engines: dict[str, Any] = {}
_compiled: dict[tuple[str, str, bool, str, str], Compiled] = {}


def _engine(name: str) -> Any:
    """The CEL environment of rules (`self`), or of transition rules (`self`, `oldSelf`)."""
    if name not in _engines:
        from meshcanary.validate import cel  # the engine loads on the first rule, not before

        _engines["self"] = cel.Engine(["self"])
        _engines["oldSelf"] = cel.Engine(["self", "oldSelf"])
    return _engines[name]


def compile_rule(rule: Mapping[str, Any]) -> Compiled:
    """One `x-kubernetes-validations` entry, compiled once whatever the schema it is in."""
    source = rule.get("rule")
    message = rule.get("message")
    expression = rule.get("messageExpression")
    optional = rule.get("optionalOldSelf") is True
    path = rule.get("fieldPath")
    key = (
        str(source),
        str(message or ""),
        optional,
        str(expression or ""),
        str(path or ""),
    )
    if key not in _compiled:
        _compiled[key] = _compile(source, message, expression, optional, path)
    return _compiled[key]


def _compile(source: Any, message: Any, expression: Any, optional: bool, path: Any) -> Compiled:
    from meshcanary.validate import cel

    if not isinstance(source, str) or not source.strip():
        return Compiled(str(source or ""), error="" if source == "" else "rule is not a string")
    given = message.strip() if isinstance(message, str) else ""
    said = given or f"failed rule: {source.strip()}"
    compiled, transition = source, False
    program = _try(source, "bool", "self")
    if isinstance(program, cel.CompileError):
        if isinstance(_try(source, "bool", "oldSelf"), cel.CompileError):
            return Compiled(source, message=said, error=str(program))
        if not optional:
            return Compiled(source, message=said, transition=True)
        compiled, transition = _without_old_self(source), True
        program = _try(compiled, "bool", "self")
        if isinstance(program, cel.CompileError):
            return Compiled(source, message=said, error=str(program))
    message_program = None
    if isinstance(expression, str) and expression.strip():
        found = _try(expression, "string", "self")
        if isinstance(found, cel.CompileError) and optional:
            found = _try(_without_old_self(expression), "string", "self")
        if not isinstance(found, cel.CompileError):  # else `message`, as when it fails to run
            message_program = found
    return Compiled(
        source,
        program,
        compiled,
        said,
        message_program,
        _field_path(path),
        f"rule: {_short(source)}" if given else "",
        transition=transition,
    )


def _try(source: str, expect: str, engine: str) -> Any:
    from meshcanary.validate import cel

    try:
        return _engine(engine).compile(source, expect)
    except cel.CompileError as exc:
        return exc


def _without_old_self(source: str) -> str:
    # optionalOldSelf on a create: oldSelf is there, and empty. The newlines keep a trailing
    # `//` comment from swallowing the closing parentheses.
    return f"cel.bind(oldSelf, optional.none(), (\n{source}\n))"


def _field_path(path: Any) -> tuple[str, ...]:
    """The keys of a rule's `fieldPath` (`.spec.ports`, `.labels['a.b/c']`); () if not one."""
    if not isinstance(path, str) or not path:
        return ()
    keys, position = [], 0
    for match in _FIELD_PATH.finditer(path):
        if match.start() != position:
            return ()
        keys.append(match[1] if match[1] is not None else re.sub(r"\\(.)", r"\1", match[2]))
        position = match.end()
    return tuple(keys) if position == len(path) else ()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def rules_in(schema: Any) -> Iterator[Mapping[str, Any]]:
    """Every `x-kubernetes-validations` entry of a schema (for inventories and tests)."""
    if isinstance(schema, list):
        for item in schema:
            yield from rules_in(item)
    elif isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "x-kubernetes-validations" and isinstance(value, list):
                yield from (entry for entry in value if isinstance(entry, Mapping))
            elif key not in ("default", "enum", "example"):
                yield from rules_in(value)


# Plans: what the walk needs of a schema, read once -------------------------------------------

_ABSENT: Any = object()


@dataclass
class _Plan:
    """One schema node (with its allOf branches): its type, rules and children."""

    kind: str = ""  # object, array, string, bytes, integer, number, boolean, int-or-string; "" any
    rules: tuple[Mapping[str, Any], ...] = ()  # its `x-kubernetes-validations` entries
    fields: tuple[_Field, ...] = ()  # an object's properties
    additional: _Plan | None = None  # a map's values
    items: _Plan | None = None  # a list's
    below: bool = False  # whether it or a node under it has rules
    # The rules that run (or are reported as broken), compiled when a value first reaches
    # the node; None until then.
    runnable: tuple[Compiled, ...] | None = None
    # All its rules in one expression, true when each is: one evaluation for a valid value.
    conjunction: Any = _ABSENT


@dataclass(frozen=True)
class _Field:
    name: str
    escaped: str | None  # None: no rule can read it
    plan: _Plan
    nullable: bool
    default: Any = _ABSENT


_plans: dict[int, tuple[Any, _Plan]] = {}


def _plan_of(schema: Mapping[str, Any]) -> _Plan:
    cached = _plans.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _plans[id(schema)] = (schema, _plan([schema], resource_root=True))
    return cached[1]


def has_rules(schema: Mapping[str, Any]) -> bool:
    """Whether any node of `schema` carries `x-kubernetes-validations`."""
    return _plan_of(schema).below


def _plan(nodes: list[Mapping[str, Any]], *, resource_root: bool = False) -> _Plan:
    """The plan of a value `nodes[0]` describes (the others only constrain it)."""
    node = nodes[0]
    every = [branch for schema in nodes for branch in _branches(schema)]
    kind, _ = _kind(node)
    plan = _Plan(kind, tuple(rule for schema in every for rule in _rules(schema)))
    properties: dict[str, Any] = {}
    for schema in every:
        if isinstance(schema.get("properties"), Mapping):
            for name, child in schema["properties"].items():
                properties.setdefault(name, child)
    additional = _children(every, "additionalProperties")
    root: frozenset[str] = frozenset()
    if resource_root or node.get("x-kubernetes-embedded-resource") is True:
        properties, root = {**properties, **_ROOT_PROPERTIES}, frozenset(_ROOT_PROPERTIES)
    if kind == "object" or (not kind and properties):
        plan.kind = "object"
        if properties or not additional:
            plan.fields = tuple(
                _field(name, child, [] if name in root else _children(every, "properties", name))
                for name, child in properties.items()
                if isinstance(child, Mapping)
            )
        else:
            plan.additional = _plan(additional)
    elif kind == "array":
        items = _children(every, "items")
        plan.items = _plan(items) if items else None
    elif kind == "string" and node.get("format") == "byte":
        plan.kind = "bytes"
    children = (*(f.plan for f in plan.fields), plan.additional, plan.items)
    plan.below = bool(plan.rules) or any(child.below for child in children if child is not None)
    return plan


def _field(name: str, schema: Mapping[str, Any], others: list[Mapping[str, Any]]) -> _Field:
    schemas = [schema, *(other for other in others if other is not schema)]
    default = schema.get("default", _ABSENT)
    return _Field(name, escape(name), _plan(schemas), _kind(schema)[1], default)


def _rules(node: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    entries = node.get("x-kubernetes-validations")
    return tuple(
        entry
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, Mapping)
    )


def _runnable(plan: _Plan) -> tuple[Compiled, ...]:
    """The plan's rules that run or are reported as broken, compiled on the first call."""
    if plan.runnable is None:
        compiled = (compile_rule(entry) for entry in plan.rules)
        plan.runnable = tuple(rule for rule in compiled if rule.program is not None or rule.error)
    return plan.runnable


def _kind(node: Mapping[str, Any]) -> tuple[str, bool]:
    """The node's type ("" when any) and whether null is allowed."""
    declared = node.get("type")
    nullable = node.get("nullable") is True
    if isinstance(declared, list):
        nullable = nullable or "null" in declared
        declared = next((t for t in declared if t != "null"), "")
    if node.get("x-kubernetes-int-or-string") or (
        not declared and node.get("anyOf") == _INT_OR_STRING
    ):
        return "int-or-string", nullable
    return (declared if isinstance(declared, str) else ""), nullable


def _branches(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The node and its allOf branches (theirs too): every schema that constrains its value."""
    found = [node]
    for branch in node.get("allOf") or ():
        if isinstance(branch, Mapping):
            found += _branches(branch)
    return found


def _children(nodes: list[Mapping[str, Any]], key: str, name: str | None = None) -> list[Any]:
    """The schemas, among `nodes`' `key` (properties[name], items...), of one child."""
    found = []
    for node in nodes:
        child = node.get(key)
        if name is not None:
            child = child.get(name) if isinstance(child, Mapping) else None
        if isinstance(child, Mapping):
            found.append(child)
    return found


# What `self` is -----------------------------------------------------------------------------


def _walk(value: Any, plan: _Plan, path: list[str | int], tasks: list[_Task], seen: bool) -> Any:
    """What a rule sees of `value` (at `path`), when a rule at or above it reads it (`seen`);
    on the way, the rules of the nodes under it are queued on `tasks`."""
    here = seen or bool(plan.rules)
    view: Any = None
    kind = plan.kind
    if kind == "object":
        if not isinstance(value, dict):
            raise _WrongType
        view = _object(value, plan, path, tasks, here)
    elif kind == "array":
        if not isinstance(value, list):
            raise _WrongType
        items = plan.items
        if items is None:
            view = value if here else None
        elif here or items.below:
            seen_items = []
            for index, item in enumerate(value):
                path.append(index)
                seen_items.append(
                    _walk(item, items, path, tasks, here) if item is not None else None
                )
                path.pop()
            view = seen_items if here else None
    else:
        view = _scalar(value, kind)
    if plan.rules:
        tasks.append(_Task(plan, view, list(path)))
    return view


def _object(
    value: dict[str, Any], plan: _Plan, path: list[str | int], tasks: list[_Task], here: bool
) -> dict[str, Any] | None:
    view: dict[str, Any] | None = {} if here else None
    values = plan.additional
    if values is not None:
        if here or values.below:
            for name, item in value.items():
                path.append(name)
                seen = _walk(item, values, path, tasks, here) if item is not None else None
                path.pop()
                if view is not None:
                    view[str(name)] = seen
        return view
    for field in plan.fields:
        if not here and not field.plan.below:
            continue
        child = value.get(field.name, _ABSENT)
        if child is None and not field.nullable:
            child = _ABSENT  # the API server prunes it, then defaults it
        if child is _ABSENT:
            if field.default is _ABSENT:
                continue
            child = field.default  # only read: no copy needed
        seen = None
        if child is not None:
            path.append(field.name)
            seen = _walk(child, field.plan, path, tasks, here)
            path.pop()
        if view is not None and field.escaped is not None:
            view[field.escaped] = seen
    return view


def _scalar(value: Any, kind: str) -> Any:
    """A scalar as a rule sees it; _WrongType when it is not of the schema's type."""
    if kind == "string":
        accepted = isinstance(value, str)
    elif kind == "bytes":  # base64 text; what is not stays text, as schema validation says
        if not isinstance(value, str):
            raise _WrongType
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            return value
    elif kind == "boolean":
        accepted = isinstance(value, bool)
    elif not kind:
        return value
    else:
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "number":
            accepted = number
            value = float(value) if number else value
        elif kind == "integer":
            accepted = number and isinstance(value, int)
        else:  # int-or-string
            accepted = isinstance(value, str) or (number and isinstance(value, int))
        if accepted and isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            accepted = False  # no Kubernetes integer is that large
    if not accepted:
        raise _WrongType
    return value


# Evaluation -------------------------------------------------------------------------------


def check(schema: Mapping[str, Any], obj: Any, resource: Resource) -> list[Problem]:
    """The findings of `schema`'s rules on `obj` (the data of `resource`)."""
    plan = _plan_of(schema)
    if not plan.below:
        return []
    tasks: list[_Task] = []
    try:
        _walk(obj, plan, [], tasks, False)
    except _WrongType:
        return []
    problems: list[Problem] = []
    for task in tasks:
        _evaluate(task, resource, problems)
    return problems


def _conjunction(plan: _Plan, rules: tuple[Compiled, ...]) -> Any:
    """The plan's `rules` joined by `&&`, compiled once; None when there is no use for it."""
    if plan.conjunction is _ABSENT:
        plan.conjunction = None
        texts = [rule.compiled for rule in rules if rule.program is not None]
        if len(texts) > 1 and len(texts) == len(rules):
            # Parenthesised on lines of their own: a rule may end in a `//` comment.
            found = _try(" && ".join(f"(\n{text}\n)" for text in texts), "bool", "self")
            if not isinstance(found, Exception):  # too deep, say: one rule at a time
                plan.conjunction = found
    return plan.conjunction


def _evaluate(task: _Task, resource: Resource, problems: list[Problem]) -> None:
    """The findings of the rules of one node on the value there, added to `problems`."""
    rules = _runnable(task.plan)
    if not rules:
        return  # transition rules only: offline, as on a create, they do not run
    from meshcanary.validate import cel

    engine = _engine("self")
    try:
        bound = engine.bind({"self": task.view})
    except cel.EvaluationError as exc:
        for rule in rules:
            problems.append(
                problem(resource, task.path, f"{exc} evaluating rule: {_subject(rule)}")
            )
        return
    # Most values pass every rule: one evaluation of them all says so.
    conjunction = _conjunction(task.plan, rules) if len(rules) > 1 else rules[0].program
    if conjunction is not None and engine.holds(conjunction, bound):
        return
    for rule in rules:
        if rule.error:
            text = f"rule compile error: {rule.error}"
            problems.append(problem(resource, task.path, text, rule.hint))
            continue
        try:
            result = engine.run(rule.program, bound)
        except cel.EvaluationError as exc:
            problems.append(problem(resource, task.path, _failure(str(exc), rule), rule.hint))
            continue
        if result is True:
            continue
        if result is not False:
            text = f"returned {result!r}, not a bool, evaluating rule: {_subject(rule)}"
            problems.append(problem(resource, task.path, text, rule.hint))
            continue
        message = rule.message
        if rule.message_program is not None:
            try:
                found = engine.run(rule.message_program, bound)
            except cel.EvaluationError:  # as in the API server: `message` stands
                found = None
            if isinstance(found, str) and found.strip() and "\n" not in found.strip():
                message = found.strip()
        path = [*task.path, *rule.field_path]
        problems.append(problem(resource, path, message, rule.hint))


def _subject(rule: Compiled) -> str:
    return rule.message.removeprefix("failed rule: ")


def _failure(error: str, rule: Compiled) -> str:
    if error.startswith("no such overload") or "no matching overload" in error:
        return (
            f"'{error}': call arguments did not match a supported operator, function or macro "
            f"signature for rule: {_subject(rule)}"
        )
    return f"{error} evaluating rule: {_subject(rule)}"
