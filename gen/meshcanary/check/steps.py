"""The checks of a run that read the release files and the base rather than the built
objects: the committed tree is what the release files render to (render-fresh), no weight
moves more than the environment's maxStep (weight-step), and the objects at the base that
policies see as `oldObject`; and the policies themselves.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcanary import kustomize
from meshcanary.check.scope import Unit
from meshcanary.errors import InputError
from meshcanary.layout import HASHES_FILE
from meshcanary.manifest import Resource, objects
from meshcanary.problem import Location, Problem, ResourceRef
from meshcanary.render.repository import RenderResult, sources
from meshcanary.source import parse_mapping

if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.policies import PolicySet
    from meshcanary.release.model import Release

RENDER_RULE = "render-fresh"
STEP_RULE = "weight-step"


def stale(plan: RenderResult, environments: set[str]) -> list[Problem]:
    """A finding per generated file that differs from what the release files render to."""
    problems: list[Problem] = []
    for item in plan.plans:
        env = item.folder.rsplit("/", 1)[-1]
        if env not in environments and item.files:
            continue
        changes = [c for c in item.changes if not c.path.endswith(HASHES_FILE)] or list(
            item.changes
        )
        origins = sources(env, [c.path.removeprefix(item.folder + "/") for c in changes])
        for change in changes:
            line = 1
            if change.old is not None and change.new is not None:
                old, new = change.old.splitlines(), change.new.splitlines()
                pairs = enumerate(zip(old, new, strict=False))
                line = next((i + 1 for i, (a, b) in pairs if a != b), min(len(old), len(new)) + 1)
            source = origins.get(change.path.removeprefix(item.folder + "/"), "the release files")
            what = {
                "create": f"is missing: {source} renders it",
                "delete": f"is no longer rendered from {source}",
                "update": f"differs from what {source} renders",
            }[change.action]
            problems.append(
                Problem(
                    Location(change.path, line, 1),
                    f"{change.path.rsplit('/', 1)[-1]} {what}",
                    "run `meshcanary render` and commit the result",
                    rule=RENDER_RULE,
                )
            )
    return problems


def plan_steps(releases: Sequence[Release]) -> list[Problem]:
    """A finding per step of a canary plan that moves more than the environment's maxStep:
    `step --next` would take it, and the check would refuse it. From 0 to the first step, and
    from the last to 100 (promote) when the plan stops short of it."""
    problems: dict[Location, Problem] = {}
    for release in releases:
        limit, steps = release.environment.max_step, release.steps
        if limit is None or not steps:
            continue
        own = "canary" in release.source.data
        source = release.source if own else release.environment.source
        at = ["canary", "steps"] if own else ["defaults", "canary", "steps"]
        ends = [0, *steps, *([100] if steps[-1] < 100 else [])]
        for index, (low, high) in enumerate(itertools.pairwise(ends)):
            if high - low <= limit:
                continue
            where = source.location([*at, min(index, len(steps) - 1)])
            problems.setdefault(
                where,
                Problem(
                    where,
                    f"the canary plan moves from {low}% to {high}% in one step, and "
                    f"{release.environment.path} allows {limit} points in one change",
                    f"add steps in between, such as {low + limit}",
                    rule=STEP_RULE,
                ),
            )
    return list(problems.values())


def weight_steps(baseline: Baseline, releases: Sequence[Release]) -> list[Problem]:
    """A finding per version whose weight moves more than the environment's maxStep since
    the baseline, toward the newer versions, at the weight's line in the release file.

    A canary advances in steps; a rollback (traffic back to the stable, first version) is
    never held back.
    """
    problems: list[Problem] = []
    for release in releases:
        step = release.environment.max_step
        if step is None or not baseline.differs(release.path):
            continue
        text = baseline.show(release.path)
        if text is None:
            continue  # a new release: its first weights are its plan's business
        try:
            versions = parse_mapping(text, release.path).data.get("versions") or {}
        except InputError:
            continue  # the old file did not parse: nothing to compare with

        then = {
            str(name): old["weight"]
            for name, old in (versions.items() if isinstance(versions, dict) else [])
            if isinstance(old, dict) and isinstance(old.get("weight"), int)
        }

        # What newer versions gain, each; else what leaves the stable (first) version, which
        # several of them may share. Traffic going back to the stable version is a rollback:
        # never held back.
        gaining = [v for v in release.versions[1:] if v.weight - then.get(v.name, 0) > step]
        stable = release.versions[0]
        losing = [stable] if then.get(stable.name, 0) - stable.weight > step else []
        for version in gaining or losing:
            before = then.get(version.name, 0)
            problems.append(
                Problem(
                    release.source.location(["versions", version.name, "weight"]),
                    f"{version.name} moves from {before}% to {version.weight}% since "
                    f"{baseline.ref}: {abs(version.weight - before)} points, and "
                    f"{release.environment.path} allows {step} in one change",
                    f"move it in steps of at most {step} (`meshcanary step` follows the plan), "
                    "or raise policy.maxStep",
                    rule=STEP_RULE,
                )
            )
    return problems


def load_policies(root: Path, more: Sequence[Path]) -> PolicySet | None:
    """The repository's policies/ and any `more` folders, or None when there are none."""
    folders = [f for f in (root / "policies", *more) if f.is_dir() and any(f.glob("*.yaml"))]
    if not folders:
        return None
    # The CEL engine is loaded only for a run that has policies.
    from meshcanary import policies

    return policies.load(folders, root)


