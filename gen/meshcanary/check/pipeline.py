"""The check pipeline, in the order the README tells it.

release files (schema) → render is fresh → kustomize build of each service overlay →
schema validation of every resource → built-in rules → policies → one report.

With a store of an earlier run's records (units.py), a run over everything does each step
only for the units whose inputs changed, and runs the rules and policies again only over the
environments they are in; what it finds is what a run without the store finds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcanary import kustomize, progress, rules
from meshcanary.check import steps, stopped_policy, units
from meshcanary.check.build import BUILD_RULE, BuildOutcome, build, collect
from meshcanary.check.locate import Relocation, Written, release_hints
from meshcanary.check.scope import (
    Scope,
    Shard,
    Unit,
    affected,
    narrowed,
    owned,
    owned_path,
    sharded,
    with_gateways,
)
from meshcanary.errors import InputError, MeshcanaryError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, GATEWAYS, OVERLAYS, environment_names
from meshcanary.manifest import Resource
from meshcanary.problem import Problem, ResourceRef, Severity
from meshcanary.release.load import LoadedEnvironment, load
from meshcanary.render import repository
from meshcanary.render.base import Base
from meshcanary.render.provenance import Provenance
from meshcanary.report import Report, ResourceResult, RuleInfo
from meshcanary.validate import Verdict

if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.check import CheckOptions
    from meshcanary.check.evaluate import Validators
    from meshcanary.policies import PolicySet
    from meshcanary.release.model import Release


def run(
    root: Path,
    paths: Sequence[str],
    options: CheckOptions,
    baseline: Baseline | None = None,
    store: units.Store | None = None,
) -> Report:
    """The report for `paths` (everything when empty), judged against `baseline`; with a
    `store`, from the records of what did not change, and leaving records of what did.

    One environment at a time, from its release files to its judgement: what a run holds in
    memory is one environment's objects, not the repository's.
    """
    scope = narrowed(root, paths)
    if options.shard is not None:
        scope = sharded(root, scope, options.shard)
        if not scope:
            return _report([], [], None)  # nothing the paths affect is this shard's
    kept = store.kept(environment_names(root), baseline) if store is not None else {}
    # Of an environment with records, the services whose records no longer hold.
    names, only = _planned(root, scope, kept)
    step = _Step(root, paths, options, baseline, store, steps.load_policies(root, options.policies))
    problems: list[Problem] = []
    outcome: list[ResourceResult] = []
    errors: list[Problem] = []
    rendering = set(names) if names or kept else set(environment_names(root))
    # An environment rendered and built, judged while kustomize builds the next one.
    ready: _Built | None = None
    for env in [e for e in environment_names(root) if e in rendering or e in kept]:
        loaded: tuple[LoadedEnvironment, ...] = ()
        if env in rendering:  # else every unit is kept: nothing to render
            try:
                loaded = tuple(load(root, [env], only))
                if errors:  # no report comes of this run: only the release files are read on
                    repository.rendered(root, loaded, [env], only)
            except InputError as exc:
                if not exc.problems:
                    raise  # not about a place in a file: nothing to gather it with
                errors += exc.problems  # every environment's, in one error
        if errors:
            ready = None  # no report comes of this run: judging it would be wasted
            continue
        # Rendered while kustomize builds the overlays on disk; the render is let go before
        # the next environment's is made (about 40 MiB at 1000 services).
        render = (
            partial(repository.rendered, root, loaded, [env], only, step.bases)
            if env in rendering
            else partial(repository.RenderResult, (), ())
        )
        started = step.start(env, loaded, render, kept.get(env), bool(scope))
        try:
            if ready is not None:
                found, results = step.judge(ready)
                ready = None
                problems += found
                outcome += results
            ready = step.prepare(started)
        except _RenderRefused as exc:
            errors += exc.error.problems  # what the release files render to is refused
        finally:
            started.close()  # its builds waited for, whatever stopped the step
    if ready is not None:
        found, results = step.judge(ready)
        problems += found
        outcome += results
    if errors:
        raise InputError(errors)
    if not scope and not kept and repository.orphans(root, set(environment_names(root))):
        # Overlay folders of an environment that is gone: stale, all of them.
        bare = {env: set[str]() for env in environment_names(root)}
        problems += steps.stale(repository.plan(root, (), bare), set())
    return _report(problems, outcome, step.policy_set)


class _RenderRefused(Exception):
    """An environment's render refused (`error`): kept with the other environments' render
    errors, where any other error of the check stops the run at once."""

    def __init__(self, error: InputError) -> None:
        super().__init__(error.text)
        self.error = error


@dataclass
class _Started:
    """An environment whose overlays kustomize is building (`_Step.start`)."""

    env: str
    environments: Sequence[LoadedEnvironment]
    render: Callable[[], repository.RenderResult]
    kept: units.Kept | None
    named: bool  # the paths name the environment
    fresh: list[Unit]  # what is built
    own: list[Unit]  # what is reported on
    baseline: Baseline | None
    builder: kustomize.Builder
    pool: ThreadPoolExecutor
    building: Future[list[kustomize.BuildResult]]

    def close(self) -> None:
        """Wait for the builds, whatever they gave."""
        self.pool.shutdown(wait=True)


@dataclass
class _Built:
    """An environment rendered and built, to be judged (`_Step.judge`)."""

    started: _Started
    rendered: repository.RenderResult
    stale: list[Problem]
    planned: dict[Unit, list[Problem]]
    stepped: list[Problem]
    results: list[kustomize.BuildResult]


@dataclass
class _Step:
    """What every environment of a run is checked with."""

    root: Path
    paths: Sequence[str]
    options: CheckOptions
    baseline: Baseline | None
    store: units.Store | None
    policy_set: PolicySet | None
    # What is read of each base, once for every environment that uses it: what the render
    # needs, and the objects its files write down (where findings point).
    bases: dict[str, Base] = field(default_factory=dict)
    base_files: dict[str, Written] = field(default_factory=dict)

    @cached_property
    def hints(self) -> Mapping[str, str]:
        """Rule ID → its hint in the release files' terms; the rules load while the first
        build runs."""
        return release_hints()

    @cached_property
    def validators(self) -> Validators:
        """The run's schema validators, one per environment's options."""
        from meshcanary.check.evaluate import Validators

        return Validators(self.options.validation)

    def start(
        self,
        env: str,
        environments: Sequence[LoadedEnvironment],
        render: Callable[[], repository.RenderResult],
        kept: units.Kept | None,
        named: bool,
    ) -> _Started:
        """Start kustomize on one environment's overlays, loaded as `environments`; `render`
        renders it (`prepare`)."""
        root, options, baseline = self.root, self.options, self.baseline
        fresh, own = _units(root, environments, self.paths, options.shard, kept)
        if baseline is not None and self.paths and self.store is None and len(fresh) <= _FEW:
            # Only these units consult the baseline: git walks their folders alone.
            baseline = baseline.narrowed(_consulted(fresh))
        # A resolver of this environment's own: the run's would keep every environment's
        # overlay folders to the end of the run (about 90 MiB at 4000 x 3). What the hook's
        # paths started early (kustomize.early) was started on the run's builder.
        builder = kustomize.Builder(root.resolve())
        builder.early = kustomize.builder(root).early
        # kustomize builds each overlay, in the background: it starts on each once the
        # resolver has passed it (batch.build). The overlays it builds are those on disk, so
        # the render, the checks of the release files and of the committed tree go on here
        # meanwhile, and so does the judging of the environment before.
        pool = ThreadPoolExecutor(max_workers=1)
        building = pool.submit(build, root, fresh, options.jobs, builder)
        return _Started(
            env, environments, render, kept, named, fresh, own, baseline, builder, pool, building
        )

    def prepare(self, started: _Started) -> _Built:
        """Render the environment while kustomize builds it; its findings that need no build,
        and the builds' results once they are all in."""
        env, fresh, own, building = started.env, started.fresh, started.own, started.building
        try:
            with progress.quiet():  # the bar shows kustomize's stage
                rendered = started.render()
        except InputError as exc:
            # What the release files render to is refused: that is the run's error, as when
            # nothing was built before the render. The builds are waited for (`close`).
            if exc.problems:
                raise _RenderRefused(exc) from None
            raise
        try:
            stale, planned, stepped = self._unbuilt(
                env, rendered, fresh, own, started.named, started.baseline
            )
            if fresh and started.environments and not self.options.kubeconform:
                _read_schemas(started.environments[0], rendered, self.validators)
        finally:
            # The builds came first once, and their error (no kustomize) is still the run's.
            results = building.result()
        return _Built(started, rendered, stale, planned, stepped, results)

    def judge(self, ready: _Built) -> tuple[list[Problem], list[ResourceResult]]:
        """The findings on one rendered and built environment, and its objects' results; its
        records kept."""
        root, started, rendered = self.root, ready.started, ready.rendered
        planned, stale = ready.planned, ready.stale
        env, fresh, kept, baseline = started.env, started.fresh, started.kept, started.baseline
        built = collect(root, fresh, set(started.own), ready.results, self.base_files)
        problems = [
            *stale,
            *built.problems,
            *(p for found in planned.values() for p in found),
            *ready.stepped,
        ]
        # Policies see the base's objects as oldObject.
        previous = (
            steps.previous(baseline, fresh, built.by_unit)
            if baseline is not None and self.policy_set
            else {}
        )
        # A release file's `ignore:` silences rules and policies on every object of its
        # service.
        ignoring = steps.ignored(built.by_unit)
        provenance = rendered.provenance
        if kept is not None:
            provenance = units.StoredProvenance(root, rendered.provenance)
            for record in kept.units.values():
                provenance.keep(record)
                for resource in record.resources:
                    # Kept only when the baseline does not touch it: its objects are as then.
                    previous.setdefault(resource.ref, resource.data)
                    if record.ignore:
                        ignoring[resource.ref] = record.ignore
            problems += _kept_problems(kept)
        # Schemas, rules and policies over the environment's objects together; each finding
        # points where the render says its field was decided.
        judging = _Judging(
            self.options,
            self.policy_set,
            previous,
            provenance,
            lambda problem: steps.suppressed(problem, ignoring),
            built.context,
            self.hints,
            self.validators,
        )
        loaded = started.environments[0] if started.environments else None
        parts = _parts(env, fresh, built, kept)
        judged = judging.environment(env, loaded, parts, kept)
        if self.store is not None:
            made = _records(
                self.store,
                env,
                parts,
                judged,
                built,
                planned,
                stale,
                rendered,
                kept,
                baseline,
                self.policy_set,
                started.builder,
            )
            if made is not None:
                self.store.save([made])
        return [*problems, *judged.problems], judged.results

    def _unbuilt(
        self,
        env: str,
        rendered: repository.RenderResult,
        fresh: Sequence[Unit],
        own: Sequence[Unit],
        named: bool,
        baseline: Baseline | None,
    ) -> tuple[list[Problem], dict[Unit, list[Problem]], list[Problem]]:
        """The findings that need no build: stale generated files; of each unit, its canary
        plan's and its `ignore:` entries'; weight steps since the baseline."""
        # The committed tree is what the release files render to. An environment the paths
        # name is compared even when no unit is left to build: a deleted release file
        # leaves an overlay that nothing renders any more.
        compared = {env} if fresh or named else set()
        shard = self.options.shard
        stale = [p for p in steps.stale(rendered, compared) if owned_path(shard, p.location.file)]
        # No weight moves more than maxStep in the canary plan; `ignore:` names known rules.
        releases = [u.release for u in own if u.release is not None]
        ignores: dict[str, list[Problem]] = {}
        for problem in _unknown_ignores(rendered.environments, releases, self.policy_set):
            ignores.setdefault(problem.location.file, []).append(problem)  # at its release
        planned = {
            u: [*steps.plan_steps([u.release]), *ignores.get(u.release.path, [])]
            for u in own
            if u.release is not None
        }
        # ... and none moves more than maxStep since the base.
        stepped = steps.weight_steps(baseline, releases) if baseline is not None else []
        return stale, planned, stepped


