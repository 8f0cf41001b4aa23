"""`meshcanary check`: the repository pipeline, from release files to one report.

release files (schema) → render is fresh → kustomize build of each service overlay →
schema validation of every resource → built-in rules → report.

Findings point into the files a person reads: the generated VirtualService, DestinationRule
and Gateway files, the version folder's kustomization.yaml for what meshcanary sets there
(replicas, image), and the base's own files for everything the base defines.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from meshcanary import kustomize
from meshcanary.errors import InputError
from meshcanary.layout import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS,
    GATEWAYS,
    MANIFEST,
    OVERLAYS,
    environment_names,
)
from meshcanary.manifest import (
    Document,
    JsonPath,
    Parsed,
    Resource,
    load_document,
    parse_text,
    split_documents,
)
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.report import Report, ResourceResult, RuleInfo, Status
from meshcanary.validate import Options, Verdict

# Rendering pulls in the release schema, ruamel and the renderer: a report answered from the
# cache needs none of them, so they are imported where they are used.
if TYPE_CHECKING:
    from meshcanary.baseline import Baseline
    from meshcanary.commands.render import RenderResult
    from meshcanary.release.load import LoadedEnvironment
    from meshcanary.release.model import Release

RENDER_RULE = "render-fresh"
BUILD_RULE = "kustomize-build"


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count` (1-based) of a check split across CI jobs.

    A service goes to one shard in every environment, chosen by a hash of its name, so a
    service keeps its shard as others come and go; an environment's own files (its
    kustomization, gateways and manifest) go to the shard its name hashes to.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = cls(0, 0)
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"expected K/N with 1 <= K <= N, like 2/4; got {text!r}")
        return shard

    def owns(self, name: str) -> bool:
        digest = hashlib.sha256(name.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def owns_environment(self, env: str) -> bool:
        return self.owns(f"{env}/")


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


@dataclass(frozen=True)
class Unit:
    """One folder kustomize builds: a service overlay or an environment's gateways."""

    environment: LoadedEnvironment
    name: str  # service name or _gateways
    release: Release | None

    @property
    def folder(self) -> str:
        return f"{OVERLAYS}/{self.environment.environment.name}/{self.name}"


def affected(
    root: Path, environments: Sequence[LoadedEnvironment], paths: Sequence[str]
) -> list[Unit]:
    """The units that the changed `paths` can affect (all of them when none are given)."""
    units = [
        unit
        for loaded in environments
        for unit in (
            *([Unit(loaded, GATEWAYS, None)] if loaded.environment.gateways else []),
            *(Unit(loaded, r.service, r) for r in loaded.releases),
        )
    ]
    if not paths:
        return units
    chosen: set[int] = set()  # ids: comparing the dataclasses would be quadratic
    for raw in paths:
        path = (
            PurePosixPath(Path(raw).resolve().relative_to(root.resolve()).as_posix())
            if Path(raw).is_absolute()
            else PurePosixPath(raw)
        )
        parts = path.parts
        for unit in units:
            env = unit.environment.environment.name
            release = unit.release
            hit = False
            if parts[:2] == (ENVIRONMENTS, env) and len(parts) == 3:
                hit = parts[2] == ENVIRONMENT_FILE or (
                    release is not None and parts[2] == f"{release.service}.yaml"
                )
            elif parts[:3] == ("deploy", "overlays", env) and len(parts) >= 4:
                hit = parts[3] == unit.name or len(parts) == 4
            elif release is not None and str(path).startswith(release.base.rstrip("/") + "/"):
                hit = True
            if hit:
                chosen.add(id(unit))
    # Gateways are what routes bind to: check them with any service of their environment.
    served = {id(u.environment) for u in units if id(u) in chosen and u.release is not None}
    return [
        u for u in units if id(u) in chosen or (u.release is None and id(u.environment) in served)
    ]


