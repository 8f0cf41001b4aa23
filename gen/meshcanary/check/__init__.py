"""`check`: the repository pipeline, from release files to one report.

`check()` refuses paths outside the repository, resolves the base a change is judged
against, and answers from the report cache (cache.py) when no input changed; otherwise
pipeline.py runs: what the paths can affect (scope.py), the release files rendered in
memory, render-fresh and weight-step (steps.py), the kustomize builds (build.py), findings
pointed into the files a person reads (locate.py), schemas, rules and policies over each
environment (evaluate.py), one report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meshcanary import kustomize
from meshcanary.check import cache
from meshcanary.check.scope import Shard, inputs, narrowed, sharded
from meshcanary.errors import InputError
from meshcanary.problem import Location, Problem
from meshcanary.report import Report
from meshcanary.validate import Options

# The pipeline pulls in the release schema, ruamel and the renderer: a report answered from
# the cache needs none of them, so it is imported only to run.
if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.check import units


@dataclass(frozen=True)
class CheckOptions:
    validation: Options = field(default_factory=Options)
    jobs: int | None = None
    kubeconform: bool = False  # validate with the kubeconform binary instead of in-process
    policies: tuple[Path, ...] = ()  # more policy folders besides the repository's policies/
    # The git ref a change is judged against: policies see its objects as oldObject, and no
    # weight moves more than the environment's maxStep since it. Required: an error when the
    # ref is missing (else, as for the default HEAD, nothing to compare with is no error).
    base: str | None = None
    base_required: bool = False
    # An edit checks a scratch copy: the repository the ref is in, and what the edit changed.
    base_repository: Path | None = None
    base_changed: tuple[str, ...] | None = None
    cache: bool = True  # reuse the report of an earlier run over the same inputs
    shard: Shard | None = None  # check only this part of the repository


def check(root: Path, paths: Sequence[str], options: CheckOptions) -> Report:
    """The report for `paths` (everything when empty), from the cache when nothing changed."""
    inside = root.resolve()
    outside = [p for p in paths if not (inside / p).resolve().is_relative_to(inside)]
    if outside:
        # Silently checking nothing would pass a hook that was pointed at the wrong place.
        raise InputError(
            [
                Problem(Location(p), "is outside the repository", f"the repository is {inside}")
                for p in outside
            ]
        )
    baseline = None
    if options.base:
        from meshcanary import baseline as baselines

        baseline = baselines.resolve(
            options.base_repository or root,
            options.base,
            required=options.base_required,
            changed=options.base_changed,
        )
    from meshcanary.kustomize import early

    # The overlays a hook's paths name build while the release files load and render.
    guessed = paths if options.shard is None else ()
    # The kubeconform binary, and schemas found through --schema-location templates, are
    # inputs the key cannot see: run afresh.
    if not options.cache or options.kubeconform or options.validation.schema_locations:
        with early.builds(root, guessed):
            return _run(root, paths, options, baseline)
    from meshcanary.check import units

    digests = units.Digests(root)
    name = _key(root, paths, options, baseline, digests.files)
    cached = cache.read(name)
    if cached is not None:
        return cached
    with early.builds(root, guessed):
        # A run over everything keeps a record of each unit, and uses those that still hold.
        store = None
        # (Not when deploy/overlays/ holds an environment's folder whose environment is gone:
        # only a run over everything, rendered afresh, reports it.)
        from meshcanary.layout import environment_names
        from meshcanary.render.repository import orphans

        if not paths and options.shard is None and not orphans(root, set(environment_names(root))):
            key = _key(root, [], options, None, digests.files, tops=())
            store = units.Store(root, key, digests)
        report = _run(root, paths, options, baseline, store)
    digests.save()  # the digests of files found since the key was made (reached from outside)
    # A policy stopped by its budget depends on the machine's speed, not on the inputs.
    if not any(stopped_policy(p) for p in report.problems):
        cache.write(name, report)
    return report


def _run(
    root: Path,
    paths: Sequence[str],
    options: CheckOptions,
    baseline: Baseline | None,
    store: units.Store | None = None,
) -> Report:
    from meshcanary.check import pipeline

    return pipeline.run(root, paths, options, baseline, store)


def _key(
    root: Path,
    paths: Sequence[str],
    options: CheckOptions,
    baseline: Baseline | None,
    files: cache.Files | None = None,
    tops: Sequence[str] | None = None,
) -> str:
    """The cache key of a run: its options, its paths and the bytes of what it reads (of
    `tops` and the policies; by default, of what the paths can affect)."""
    validation = options.validation
    settings = json.dumps(
        {
            "kubernetes_version": validation.kubernetes_version,
            "strict": validation.strict,
            "schema_locations": list(validation.schema_locations),
            "skip": sorted(validation.skip),
            "reject": sorted(validation.reject),
            "ignore_missing_schemas": validation.ignore_missing_schemas,
            "policies": [str(p) for p in options.policies],
            "shard": [options.shard.index, options.shard.count] if options.shard else None,
            "policy_timeout": os.environ.get("MESHCANARY_POLICY_TIMEOUT", ""),
            "base": baseline.commit if baseline else None,
        },
        sort_keys=True,
    )
    extra = [
        *validation.crds,
        *(f for folder in options.policies if folder.is_dir() for f in folder.rglob("*")),
    ]
    tool = " ".join(kustomize.command())
    if tops is not None:
        # Shared by every unit's record: the settings and policies, not the repository's files.
        return cache.key(
            root, settings, [], extra, tool, (*tops, "policies"), files, with_bases=False
        )
    scope = narrowed(root, paths)
    tops = inputs(sharded(root, scope, options.shard) if options.shard else scope)
    return cache.key(root, settings, list(paths), extra, tool, tops, files)


def stopped_policy(problem: Problem) -> bool:
    """A finding about a policy itself: only a policy stopped by its budget is one."""
    return problem.resource is not None and problem.resource.kind == "ValidatingAdmissionPolicy"