# What every service overlay builds besides the files rendered into it: its base's Deployment,
# which each version patches, and its Service.
_BASE_KINDS = (("apps/v1", "Deployment"), ("v1", "Service"))


def _read_schemas(
    loaded: LoadedEnvironment, rendered: repository.RenderResult, validators: Validators
) -> None:
    """Compile the schemas the built objects will most likely need, while kustomize builds
    them, into the validator that then validates them.

    Only time is at stake: a kind guessed wrong costs a schema compiled for nothing, and a
    kind not guessed is compiled when its first object is validated.
    """
    from meshcanary.validate import catalog, crd_rules

    kinds = set(_BASE_KINDS)
    for item in rendered.plans:
        for name, text in item.files.items():
            if name.endswith(".yaml") and not name.endswith("/kustomization.yaml"):
                kinds.update(_kinds(text))
    try:
        validator = validators.of(loaded)
        for api_version, kind in sorted(kinds):
            validator.validator_for(api_version, kind)
            bundled = catalog.crd_schema(api_version, kind)
            if bundled is not None:
                crd_rules.has_rules(catalog.load_json(bundled))
    except MeshcanaryError:
        return  # a bad --crd or schema location: validation itself reports it


def _kinds(text: str) -> set[tuple[str, str]]:
    """The apiVersion and kind of each document meshcanary rendered into a file."""
    found: set[tuple[str, str]] = set()
    api_version = ""
    for line in text.splitlines():
        if line == "---":
            api_version = ""
        elif line.startswith("apiVersion: "):
            api_version = line.removeprefix("apiVersion: ").strip()
        elif line.startswith("kind: ") and api_version:
            found.add((api_version, line.removeprefix("kind: ").strip()))
    return found