def _sources(root: Path, unit: Unit) -> dict[tuple[str, str], Document]:
    """Where each object of a unit is written down: generated files and the base's files."""
    from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES

    found: dict[tuple[str, str], Document] = {}
    inside = os.path.realpath(root) + os.sep

    def add(path: Path, display: str) -> None:
        # Only regular files of the repository: a link out of it is not read, nor a FIFO.
        if not os.path.realpath(path).startswith(inside) or not path.is_file():
            return
        parsed = Parsed()
        try:
            parse_text(path.read_text(encoding="utf-8"), display, parsed)
        except (OSError, UnicodeDecodeError):
            return
        for resource in parsed.resources:
            found.setdefault((resource.kind, resource.name), resource.document)

    folder = root / unit.folder
    for path in sorted(folder.glob("*.yaml")):
        if path.name not in KUSTOMIZATION_NAMES:
            add(path, f"{unit.folder}/{path.name}")
    if unit.release is not None:
        base = root / unit.release.base
        for path in sorted(base.rglob("*")):
            if (
                path.suffix in (".yaml", ".yml")
                and path.name not in KUSTOMIZATION_NAMES
                and path.is_file()
            ):
                add(path, path.relative_to(root).as_posix())
    return found


class _Mapped(Document):
    """A base's document, with the fields meshcanary sets pointed at the version folder."""

    def __init__(self, origin: Document | None, version_file: Document | None) -> None:
        super().__init__(
            origin.file if origin else (version_file.file if version_file else ""),
            origin.text if origin else "",
            origin.first_line if origin else 1,
            origin.index if origin else 0,
        )
        self.origin = origin
        self.version_file = version_file

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        parts = list(path)
        if self.version_file is not None:
            if parts[:2] == ["spec", "replicas"]:
                return self.version_file.location(["replicas", 0, "count"])
            if (
                len(parts) >= 6
                and parts[:4] == ["spec", "template", "spec", "containers"]
                and parts[5] == "image"
            ):
                return self.version_file.location(["images", 0, "newTag"])
            if self.origin is None:
                return self.version_file.location([])
        if self.origin is None:
            return Location(self.file or "?", 1, 1)
        return self.origin.location(parts, key=key)


def _version_document(root: Path, unit: Unit, version: str) -> Document | None:
    path = root / unit.folder / version / "kustomization.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    return Document(f"{unit.folder}/{version}/kustomization.yaml", text, 1, 0)


def _resources(root: Path, unit: Unit, result: kustomize.BuildResult) -> list[Resource]:
    built = Parsed()
    if result.documents is not None:
        # Parsed by the batch build; the built text is no file a person reads, so a place in
        # it is only a fallback (the unit's folder).
        built.resources.extend(
            Resource(data, Document(unit.folder, "", 1, index))
            for index, data in enumerate(result.documents)
        )
    else:
        parse_text(result.output, unit.folder, built)
    sources = _sources(root, unit)
    located: list[Resource] = []
    for resource in built.resources:
        origin = sources.get((resource.kind, resource.name))
        if resource.kind == "Deployment" and unit.release is not None:
            labels = resource.get("spec", "template", "metadata", "labels") or {}
            version = str(labels.get("version", "")) if isinstance(labels, dict) else ""
            base_name = next((name for kind, name in sources if kind == "Deployment"), "")
            origin = sources.get(("Deployment", base_name))
            document: Document = _Mapped(origin, _version_document(root, unit, version))
        elif origin is None and unit.release is not None:
            # Named by kustomize (a suffix, a generated hash): find it by kind alone.
            same_kind = [doc for (kind, _), doc in sources.items() if kind == resource.kind]
            document = same_kind[0] if len(same_kind) == 1 else resource.document
        else:
            document = origin or resource.document
        located.append(Resource(resource.data, document, None))
    return located


