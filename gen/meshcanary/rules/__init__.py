"""Built-in rules: one module per rule, collected in `RULES`, run by `run`.

A rule module has a docstring (its documentation: what, why, how to fix), and:

- `ID`: kebab-case, stable; what suppressions and severity overrides name.
- `SEVERITY`: the default severity.
- `SUMMARY`: one line for listings.
- `HINT`: how to fix it, shown under each finding.
- `RELEASE_HINT` (optional): the hint instead, in that file's terms, when `check` points a
  finding into the release or environment file the field was rendered from.
- `check(scope: Scope) -> Iterator[Finding]`: yields findings; never raises on bad data.
- `SUPPRESSIBLE` (optional, default True): False for a rule the ignore annotation must not
  silence (the one that checks that annotation).

Rules see every resource of one scope (an environment for `check`, all inputs for `lint`), so
a rule can relate a VirtualService to DestinationRules and Deployments.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from meshcanary.manifest import JsonPath, Resource, pointer
from meshcanary.mesh import Kinds
from meshcanary.problem import Problem, Severity
from meshcanary.report import RuleInfo

IGNORE_ANNOTATION = "meshcanary.dev/ignore"


@dataclass(frozen=True)
class Finding:
    """What a rule reports: the resource, the field (a path into it), and why."""

    resource: Resource
    path: JsonPath
    message: str
    hint: str = ""  # overrides the rule's HINT when set
    key: bool = False  # point at the field's key rather than its value


@dataclass(frozen=True)
class Scope:
    """The resources rules look at together."""

    resources: Sequence[Resource]
    # Indexes that several rules share (see mesh.Mesh.of), built once per scope.
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def of_kind(self, *kinds: str) -> list[Resource]:
        """The resources of any of `kinds` (in any API group), in input order."""
        by_kind = Kinds.of(self).by_kind
        if len(kinds) == 1:
            return list(by_kind.get(kinds[0], ()))
        return [r for r in self.resources if r.kind in kinds]


Verdicts = Callable[[Scope], Iterable[tuple[Finding, bool]]]


def verdicts(scope: Scope, judge: Verdicts) -> tuple[list[Finding], list[Finding]]:
    """`judge`'s findings on `scope`, split into those it could check and those it leaves to
    `reference-not-checked`; judged once per scope, for the rule and that one alike."""
    key = f"verdicts:{judge.__module__}.{judge.__qualname__}"
    split = scope.memo.get(key)
    if split is None:
        checked: list[Finding] = []
        unchecked: list[Finding] = []
        for finding, could in judge(scope):
            (checked if could else unchecked).append(finding)
        split = scope.memo[key] = (checked, unchecked)
    return split  # type: ignore[return-value]


class Rule(Protocol):
    ID: str
    SEVERITY: Severity
    SUMMARY: str
    HINT: str
    __doc__: str | None

    def check(self, scope: Scope) -> Iterator[Finding]: ...


# The built-in rules, one module each (kept explicit so the set is reviewed, not discovered).
RULE_MODULES = (
    "backend_exists",
    "backend_selects_one_version",
    "deployment_selector",
    "destination_host_exists",
    "destination_port_required",
    "destination_rule_host",
    "destination_tls_verify",
    "duplicate_resources",
    "gateway_credential",
    "gateway_duplicate_certificate",
    "gateway_exists",
    "gateway_port_on_service",
    "gateway_selector",
    "gateways_conflict",
    "hosts_gateways_agree",
    "ingress_bypasses_subsets",
    "istio_deprecated_field",
    "istio_route_valid",
    "listener_allows_route",
    "mesh_host_conflict",
    "mesh_unweighted",
    "mutable_image_tag",
    "parent_exists",
    "port_name_protocol",
    "reference_granted",
    "reference_not_checked",
    "resource_name",
    "route_protocol_port",
    "route_unreachable",
    "routes_conflict",
    "service_selects_all_versions",
    "service_target_port",
    "subset_exists",
    "subset_selects_one_deployment",
    "suppression_reason",
    "weight_without_replicas",
    "weights_sum",
    "workload_ports_agree",
)


def _modules() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"meshcanary.rules.{name}") for name in RULE_MODULES)


def all_rules() -> tuple[Rule, ...]:
    """Every built-in rule, sorted by ID."""
    rules: list[Rule] = list(_modules())
    return tuple(sorted(rules, key=lambda r: r.ID))


def infos() -> tuple[RuleInfo, ...]:
    """What a report says of each built-in rule: ID, severity, summary, documentation."""
    return tuple(
        RuleInfo(rule.ID, rule.SEVERITY, rule.SUMMARY, (rule.__doc__ or "").strip())
        for rule in all_rules()
    )


def suppressions(resource: Resource) -> dict[str, str]:
    """Rule ID → reason from the resource's `meshcanary.dev/ignore` annotation.

    The value holds one `rule-id: reason` per line (or separated by `;`).
    """
    annotations = resource.metadata.get("annotations")
    value = annotations.get(IGNORE_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(value, str):
        return {}
    found: dict[str, str] = {}
    for entry in value.replace(";", "\n").splitlines():
        rule, _, reason = entry.partition(":")
        if rule.strip():
            found[rule.strip()] = reason.strip()
    return found


def run(
    scope: Scope,
    severities: Mapping[str, str] | None = None,
    rules: Sequence[Rule] | None = None,
) -> list[Problem]:
    """Run the rules over `scope`; `severities` maps rule IDs to a severity or "off"."""
    severities = severities or {}
    with no_cycle_collection():
        problems = _run(scope, severities, rules if rules is not None else all_rules())
    return sorted(problems, key=Problem.sort_key)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Hold back Python's cycle collector while the rules run (and while lint builds objects:
    parsed YAML has no cycles).

    The rules allocate many short-lived lists and dicts, which set off collections that
    each walk every object of the scope's parsed resources (millions at 20k resources): a
    quarter of the rules' time. What the rules allocate is freed by reference counting; the
    collector runs again as usual afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(scope: Scope, severities: Mapping[str, str], rules: Sequence[Rule]) -> list[Problem]:
    problems: list[Problem] = []
    for rule in rules:
        level = severities.get(rule.ID, rule.SEVERITY.value)
        if level == "off":
            continue
        # A rule about the annotation itself must not be silenced by that annotation.
        suppressible = getattr(rule, "SUPPRESSIBLE", True)
        for finding in rule.check(scope):
            if suppressible and rule.ID in suppressions(finding.resource):
                continue
            resource = finding.resource
            problems.append(
                Problem(
                    location=resource.location(finding.path, key=finding.key),
                    message=finding.message,
                    hint=finding.hint or rule.HINT,
                    rule=rule.ID,
                    severity=Severity(level),
                    resource=resource.ref,
                    path=pointer(finding.path),
                )
            )
    return problems