# Up to this many units, git walks their folders faster than the whole work tree; far past
# it, slower (at 27,000 files: 10 ms for 3 folders, 70 ms for 150, 200 ms for 600, and
# 160 ms for the whole tree).
_FEW = 32


def _consulted(units: Sequence[Unit]) -> list[str]:
    """The repository paths a run over these units asks the baseline about."""
    paths: list[str] = []
    for unit in units:
        paths.append(unit.folder)
        if unit.release is not None:
            paths += [unit.release.path, unit.release.base]
    return paths


def _planned(
    root: Path, scope: Scope, kept: Mapping[str, units.Kept]
) -> tuple[list[str], dict[str, set[str]]]:
    """The environments to load and render, and of each, the services (all when absent)."""
    only = {env: set(services) for env, services in scope.items() if services is not None}
    if not kept:
        return sorted(scope), only
    names: list[str] = []
    for env in environment_names(root):
        if env not in kept:
            names.append(env)
            continue
        records = kept[env].units
        releases = (root / ENVIRONMENTS / env).glob("*.yaml")
        changed = {p.stem for p in releases if p.name != ENVIRONMENT_FILE} - set(records)
        judged_again = kept[env].environment.found is None
        if changed or judged_again or GATEWAYS in kept[env].dropped:
            names.append(env)
            only[env] = changed
    return names, only


