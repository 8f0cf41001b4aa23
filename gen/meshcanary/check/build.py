"""A check's kustomize step: its overlays built in batches, and the objects they yield, each
where its findings will point; an overlay that does not build is a finding."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from meshcanary import kustomize
from meshcanary.check.locate import Written, resources
from meshcanary.check.scope import Unit
from meshcanary.kustomize import batch
from meshcanary.manifest import Resource
from meshcanary.problem import Location, Problem

BUILD_RULE = "kustomize-build"


def build(
    root: Path,
    units: Sequence[Unit],
    jobs: int | None = None,
    builder: kustomize.Builder | None = None,
) -> list[kustomize.BuildResult]:
    """kustomize output of each unit, built in batches of overlays (see kustomize.batch)."""
    overlays = [
        batch.Overlay(
            unit.folder,
            unit.environment.environment.name,
            unit.environment.environment.remote_bases,
            unit.release.base if unit.release is not None else None,
        )
        for unit in units
    ]
    return batch.build(root, overlays, jobs, builder)


@dataclass(frozen=True)
class BuildOutcome:
    """What the builds of a run yield."""

    problems: list[Problem]  # an own unit that did not build, at its kustomization
    failures: dict[Unit, list[Problem]]  # the same, by unit
    by_unit: dict[Unit, list[Resource]]
    by_environment: dict[str, list[Resource]]
    # Objects of the units built only to relate to (a shard's gateways of another shard):
    # rules and policies see them, but another run reports on them.
    context: set[Resource]


def collect(
    root: Path,
    units: Sequence[Unit],
    own: Collection[Unit],
    results: Sequence[kustomize.BuildResult],
    bases: dict[str, Written],
) -> BuildOutcome:
    """The located objects of each unit that built, and a finding for each of `own` that
    did not; a unit not `own` that did not build is another run's finding. `bases` keeps the
    base files read, for the next environment's units."""
    problems: list[Problem] = []
    failures: dict[Unit, list[Problem]] = {}
    by_unit: dict[Unit, list[Resource]] = {}
    by_environment: dict[str, list[Resource]] = {}
    context: set[Resource] = set()
    for unit, result in zip(units, results, strict=True):
        mine = unit in own
        failed = _failure(unit, result) if mine else []
        problems.extend(failed)
        if failed:
            failures[unit] = failed
        if failed or not result.ok:
            continue
        located = by_unit[unit] = resources(root, unit, result, bases)
        if not mine:
            context.update(located)
        by_environment.setdefault(unit.environment.environment.name, []).extend(located)
    return BuildOutcome(problems, failures, by_unit, by_environment, context)


def _failure(unit: Unit, result: kustomize.BuildResult) -> list[Problem]:
    if result.problems:
        # Refused before kustomize ran: each at the line that names it.
        return [replace(p, rule=BUILD_RULE) for p in result.problems]
    if not result.ok:
        return [
            Problem(
                Location(f"{unit.folder}/kustomization.yaml"),
                f"kustomize build failed: {result.error}",
                rule=BUILD_RULE,
            )
        ]
    return []