def previous(
    baseline: Baseline, units: Sequence[Unit], built: Mapping[Unit, list[Resource]]
) -> dict[ResourceRef, dict[str, Any]]:
    """The objects at the baseline, keyed as policies look up `oldObject`.

    An overlay whose files and base did not change since is what it was: its objects now are
    its objects then. Only the others are built, from the baseline's files; what they hold
    now and did not then has no old object.
    """

    def changed(unit: Unit) -> bool:
        base = (unit.release.base,) if unit.release is not None else ()
        return baseline.touches(unit.folder, *base)

    found = {r.ref: r.data for unit in units if not changed(unit) for r in built.get(unit, [])}
    rebuilt = [u for u in units if changed(u)]
    if not rebuilt:
        return found
    wanted = {u.folder for u in rebuilt} | {u.release.base for u in rebuilt if u.release}
    present = sorted(p for p in wanted if baseline.show(f"{p}/kustomization.yaml") is not None)
    if not present:
        return found
    with tempfile.TemporaryDirectory(prefix="meshcanary-base-") as folder:
        then = Path(folder)
        baseline.export(present, then)
        targets = [
            kustomize.Target(then / u.folder, u.folder, u.environment.environment.remote_bases)
            for u in rebuilt
            if (then / u.folder).is_dir()
        ]
        for result in kustomize.builder(then).build_many(targets):
            if not result.ok:
                continue  # it did not build then: nothing to compare with
            for document in objects(result.output):
                found[ResourceRef.of(document)] = document
    return found


def ignored(
    by_unit: Mapping[Unit, Sequence[Resource]],
) -> dict[ResourceRef, Mapping[str, str]]:
    """Each object of a service whose release file has `ignore:`, with that release's rule
    ID → reason, as the `meshcanary.dev/ignore` annotation is for one object."""
    found: dict[ResourceRef, Mapping[str, str]] = {}
    for unit, resources in by_unit.items():
        release = unit.release
        if release is not None and release.ignore:
            found.update((r.ref, release.ignore) for r in resources)
    return found


def suppressed(problem: Problem, ignoring: Mapping[ResourceRef, Mapping[str, str]]) -> bool:
    """Whether a release file's `ignore:` silences this rule or policy finding."""
    if problem.resource is None or problem.resource not in ignoring:
        return False
    rules_ignored = ignoring[problem.resource]
    policy = problem.rule.split("/", 1)[0]
    return problem.rule in rules_ignored or policy in rules_ignored


def unknown_ignores(releases: Sequence[Release], known: Collection[str]) -> list[Problem]:
    """A `ignore:` entry that names no rule or policy silences nothing: say so at its key."""
    from difflib import get_close_matches

    from meshcanary.rules import suppression_reason

    problems: list[Problem] = []
    for release in releases:
        for rule in release.ignore:
            if rule in known:
                continue
            close = get_close_matches(rule, sorted(known), n=1)
            problems.append(
                Problem(
                    release.source.location(["ignore", rule], key=True),
                    f"ignore: names unknown rule {rule!r}, so it suppresses nothing",
                    f"did you mean {close[0]!r}?"
                    if close
                    else "use an ID that `meshcanary rules` lists, or a policy's name",
                    rule=suppression_reason.ID,
                    severity=suppression_reason.SEVERITY,
                )
            )
    return problems
