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
- `JUDGES` (optional): the rule modules whose `verdicts` this rule reads; when the rules are
  shared out between processes (`run`'s `jobs`), it runs in the process that ran them.

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
from typing import TYPE_CHECKING, Protocol

from meshcanary.errors import MeshcanaryError
from meshcanary.lifetime import can_fork
from meshcanary.manifest import JsonPath, Resource, pointer
from meshcanary.mesh import Kinds
from meshcanary.problem import Problem, Severity
from meshcanary.report import RuleInfo

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

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
    jobs: int = 1,
) -> list[Problem]:
    """Run the rules over `scope`; `severities` maps rule IDs to a severity or "off".

    With `jobs` above 1 and enough routes to pay, the rules are shared out between this
    process and `jobs - 1` forked copies of it; the problems are those one process would find.
    """
    severities = severities or {}
    chosen = [
        rule
        for rule in (rules if rules is not None else all_rules())
        if severities.get(rule.ID, rule.SEVERITY.value) != "off"
    ]
    with no_cycle_collection():
        if jobs > 1 and can_fork() and _routes(scope) >= PARALLEL_MIN_ROUTES:
            found = _findings_in_processes(scope, chosen, jobs)
        else:
            found = [list(rule.check(scope)) for rule in chosen]
        problems = _problems(chosen, found, severities)
    return sorted(problems, key=Problem.sort_key)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Hold back Python's cycle collector while the rules run (and while lint builds objects:
    parsed YAML has no cycles).

    The rules allocate many short-lived lists and dicts, which set off collections that
    each walk every object of the scope's parsed resources (millions at 20k resources): a
    quarter of the rules' time. What the rules allocate is freed by reference counting.

    At the end, what the block made and kept is moved to the collector's oldest generation
    without a walk (a freeze and an unfreeze), or the first allocation after it would set
    off a collection of everything the block made: 60 ms after parsing 20k resources. The
    collector runs again as usual afterwards and still finds any cycle among those objects in
    its next full collection. Not when something else has frozen objects: its freeze is
    left as it is.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _problems(
    rules: Sequence[Rule], found: Sequence[list[Finding]], severities: Mapping[str, str]
) -> list[Problem]:
    """The problems of each rule's findings, in the order of `rules`, less those suppressed."""
    problems: list[Problem] = []
    for rule, findings in zip(rules, found, strict=True):
        level = severities.get(rule.ID, rule.SEVERITY.value)
        # A rule about the annotation itself must not be silenced by that annotation.
        suppressible = getattr(rule, "SUPPRESSIBLE", True)
        for finding in findings:
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


# Rules in forked processes --------------------------------------------------------------------

# Below this many routes (VirtualServices, DestinationRules, Gateway API routes) the rules run
# in one process. Most rules' work is over routes; without them the indexes built before the
# fork are most of it, and the fork, and the pages each process then copies, take back what a
# second process saves. Measured in CPU time on 20k objects (2 cores, busy): with 8k routes,
# the rules' 1.25 s became 0.8 s in this process and 0.5 s in the other; with Services and
# Deployments alone, 0.7 s became 0.6 s and 0.3 s. The boundary is an estimate, not measured;
# as with lint's workers, a second process gains nothing when no core is free for it.
PARALLEL_MIN_ROUTES = 2_000
ROUTE_KINDS = (
    "VirtualService",
    "DestinationRule",
    "HTTPRoute",
    "GRPCRoute",
    "TCPRoute",
    "TLSRoute",
)

# (resource's position in the scope, path, message, hint, key): a Finding without its Resource,
# which is not sent between processes.
_Sent = tuple[int, JsonPath, str, str, bool]


def _routes(scope: Scope) -> int:
    by_kind = Kinds.of(scope).by_kind
    return sum(len(by_kind.get(kind, ())) for kind in ROUTE_KINDS)


def _units(rules: Sequence[Rule]) -> list[list[int]]:
    """The rules' positions in the pieces of work one process runs: a rule that reads other
    rules' verdicts (`JUDGES`) after those rules, the others alone. Pieces of several rules
    come first, so that the last pieces handed out, the small ones, even the processes out."""
    modules = [getattr(rule, "__name__", None) for rule in rules]
    grouped: list[list[int]] = []
    for index, rule in enumerate(rules):
        judges = [j.__name__ for j in getattr(rule, "JUDGES", ())]
        if judges:
            grouped.append([n for n, m in enumerate(modules) if m in judges] + [index])
    taken = {n for unit in grouped for n in unit}
    return grouped + [[n] for n in range(len(rules)) if n not in taken]


