"""ValidatingAdmissionPolicies and their bindings: loaded, compiled once, evaluated offline."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError, MeshcanaryError
from meshcanary.manifest import JsonPath, Parsed, Resource, parse_text, pointer
from meshcanary.policies import _worker
from meshcanary.policies.match import Match, resource_plural
from meshcanary.positions import line_column
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.rules import suppressions

API_VERSION = "admissionregistration.k8s.io/v1"
POLICY_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"
# Wall-clock budget of one policy over one `evaluate` call, on top of the engine's own
# 10,000-iteration limit per expression: a policy that is merely slow cannot stall CI either.
# The evaluation runs in a worker process that is killed at the budget (`_worker`).
DEFAULT_TIMEOUT = 5.0
TIMEOUT_VARIABLE = "MESHCANARY_POLICY_TIMEOUT"  # another budget, in seconds

SEVERITY_OF_ACTION = {"Deny": Severity.ERROR, "Warn": Severity.WARNING, "Audit": Severity.INFO}
PreviousKey = ResourceRef  # how `previous` is keyed

# The model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any  # the engine's compiled program
    path: JsonPath  # where the expression is written in the policy
    size: Any = None  # the estimated bound of its value (`_cost.Size`)


@dataclass(frozen=True)
class Validation:
    index: int
    expression: Expression
    message: str
    message_expression: Expression | None
    reason: str
    field_path: JsonPath | None


@dataclass(frozen=True)
class Binding:
    name: str
    match: Match
    severity: Severity  # the most severe of its validationActions


@dataclass(frozen=True)
class Policy:
    name: str
    resource: Resource
    match: Match
    fail_closed: bool  # failurePolicy Fail (the default): an evaluation error is a finding
    conditions: tuple[tuple[str, Expression], ...]
    variables: tuple[tuple[str, Expression], ...]
    validations: tuple[Validation, ...]
    uses_objects: bool
    bindings: tuple[Binding, ...] = ()

    def severity_for(self, resource: Resource, operation: str) -> Severity | None:
        """The severity findings on `resource` get, or None when no binding selects it."""
        if not self.bindings:
            return Severity.ERROR
        chosen = [b.severity for b in self.bindings if b.match.matches(resource, operation)]
        return max(chosen, key=lambda s: s.rank) if chosen else None


def _field_path(text: str) -> JsonPath:
    """A VAP `fieldPath` (`spec.servers[0].hosts`, `metadata.labels['app']`) as a path."""
    path: list[str | int] = []
    for name, index, quoted in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]", text):
        if name:
            path.append(name)
        elif index:
            path.append(int(index))
        else:
            path.append(quoted)
    return path


# Loading ----------------------------------------------------------------------------------


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_documents(folders: Sequence[Path], root: Path) -> Parsed:
    """Every resource in `*.yaml` directly inside `folders` (sub-folders such as tests/ are not read)."""
    from meshcanary.source import read_text

    parsed = Parsed()
    for folder in folders:
        if not folder.is_dir():
            what = "a file" if folder.is_file() else "no such folder"
            if folder.exists() and not folder.is_file():
                what = "not a folder"
            raise InputError(
                [
                    Problem(
                        Location(_display(folder, root)),
                        f"--policies needs a folder of policy files; this is {what}",
                        "give the folder that holds the ValidatingAdmissionPolicy files",
                    )
                ]
            )
        for path in sorted(folder.glob("*.yaml")):
            try:  # a FIFO, a folder named *.yaml, bad UTF-8 or a huge file: located, not read
                text = read_text(path, _display(path, root))
            except InputError as exc:
                parsed.problems.extend(exc.problems)
                continue
            parse_text(text, _display(path, root), parsed)
    if parsed.problems:
        raise InputError(parsed.problems)
    return parsed


class _Compiler:
    def __init__(self) -> None:
        from meshcanary.policies import _cel  # the engine loads here, and only here

        self.cel = _cel
        self.engine = _cel.Engine()

    def compile(
        self,
        resource: Resource,
        path: JsonPath,
        expect: str,
        variables: Sequence[tuple[str, Expression]] = (),
    ) -> Expression:
        """Compile the expression at `path`, and refuse it when its estimate is over a limit."""
        source = resource.get(*path)
        if not isinstance(source, str) or not source.strip():
            raise InputError(
                [Problem(resource.location(path), "expression is empty", rule="policy")]
            )
        try:
            program = self.engine.compile(source, expect)
        except self.cel.CompileError as exc:
            name = resource.name
            raise InputError(
                [
                    Problem(
                        resource.location(path),
                        f"policy {name}: {pointer(path)}: CEL: {exc}",
                        rule="policy",
                        path=pointer(path),
                    )
                ]
            ) from None
        try:
            size = self.engine.estimate(program, {name: e.size for name, e in variables})
        except self.cel.CostError as exc:
            raise InputError([self._over_limit(resource, path, source, exc)]) from None
        except (ValueError, IndexError):  # an engine whose output the estimate cannot read
            size = None
        return Expression(source, program, tuple(path), size)

    @staticmethod
    def _over_limit(resource: Resource, path: JsonPath, source: str, exc: Exception) -> Problem:
        offset = getattr(exc, "offset", None)
        where = ""
        if offset is not None and 0 <= offset < len(source):
            line, column = line_column(source, offset)
            excerpt = source[offset : offset + 40].split("\n")[0]
            where = f" at {line}:{column} of the expression (`{excerpt}`)"
        return Problem(
            resource.location(path),
            f"policy {resource.name}: {pointer(path)}: CEL cost limit: {exc}{where}",
            "build smaller values: avoid chains of replace() or concatenations that double, "
            "and work on fields rather than whole objects inside loops",
            rule="policy",
            path=pointer(path),
        )


def _check_variable_names(resource: Resource, expression: Expression, known: Sequence[str]) -> None:
    for used in re.findall(r"\bvariables\.([A-Za-z_][A-Za-z0-9_]*)", expression.source):
        if used not in known:
            raise InputError(
                [
                    Problem(
                        resource.location(expression.path),
                        f"policy {resource.name}: {pointer(expression.path)}: CEL: "
                        f"undeclared reference to 'variables.{used}' (declared before it: "
                        f"{', '.join(known) or 'none'})",
                        rule="policy",
                    )
                ]
            )


def _read_policy(resource: Resource, compiler: _Compiler) -> Policy:
    spec = resource.get("spec") or {}

    def problem(path: JsonPath, message: str) -> InputError:
        return InputError(
            [Problem(resource.location(path), f"policy {resource.name}: {message}", rule="policy")]
        )

    if spec.get("paramKind") is not None:
        raise problem(
            ["spec", "paramKind"],
            "paramKind is not supported offline; write the values into the expressions",
        )
    conditions: list[tuple[str, Expression]] = []
    for i, condition in enumerate(spec.get("matchConditions") or []):
        expression = compiler.compile(
            resource, ["spec", "matchConditions", i, "expression"], "bool"
        )  # conditions run before variables and cannot use them
        conditions.append((str(condition.get("name", i)), expression))
    variables: list[tuple[str, Expression]] = []
    for i, variable in enumerate(spec.get("variables") or []):
        expression = compiler.compile(
            resource, ["spec", "variables", i, "expression"], "dyn", variables
        )
        _check_variable_names(resource, expression, [n for n, _ in variables])
        variables.append((str(variable.get("name")), expression))
    known = [n for n, _ in variables]
    validations: list[Validation] = []
    for i, item in enumerate(spec.get("validations") or []):
        base: list[str | int] = ["spec", "validations", i]
        expression = compiler.compile(resource, [*base, "expression"], "bool", variables)
        _check_variable_names(resource, expression, known)
        message_expression = None
        if item.get("messageExpression"):
            message_expression = compiler.compile(
                resource, [*base, "messageExpression"], "string", variables
            )
            _check_variable_names(resource, message_expression, known)
        raw_path = item.get("fieldPath")
        validations.append(
            Validation(
                i,
                expression,
                str(item.get("message") or ""),
                message_expression,
                str(item.get("reason") or ""),
                _field_path(raw_path) if isinstance(raw_path, str) else None,
            )
        )
    if not validations:
        raise problem(["spec"], "no validations (audit annotations are not supported offline)")
    sources = [e.source for _, e in (*conditions, *variables)]
    sources += [v.expression.source for v in validations]
    sources += [v.message_expression.source for v in validations if v.message_expression]
    return Policy(
        name=resource.name,
        resource=resource,
        match=Match.read(spec.get("matchConstraints"), rules_required=True),
        fail_closed=spec.get("failurePolicy", "Fail") != "Ignore",
        conditions=tuple(conditions),
        variables=tuple(variables),
        validations=tuple(validations),
        uses_objects=any(re.search(r"\bobjects\b", s) for s in sources),
    )


def _read_binding(resource: Resource) -> tuple[str, Binding]:
    spec = resource.get("spec") or {}
    if spec.get("paramRef") is not None:
        raise InputError(
            [
                Problem(
                    resource.location(["spec", "paramRef"]),
                    f"binding {resource.name}: paramRef is not supported offline",
                    rule="policy",
                )
            ]
        )
    actions = spec.get("validationActions") or []
    severities = [SEVERITY_OF_ACTION[a] for a in actions if a in SEVERITY_OF_ACTION]
    return str(spec.get("policyName", "")), Binding(
        resource.name,
        Match.read(spec.get("matchResources"), rules_required=False),
        max(severities, key=lambda s: s.rank) if severities else Severity.ERROR,
    )


def _schema_problems(resources: Sequence[Resource]) -> list[Problem]:
    from meshcanary.validate import Options
    from meshcanary.validate.embedded import EmbeddedValidator

    # Not strict: the bundled schemas' v1 Validation lacks `fieldPath` (GA since Kubernetes 1.30).
    validator = EmbeddedValidator(Options())
    return [p for r in resources for p in validator.validate(r).problems]


def budget() -> float:
    """The wall-clock budget of a policy: TIMEOUT_VARIABLE when it is set, else DEFAULT_TIMEOUT."""
    text = os.environ.get(TIMEOUT_VARIABLE)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise MeshcanaryError(
            f'{TIMEOUT_VARIABLE}="{text}": expected the seconds each policy may run, such as 5'
        )
    return seconds


def load(folders: Sequence[Path], root: Path, *, timeout: float | None = None) -> PolicySet:
    """Read, schema-check and compile the policies and bindings in `folders`.

    `timeout` is each policy's budget in seconds (by default, `budget()`).
    """
    timeout = budget() if timeout is None else timeout
    _worker.start()  # it loads the engine while the policies are read and compiled here
    parsed = read_documents(folders, root)
    ours = [
        r
        for r in parsed.resources
        if r.api_version == API_VERSION and r.kind in (POLICY_KIND, BINDING_KIND)
    ]
    # Anything else (a Kyverno policy, a v1beta1 VAP) would otherwise be ignored in silence.
    problems = [
        Problem(
            r.location(["kind"]),
            f"{r.kind or 'a document without kind'} ({r.api_version or 'no apiVersion'}) is not "
            f"a {POLICY_KIND} or {BINDING_KIND} ({API_VERSION})",
            f"only {API_VERSION} policies and bindings belong in a policy folder",
            rule="policy",
        )
        for r in parsed.resources
        if r not in ours
    ]
    problems += _schema_problems(ours)
    if problems:
        raise InputError(problems)
    compiler = _Compiler()
    policies: dict[str, Policy] = {}
    for resource in (r for r in ours if r.kind == POLICY_KIND):
        if resource.name in policies:
            raise InputError(
                [
                    Problem(
                        resource.location(["metadata", "name"]),
                        f"policy {resource.name} is defined twice",
                        rule="policy",
                    )
                ]
            )
        policies[resource.name] = _read_policy(resource, compiler)
    bindings: dict[str, list[Binding]] = {}
    for resource in (r for r in ours if r.kind == BINDING_KIND):
        name, binding = _read_binding(resource)
        if name not in policies:
            raise InputError(
                [
                    Problem(
                        resource.location(["spec", "policyName"]),
                        f"binding {resource.name}: no policy named {name!r} in the policy folders",
                        rule="policy",
                    )
                ]
            )
        bindings.setdefault(name, []).append(binding)
    return PolicySet(
        tuple(
            Policy(**{**p.__dict__, "bindings": tuple(bindings.get(p.name, ()))})
            for p in policies.values()
        ),
        timeout,
    )


# Evaluation -------------------------------------------------------------------------------


def key_of(resource: Resource) -> PreviousKey:
    """How `previous` is keyed: the object's identity."""
    return resource.ref