def _policies(root: Path, options: CheckOptions) -> Any:
    """The repository's policies/ and any --policies folders, or None when there are none."""
    folders = [
        f for f in (root / "policies", *options.policies) if f.is_dir() and any(f.glob("*.yaml"))
    ]
    if not folders:
        return None
    from meshcanary import policies

    return policies.load(folders, root)


ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def _key(document: Mapping[str, Any]) -> ObjectKey:
    meta = document.get("metadata") or {}
    return (
        str(document.get("apiVersion", "")),
        str(document.get("kind", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


def _previous(
    baseline: Baseline, units: Sequence[Unit], built: Mapping[int, list[Resource]]
) -> dict[ObjectKey, dict[str, Any]]:
    """The objects at the baseline, keyed as policies look up `oldObject`.

    An overlay whose files and base did not change since is what it was: its objects now are
    its objects then. Only the others are built, from the baseline's files; what they hold
    now and did not then has no old object.
    """
    import tempfile

    def changed(unit: Unit) -> bool:
        base = (unit.release.base,) if unit.release is not None else ()
        return baseline.touches(unit.folder, *base)

    previous = {
        _key(r.data): r.data for unit in units if not changed(unit) for r in built.get(id(unit), [])
    }
    rebuilt = [u for u in units if changed(u)]
    if not rebuilt:
        return previous
    wanted = {u.folder for u in rebuilt} | {u.release.base for u in rebuilt if u.release}
    present = sorted(p for p in wanted if baseline.show(f"{p}/kustomization.yaml") is not None)
    if not present:
        return previous
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
            for document in load_documents(result.output):
                if isinstance(document, dict):
                    previous[_key(document)] = document
    return previous


def load_documents(text: str) -> list[Any]:
    return [load_document(piece) for piece, _ in split_documents(text)]


STEP_RULE = "weight-step"


def _plan_steps(releases: Sequence[Release]) -> list[Problem]:
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


def _weight_steps(baseline: Baseline, releases: Sequence[Release]) -> list[Problem]:
    """A finding per version whose weight moves more than the environment's maxStep since
    the baseline, toward the newer versions, at the weight's line in the release file.

    A canary advances in steps; a rollback (traffic back to the stable, first version) is
    never held back.
    """
    from meshcanary.source import parse_mapping

    problems: list[Problem] = []
    for release in releases:
        step = release.environment.max_step
        if step is None or release.path not in baseline.changed:
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


def _kubeconform(resources: list[Resource], validation: Options) -> list[Verdict]:
    """Verdicts of the kubeconform binary on built resources, mapped back by position."""
    import tempfile

    import yaml

    from meshcanary.validate import kubeconform

    with tempfile.TemporaryDirectory(prefix="meshcanary-") as folder:
        files = []
        for index, resource in enumerate(resources):
            path = Path(folder) / f"{index:06d}.yaml"
            path.write_text(yaml.safe_dump(resource.data, sort_keys=False), encoding="utf-8")
            files.append(str(path))
        output = kubeconform.run(files, validation, None)
    by_file = {str(entry.get("filename")): entry for entry in output.get("resources") or []}
    return [
        kubeconform.verdict(resource, by_file[name]) if name in by_file else Verdict(Status.VALID)
        for resource, name in zip(resources, files, strict=True)
    ]


def build(
    root: Path, units: Sequence[Unit], jobs: int | None = None
) -> list[kustomize.BuildResult]:
    """kustomize output of each unit, built in batches of overlays (see kustomize.batch)."""
    from meshcanary.kustomize import batch

    overlays = [
        batch.Overlay(
            unit.folder,
            unit.environment.environment.name,
            unit.environment.environment.remote_bases,
            unit.release.base if unit.release is not None else None,
        )
        for unit in units
    ]
    return batch.build(root, overlays, jobs)


def _stale(plan: RenderResult, environments: set[str]) -> list[Problem]:
    """A finding per generated file that differs from what the release files render to."""
    from meshcanary.commands import render as render_command

    problems: list[Problem] = []
    for item in plan.plans:
        env = item.folder.rsplit("/", 1)[-1]
        if env not in environments and item.files:
            continue
        changes = [c for c in item.changes if not c.path.endswith(MANIFEST)] or list(item.changes)
        origins = render_command.sources(
            env, [c.path.removeprefix(item.folder + "/") for c in changes]
        )
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


Scope = Mapping[str, "set[str] | None"]


def narrowed(root: Path, paths: Sequence[str]) -> dict[str, set[str] | None]:
    """What the changed `paths` can affect: per environment, some services or (None) all.

    Empty means everything. A pre-commit hook passes release files and generated files:
    loading, rendering and building only their services keeps it fast. A path in a base, or
    anywhere else, can matter to any environment. Checks that span services (a base used
    twice, `objects` in a policy) then see only the services in scope; a full `check`, as in
    CI, sees them all.
    """
    known = set(environment_names(root))
    scope: dict[str, set[str] | None] = {}
    inside = root.resolve()
    for raw in paths:
        path = Path(raw)
        if path.is_absolute():
            if not path.resolve().is_relative_to(inside):
                return {}
            path = path.resolve().relative_to(inside)
        parts = PurePosixPath(path.as_posix()).parts
        service: str | None = None
        if parts[:1] == (ENVIRONMENTS,) and len(parts) >= 2 and parts[1] in known:
            env = parts[1]
            if (
                len(parts) == 3
                and parts[2].endswith(".yaml")
                and parts[2] != ENVIRONMENT_FILE
                and (root / path).is_file()
            ):
                service = parts[2].removesuffix(".yaml")
        elif parts[:2] == ("deploy", "overlays") and len(parts) >= 3 and parts[2] in known:
            env = parts[2]
            if (
                len(parts) >= 5
                and parts[3] != GATEWAYS
                and (root / ENVIRONMENTS / env / f"{parts[3]}.yaml").is_file()
            ):
                service = parts[3]
        else:
            return {}
        if service is None:
            scope[env] = None
        elif env not in scope:
            scope[env] = {service}
        elif (services := scope[env]) is not None:
            services.add(service)
    return scope


def sharded(root: Path, scope: Scope, shard: Shard) -> dict[str, set[str] | None]:
    """The part of `scope` (empty: everything) that `shard` checks.

    The shard that owns an environment loads all of it, to compare the environment's own
    files; the others load only their services.
    """
    narrowed_scope: dict[str, set[str] | None] = {}
    for env in sorted(scope) if scope else environment_names(root):
        services = scope.get(env) if scope else None
        if shard.owns_environment(env):
            narrowed_scope[env] = services
            continue
        if services is None:
            folder = root / ENVIRONMENTS / env
            services = {
                p.name.removesuffix(".yaml")
                for p in folder.iterdir()
                if p.name.endswith(".yaml") and p.name != ENVIRONMENT_FILE
            }
        mine = {s for s in services if shard.owns(s)}
        if mine:
            narrowed_scope[env] = mine
    return narrowed_scope


def _owned(shard: Shard | None, unit: Unit) -> bool:
    if shard is None:
        return True
    if unit.release is None:
        return shard.owns_environment(unit.environment.environment.name)
    return shard.owns(unit.name)


def _owned_path(shard: Shard | None, path: str) -> bool:
    """Whether a generated file's finding belongs to `shard`."""
    if shard is None:
        return True
    parts = path.split("/")
    env, rest = parts[2], parts[3:]
    if len(rest) >= 2 and rest[0] != GATEWAYS:
        return shard.owns(rest[0])
    return shard.owns_environment(env)


def _inputs(scope: Scope) -> tuple[str, ...]:
    """The repository paths a run over `scope` reads (release files also bring their bases)."""
    from meshcanary.commands.cache import TOPS

    if not scope:
        return TOPS
    tops: list[str] = []
    for env, services in sorted(scope.items()):
        if services is None:
            tops += [f"{ENVIRONMENTS}/{env}", f"{OVERLAYS}/{env}"]
            continue
        tops.append(f"{ENVIRONMENTS}/{env}/{ENVIRONMENT_FILE}")
        for service in sorted(services):
            tops += [f"{ENVIRONMENTS}/{env}/{service}.yaml", f"{OVERLAYS}/{env}/{service}"]
        tops.append(f"{OVERLAYS}/{env}/{GATEWAYS}")
    return (*tops, "policies")


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
    # The kubeconform binary is an input the key cannot see: run it afresh.
    if not options.cache or options.kubeconform:
        return _check(root, paths, options, baseline)
    from meshcanary.commands import cache

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
    scope = narrowed(root, paths)
    tops = _inputs(sharded(root, scope, options.shard) if options.shard else scope)
    name = cache.key(root, settings, list(paths), extra, " ".join(kustomize.command()), tops)
    cached = cache.read(name)
    if cached is not None:
        return cached
    report = _check(root, paths, options, baseline)
    # A policy stopped by its budget depends on the machine's speed, not on the inputs.
    if not any(_stopped_policy(p) for p in report.problems):
        cache.write(name, report)
    return report


def _stopped_policy(problem: Problem) -> bool:
    """A finding about a policy itself: only a policy stopped by its budget is one."""
    return problem.resource is not None and problem.resource.kind == "ValidatingAdmissionPolicy"


def _check(
    root: Path, paths: Sequence[str], options: CheckOptions, baseline: Baseline | None = None
) -> Report:
    from meshcanary import rules
    from meshcanary.commands import render as render_command
    from meshcanary.validate.embedded import EmbeddedValidator

    shard = options.shard
    scope = narrowed(root, paths)
    if shard is not None:
        scope = sharded(root, scope, shard)
        if not scope:
            return _report([], [], None)
    only = {env: services for env, services in scope.items() if services is not None}
    plan = render_command.plan(root, sorted(scope), only)
    environments = list(plan.environments)
    units = affected(root, environments, paths)
    # Besides its own units, a shard builds the gateways its routes bind to, to relate
    # them, but reports nothing of them: their environment's shard does.
    own = [u for u in units if _owned(shard, u)]
    # By identity: comparing the dataclasses would make this quadratic in the overlays.
    own_ids = {id(u) for u in own}
    served = {id(u.environment) for u in own}
    units = [
        u for u in units if id(u) in own_ids or (u.release is None and id(u.environment) in served)
    ]
    # The environments the paths name are compared even when no unit is left to build: a
    # deleted release file leaves an overlay that nothing renders any more.
    compared = {u.environment.environment.name for u in units} | set(scope)
    problems = [p for p in _stale(plan, compared) if _owned_path(shard, p.location.file)]
    results = build(root, units, options.jobs)
    by_environment: dict[str, list[Resource]] = {}
    by_unit: dict[int, list[Resource]] = {}
    context: set[int] = set()
    for unit, result in zip(units, results, strict=True):
        if id(unit) not in own_ids:
            if result.ok:
                located = by_unit[id(unit)] = _resources(root, unit, result)
                context.update(id(r) for r in located)
                by_environment.setdefault(unit.environment.environment.name, []).extend(located)
            continue
        if result.problems:
            # Refused before kustomize ran: each at the line that names it.
            problems.extend(replace(p, rule=BUILD_RULE) for p in result.problems)
            continue
        if not result.ok:
            problems.append(
                Problem(
                    Location(f"{unit.folder}/kustomization.yaml"),
                    f"kustomize build failed: {result.error}",
                    rule=BUILD_RULE,
                )
            )
            continue
        located = by_unit[id(unit)] = _resources(root, unit, result)
        by_environment.setdefault(unit.environment.environment.name, []).extend(located)
    releases = [u.release for u in own if u.release is not None]
    problems += _plan_steps(releases)
    if baseline is not None:
        problems += _weight_steps(baseline, releases)
    policy_set = _policies(root, options)
    previous = _previous(baseline, units, by_unit) if baseline is not None and policy_set else {}
    outcome: list[ResourceResult] = []
    for loaded in environments:
        resources = by_environment.get(loaded.environment.name, [])
        if not resources:
            continue
        validation = options.validation
        if validation.kubernetes_version is None and loaded.environment.kubernetes_version:
            validation = replace(
                validation, kubernetes_version=loaded.environment.kubernetes_version
            )
        related = resources
        resources = [r for r in related if id(r) not in context]
        if options.kubeconform:
            verdicts: list[Verdict] = _kubeconform(resources, validation)
        else:
            validator = EmbeddedValidator(validation)
            verdicts = [validator.validate(r) for r in resources]
        severities = dict(loaded.environment.rule_severities)
        found = rules.run(rules.Scope(related), severities)
        if policy_set is not None:
            found += policy_set.evaluate(related, previous)
        if context:
            # Findings on objects that are here only as context belong to another run; a
            # finding on no object of the run (a policy stopped by its budget) stays.
            checked = {r.ref for r in resources}
            others = {r.ref for r in related} - checked
            found = [p for p in found if p.resource is None or p.resource not in others]
        problems.extend(p for v in verdicts for p in v.problems)
        problems.extend(found)
        by_resource: dict[ResourceRef, list[Problem]] = {}
        for problem in found:
            if problem.resource is not None:
                by_resource.setdefault(problem.resource, []).append(problem)
        for resource, verdict in zip(resources, verdicts, strict=True):
            mine = by_resource.get(resource.ref, [])
            outcome.append(
                ResourceResult(
                    resource.file, resource.ref, verdict.status, (*verdict.problems, *mine)
                )
            )
    return _report(problems, outcome, policy_set)


def _report(problems: list[Problem], outcome: list[ResourceResult], policy_set: Any) -> Report:
    from meshcanary import rules

    infos = tuple(
        RuleInfo(rule.ID, rule.SEVERITY, rule.SUMMARY, (rule.__doc__ or "").strip())
        for rule in rules.all_rules()
    )
    extra = (
        RuleInfo(
            RENDER_RULE,
            Severity.ERROR,
            "the committed deploy/overlays/ is what the release files render to",
        ),
        RuleInfo(BUILD_RULE, Severity.ERROR, "every overlay builds with kustomize"),
        RuleInfo(
            STEP_RULE,
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