@dataclass(frozen=True)
class _Shared:
    """What a forked process inherits: the scope, the rules, the pieces of work and the count
    of those claimed."""

    scope: Scope
    rules: Sequence[Rule]
    units: list[list[int]]
    claimed: Synchronized[int]

    def claim(self) -> list[int] | None:
        """The next piece of work nobody runs yet, or None when all are taken."""
        index = next_claim(self.claimed)
        return self.units[index] if index < len(self.units) else None


# A process stopped while it held a shared count's lock (killed, out of memory) never lets it
# go: the others wait this long for it, then stop with an error rather than for ever. Taking
# the count takes microseconds; a process that is merely slow never holds it that long.
CLAIM_TIMEOUT_SECONDS = 30.0


def next_claim(claimed: Synchronized[int]) -> int:
    """The count shared by the processes of a run, counted up by one: the position of the next
    piece of work, which the caller alone takes."""
    lock = claimed.get_lock()
    if not lock.acquire(timeout=CLAIM_TIMEOUT_SECONDS):
        raise MeshcanaryError(
            "a process sharing the work stopped while it held the count of work taken "
            "(killed, or out of memory)\n  hint: run again, or with --jobs 1"
        )
    try:
        index: int = claimed.value
        claimed.value = index + 1
    finally:
        lock.release()
    return index


_shared: _Shared | None = None  # set in a forked process by _inherit


def _inherit(shared: _Shared) -> None:
    global _shared  # the forked process's own, from its parent's memory
    _shared = shared


def _run_claimed() -> list[tuple[int, list[_Sent]]]:
    """In a forked process: run rules as they are claimed, each finding by its resource's
    position, since the parent holds the same resources in the same order."""
    shared = _shared
    assert shared is not None  # noqa: S101 - set by _inherit
    positions: dict[int, int] = {}
    done: list[tuple[int, list[_Sent]]] = []
    while (unit := shared.claim()) is not None:
        for index in unit:
            findings = list(shared.rules[index].check(shared.scope))
            if findings and not positions:
                positions = {id(r): n for n, r in enumerate(shared.scope.resources)}
            sent = [(positions[id(f.resource)], f.path, f.message, f.hint, f.key) for f in findings]
            done.append((index, sent))
    return done


def _share_indexes(scope: Scope) -> None:
    """Build the indexes most rules read before forking, so that every process inherits them
    rather than each building its own."""
    from meshcanary.mesh import ISTIO, Mesh, Readings, of_kind
    from meshcanary.registry import Registry
    from meshcanary.rules._gateway_api import Routes
    from meshcanary.rules._workloads import Workloads

    for index in (Mesh, Registry, Workloads, Routes):
        index.of(scope)
    readings = Readings.of(scope)
    for service in of_kind(scope, ISTIO, "VirtualService"):
        readings.sent_to(service)  # reads its destinations and mirrors too
    for rule in of_kind(scope, ISTIO, "DestinationRule"):
        readings.subsets(rule)


def _findings_in_processes(scope: Scope, rules: Sequence[Rule], jobs: int) -> list[list[Finding]]:
    """Each rule's findings, the rules claimed a few at a time by this process and `jobs - 1`
    forked copies of it, so that a slow rule does not leave the others idle."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    _share_indexes(scope)
    context = multiprocessing.get_context("fork")
    shared = _Shared(scope, rules, _units(rules), context.Value("i", 0))
    found: dict[int, list[Finding]] = {}
    try:
        with ProcessPoolExecutor(jobs - 1, context, _inherit, (shared,)) as pool:
            others = [pool.submit(_run_claimed) for _ in range(jobs - 1)]
            while (unit := shared.claim()) is not None:
                for index in unit:
                    found[index] = list(rules[index].check(scope))
            for other in others:
                for index, sent in other.result():
                    found[index] = [
                        Finding(scope.resources[position], path, message, hint, key)
                        for position, path, message, hint, key in sent
                    ]
    except BrokenProcessPool:
        raise MeshcanaryError(
            "a process running the rules stopped before it finished (killed, or out of "
            "memory)\n  hint: run again, or with --jobs 1"
        ) from None
    return [found[index] for index in range(len(rules))]