@dataclass
class PolicySet:
    """Compiled policies, ready to evaluate on any number of resource sets."""

    policies: tuple[Policy, ...]
    timeout: float = DEFAULT_TIMEOUT

    def __len__(self) -> int:
        return len(self.policies)

    def only(self, name: str) -> PolicySet:
        """The same set narrowed to one policy (and its bindings)."""
        return PolicySet(tuple(p for p in self.policies if p.name == name), self.timeout)

    def evaluate(
        self,
        resources: Sequence[Resource],
        previous: Mapping[PreviousKey, dict[str, Any]] | None = None,
    ) -> list[Problem]:
        """Findings of every policy on `resources`; `previous` holds the base branch's objects."""
        previous = previous or {}
        objects = _worker.Objects([r.data for r in resources])
        problems: list[Problem] = []
        for policy in self.policies:
            selected = [
                s
                for i, r in enumerate(resources)
                if (s := _select(policy, i, r, previous.get(key_of(r))))
            ]
            if selected:
                problems += _Run(policy, self.timeout).evaluate(objects, selected)
        return sorted(problems, key=Problem.sort_key)


@dataclass(frozen=True)
class _Selected:
    """A resource a policy selects, and what its findings on it are."""

    index: int  # in the resource set
    resource: Resource
    operation: str
    old: dict[str, Any] | None
    severity: Severity