def _units(
    root: Path,
    environments: Sequence[LoadedEnvironment],
    paths: Sequence[str],
    shard: Shard | None,
    kept: units.Kept | None,
) -> tuple[list[Unit], list[Unit]]:
    """The units to build (of those `kept`, none), and those of them the run reports on."""
    units_ = [
        u for u in affected(root, environments, paths) if kept is None or u.name not in kept.units
    ]
    # Besides its own units, a shard builds the gateways its routes bind to, to relate
    # them, but reports nothing of them: their environment's shard does.
    own = [u for u in units_ if owned(shard, u)]
    return with_gateways(units_, set(own)), own


@dataclass
class _Part:
    """One unit of an environment in a run: built now, or kept from an earlier run."""

    name: str
    unit: Unit | None
    record: units.UnitRecord | None
    resources: list[Resource]


def _parts(
    env: str, fresh: Sequence[Unit], built: BuildOutcome, kept: units.Kept | None
) -> list[_Part]:
    """An environment's units in the order a run without records takes them: the gateways,
    then the services by release file."""
    parts = [
        _Part(u.name, u, None, built.by_unit.get(u, []))
        for u in fresh
        if u.environment.environment.name == env
    ]
    if kept is not None:
        parts += [_Part(r.name, None, r, r.resources) for r in kept.units.values()]
    return sorted(parts, key=_order)


def _order(part: _Part) -> tuple[int, str]:
    if part.name == GATEWAYS:
        return 0, ""
    release = part.unit.release if part.unit is not None else None
    path = release.path if release is not None else part.record.release if part.record else None
    return 1, path or part.name


@dataclass
class _Judged:
    problems: list[Problem]
    results: list[ResourceResult]
    verdicts: dict[Resource, Verdict]
    found: list[Problem]  # the rules' and policies' findings


