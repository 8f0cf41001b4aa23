"""The check pipeline, in the order the README tells it.

release files (schema) → render is fresh → kustomize build of each service overlay →
schema validation of every resource → built-in rules → policies → one report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary import rules
from meshcanary.check import steps
from meshcanary.check.build import BUILD_RULE, build, collect
from meshcanary.check.evaluate import evaluate
from meshcanary.check.locate import Relocation, release_hints
from meshcanary.check.scope import (
    Shard,
    Unit,
    affected,
    narrowed,
    owned,
    owned_path,
    sharded,
    with_gateways,
)
from meshcanary.problem import Problem, Severity
from meshcanary.release.load import LoadedEnvironment
from meshcanary.render import repository
from meshcanary.report import Report, ResourceResult, RuleInfo

if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.check import CheckOptions
    from meshcanary.policies import PolicySet
    from meshcanary.release.model import Release


def run(
    root: Path, paths: Sequence[str], options: CheckOptions, baseline: Baseline | None = None
) -> Report:
    """The report for `paths` (everything when empty), judged against `baseline`."""
    scope = narrowed(root, paths)
    if options.shard is not None:
        scope = sharded(root, scope, options.shard)
        if not scope:
            return _report([], [], None)  # nothing the paths affect is this shard's
    # The release files, loaded against their schema and rendered in memory.
    only = {env: services for env, services in scope.items() if services is not None}
    rendered = repository.plan(root, sorted(scope), only)
    environments = rendered.environments
    units, own = _units(root, environments, paths, options.shard)
    # The committed tree is what they render to. The environments the paths name are
    # compared even when no unit is left to build: a deleted release file leaves an overlay
    # that nothing renders any more.
    compared = {u.environment.environment.name for u in units} | set(scope)
    problems = [
        p for p in steps.stale(rendered, compared) if owned_path(options.shard, p.location.file)
    ]
    # kustomize builds each overlay.
    built = collect(root, units, set(own), build(root, units, options.jobs))
    problems += built.problems
    # No weight moves more than maxStep: in the canary plan, and since the base.
    releases = [u.release for u in own if u.release is not None]
    problems += steps.plan_steps(releases)
    if baseline is not None:
        problems += steps.weight_steps(baseline, releases)
    # Policies see the base's objects as oldObject.
    policy_set = steps.load_policies(root, options.policies)
    previous = (
        steps.previous(baseline, units, built.by_unit)
        if baseline is not None and policy_set
        else {}
    )
    # Schemas, rules and policies, over each environment's objects together; each finding
    # points where the render says its field was decided.
    hints = release_hints()
    # A release file's `ignore:` silences rules and policies on every object of its service.
    ignoring = steps.ignored(built.by_unit)
    problems += _unknown_ignores(environments, releases, policy_set)
    outcome: list[ResourceResult] = []
    for loaded in environments:
        related = built.by_environment.get(loaded.environment.name, [])
        if not related:
            continue
        found, results = evaluate(
            loaded,
            related,
            built.context,
            options.validation,
            kubeconform=options.kubeconform,
            policy_set=policy_set,
            previous=previous,
            relocate=Relocation(loaded.environment.name, rendered.provenance, hints),
            silenced=lambda problem: steps.suppressed(problem, ignoring),
        )
        problems += found
        outcome += results
    return _report(problems, outcome, policy_set)


def _unknown_ignores(
    environments: Sequence[LoadedEnvironment],
    releases: Sequence[Release],
    policy_set: PolicySet | None,
) -> list[Problem]:
    """`ignore:` entries naming no rule or policy, at the severity each environment gives
    suppression-reason (none where it is off)."""
    known = {rule.ID for rule in rules.all_rules()}
    known |= {policy.name for policy in policy_set.policies} if policy_set else set()
    levels = {e.environment.name: dict(e.environment.rule_severities) for e in environments}
    found: list[Problem] = []
    for release in releases:
        level = levels.get(release.environment.name, {}).get("suppression-reason")
        if level == "off":
            continue
        for problem in steps.unknown_ignores([release], known):
            found.append(replace(problem, severity=Severity(level)) if level else problem)
    return found


def _units(
    root: Path, environments: Sequence[LoadedEnvironment], paths: Sequence[str], shard: Shard | None
) -> tuple[list[Unit], list[Unit]]:
    """The units to build, and those of them the run reports on (its own)."""
    units = affected(root, environments, paths)
    # Besides its own units, a shard builds the gateways its routes bind to, to relate
    # them, but reports nothing of them: their environment's shard does.
    own = [u for u in units if owned(shard, u)]
    return with_gateways(units, set(own)), own


def _report(
    problems: list[Problem], outcome: list[ResourceResult], policy_set: PolicySet | None
) -> Report:
    infos = rules.infos()
    extra = (
        RuleInfo(
            steps.RENDER_RULE,
            Severity.ERROR,
            "the committed deploy/overlays/ is what the release files render to",
        ),
        RuleInfo(BUILD_RULE, Severity.ERROR, "every overlay builds with kustomize"),
        RuleInfo(
            steps.STEP_RULE,
            Severity.ERROR,
            "no weight moves more than the environment's maxStep since the base (HEAD)",
        ),
    )
    # A base shared by environments is one file: report each of its lines once.
    unique = {(p.location, p.rule, p.message): p for p in problems}
    return Report(
        problems=tuple(sorted(unique.values(), key=Problem.sort_key)),
        results=tuple(outcome),
        files=len({r.file for r in outcome}),
        rules=(*infos, *extra),
        checks=(
            "release-schema",
            "render",
            "kustomize",
            "schema",
            "rules",
            *(("policies",) if policy_set else ()),
        ),
    )