def _select(
    policy: Policy, index: int, resource: Resource, old: dict[str, Any] | None
) -> _Selected | None:
    operation = "UPDATE" if old is not None else "CREATE"
    if not policy.match.matches(resource, operation):
        return None
    severity = policy.severity_for(resource, operation)
    return None if severity is None else _Selected(index, resource, operation, old, severity)


def _code(policy: Policy) -> tuple[_worker.Code, list[Expression]]:
    """The policy as the worker compiles it, and its expressions by the worker's numbers."""
    expressions: list[tuple[Expression, str]] = []

    def number(expression: Expression, expect: str) -> int:
        expressions.append((expression, expect))
        return len(expressions) - 1

    conditions = tuple(number(e, "bool") for _, e in policy.conditions)
    variables = tuple((name, number(e, "dyn")) for name, e in policy.variables)
    validations = tuple(
        (
            v.index,
            number(v.expression, "bool"),
            None if v.message_expression is None else number(v.message_expression, "string"),
        )
        for v in policy.validations
    )
    sources = tuple((e.source, expect) for e, expect in expressions)
    code = _worker.Code(sources, conditions, variables, validations, policy.uses_objects)
    return code, [e for e, _ in expressions]


@dataclass
class _Run:
    """One policy over one resource set."""

    policy: Policy
    timeout: float

    def evaluate(self, objects: _worker.Objects, selected: list[_Selected]) -> list[Problem]:
        policy = self.policy
        code, expressions = _code(policy)
        cases = tuple(
            _worker.Case(s.index, s.old, _request(s.resource, s.operation), self._skipped(s))
            for s in selected
        )
        result = _worker.run(code, objects, cases, self.timeout)
        validations = {v.index: v for v in policy.validations}
        problems: list[Problem] = []
        for position, outcomes in result.outcomes:
            chosen = selected[position]
            for outcome in outcomes:
                if isinstance(outcome, _worker.Denied):
                    problems.append(self._denied(chosen, validations[outcome.validation], outcome))
                elif policy.fail_closed:
                    problems.append(self._failed(chosen, expressions[outcome.expression], outcome))
        if result.stop is not None:
            problems.append(self._stopped(result.stop, selected, expressions))
        return problems

    def _skipped(self, selected: _Selected) -> frozenset[int]:
        ignored = suppressions(selected.resource)
        name = self.policy.name
        return frozenset(
            v.index
            for v in self.policy.validations
            if name in ignored or f"{name}/{v.index}" in ignored
        )

    def _denied(
        self, selected: _Selected, validation: Validation, denied: _worker.Denied
    ) -> Problem:
        resource = selected.resource
        return Problem(
            resource.location(validation.field_path or ()),
            denied.message
            or validation.message
            or f"failed expression: {validation.expression.source}",
            f"reason: {validation.reason}" if validation.reason else "",
            rule=f"{self.policy.name}/{validation.index}",
            severity=selected.severity,
            resource=resource.ref,
            path=pointer(validation.field_path or ()),
        )

    def _failed(
        self, selected: _Selected, expression: Expression, failed: _worker.Failed
    ) -> Problem:
        policy, resource = self.policy, selected.resource
        text = failed.text
        if "Iteration budget exceeded" in text:
            text += " (the limit is 10,000 comprehension iterations per evaluation)"
        return Problem(
            resource.location(),
            f"policy {policy.name}: {pointer(expression.path)} failed: {text}",
            f"failurePolicy is Fail; the expression is at {policy.resource.location(expression.path)}",
            rule=policy.name if failed.validation is None else f"{policy.name}/{failed.validation}",
            severity=selected.severity,
            resource=resource.ref,
        )

    def _stopped(
        self, stop: _worker.Stop, selected: list[_Selected], expressions: list[Expression]
    ) -> Problem:
        """The policy's evaluation did not finish: located at the expression that was running."""
        policy = self.policy
        path = expressions[stop.expression].path if stop.expression is not None else ()
        what = f"policy {policy.name}: {pointer(path)}" if path else f"policy {policy.name}"
        if stop.ended_by is None:
            what += f" stopped after its {self.timeout:g} s budget"
            hint = (
                "make the expression cheaper: no loops over `objects`, no string functions "
                f"over whole values inside loops ({TIMEOUT_VARIABLE} sets the budget)"
            )
        else:
            what += f" ended the process evaluating it ({stop.ended_by})"
            hint = "the CEL engine crashed or the system ran out of memory on this expression"
        return Problem(
            policy.resource.location(path),
            f"{what} on {selected[stop.case].resource.ref}; "
            f"{len(selected) - stop.case} of {len(selected)} resources it selects not checked",
            hint,
            rule=policy.name,
            resource=policy.resource.ref,
        )


def _request(resource: Resource, operation: str) -> dict[str, Any]:
    """The `request` an expression sees: what the API server would be asked to do."""
    group, _, version = resource.api_version.rpartition("/")
    return {
        "kind": {"group": group, "version": version, "kind": resource.kind},
        "resource": {
            "group": group,
            "version": version,
            "resource": resource_plural(resource.kind),
        },
        "name": resource.name,
        "namespace": resource.namespace,
        "operation": operation,
        "userInfo": {},
        "dryRun": True,
    }