@dataclass
class _Judging:
    """Schemas, rules and policies over one environment's objects at a time."""

    options: CheckOptions
    policy_set: PolicySet | None
    previous: Mapping[ResourceRef, dict[str, Any]]
    provenance: Provenance
    silenced: Callable[[Problem], bool]
    context: set[Resource]
    hints: Mapping[str, str]  # rule ID → its hint in the release files' terms
    validators: Validators

    def environment(
        self,
        env: str,
        loaded: LoadedEnvironment | None,
        parts: Sequence[_Part],
        kept: units.Kept | None,
    ) -> _Judged:
        """The findings on `env`'s objects; its schema verdicts, of the units kept too, and
        when none changed (`loaded` is None), its rules' and policies' findings as kept."""
        # Imported here, not above: with the schemas, while kustomize builds (_read_schemas).
        from meshcanary.check.evaluate import judge, results, validate

        related = [r for part in parts for r in part.resources]
        known = {
            r: v
            for part in parts
            if part.record is not None
            for r, v in zip(part.record.resources, part.record.verdicts, strict=True)
        }
        if not related:
            return _Judged([], [], {}, [])
        # Every unit kept and no need to judge again (see _planned): not even loaded.
        found = kept.environment.found if kept is not None and loaded is None else None
        if found is not None:
            resources = related
            verdicts = [known[r] for r in related]
        elif loaded is not None:
            relocate = Relocation(env, self.provenance, self.hints)
            resources = [r for r in related if r not in self.context]
            kubeconform = self.options.kubeconform
            verdicts = validate(loaded, resources, self.validators, kubeconform, relocate, known)
            found = judge(
                loaded,
                related,
                self.context,
                self.policy_set,
                self.previous,
                relocate=relocate,
                silenced=self.silenced,
            )
        else:
            return _Judged([], [], {}, [])
        return _Judged(
            [*(p for v in verdicts for p in v.problems), *found],
            results(resources, verdicts, found),
            dict(zip(resources, verdicts, strict=True)),
            found,
        )


def _records(
    store: units.Store,
    env: str,
    parts: Sequence[_Part],
    judged: _Judged,
    built: BuildOutcome,
    planned: Mapping[Unit, list[Problem]],
    stale: Sequence[Problem],
    rendered: repository.RenderResult,
    kept: units.Kept | None,
    baseline: Baseline | None,
    policy_set: PolicySet | None,
    builder: kustomize.Builder,
) -> units.Stored | None:
    """The records of `env` after this run; None when nothing in it was made again."""
    fresh = [part.unit for part in parts if part.unit is not None]
    if kept is not None and not fresh and kept.environment.found is not None:
        return None
    folder = f"{OVERLAYS}/{env}/"
    names = {part.name for part in parts}
    by_unit: dict[str, list[Problem]] = {}
    own: list[Problem] = []
    for problem in stale:
        file = problem.location.file
        if not file.startswith(folder):
            continue
        first = file.removeprefix(folder).split("/", 1)
        if len(first) == 2 and first[0] in names:
            by_unit.setdefault(first[0], []).append(problem)
        else:
            own.append(problem)
    touched = baseline is not None and any(
        baseline.touches(u.folder, *([u.release.base] if u.release else []))
        or (u.release is not None and u.release.path in baseline.changed)
        for u in fresh
    )
    environment = units.EnvironmentRecord(
        env,
        units.environment_inputs(store.digests, env, names),
        kept.environment.problems if kept is not None else own,
        # Policies' oldObject came from the baseline; a stopped policy from the machine's speed.
        None
        if (touched and policy_set is not None) or any(map(stopped_policy, judged.found))
        else judged.found,
    )
    records: dict[str, units.UnitRecord] = {}
    for part in parts:
        if part.record is not None:
            records[part.name] = part.record
        if part.unit is None:
            continue
        unit = part.unit
        release = unit.release
        base = units.base_folder(store.root, release)
        keys = [(env, r.kind, r.namespace, r.name) for r in part.resources]
        records[part.name] = units.UnitRecord(
            env,
            unit.name,
            release.path if release is not None else None,
            base,
            units.unit_inputs(store.digests, builder.resolver, unit, base),
            [*by_unit.get(unit.name, []), *built.failures.get(unit, []), *planned.get(unit, [])],
            part.resources,
            [judged.verdicts[r] for r in part.resources] if judged.verdicts else [],
            dict(release.ignore) if release is not None else {},
            units.Decided(rendered.provenance, env, keys),
            # A build that failed may have been stopped by the clock: built again next time.
            final=unit not in built.failures,
        )
    return units.Stored(environment, records)


def _kept_problems(kept: units.Kept) -> list[Problem]:
    """What the kept records of an environment found before rules and schemas."""
    return [*kept.environment.problems, *(p for r in kept.units.values() for p in r.problems)]


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
