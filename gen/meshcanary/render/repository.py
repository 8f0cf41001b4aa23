"""Rendering a repository: every environment's release files to its deploy/overlays/<env>/.

`plan` renders in memory and compares with the tree on disk; `render` writes what is stale:
the service folders that changed, or the whole environment when its own files change.
Both also say where the release files decided each field they render (`provenance`).
`plan_service` and `write_service` write one service's folder alone (an edit's), and the
whole environment only when its own files would change too.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcanary import progress
from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS, GATEWAYS, HASHES_FILE, OVERLAYS
from meshcanary.problem import Problem
from meshcanary.release.load import LoadedEnvironment, load
from meshcanary.release.model import Environment
from meshcanary.render import swap, tree
from meshcanary.render.base import Base
from meshcanary.render.emit import document
from meshcanary.render.overlay import KUSTOMIZATION, environment_files, header
from meshcanary.render.provenance import Provenance


@dataclass(frozen=True)
class RenderResult:
    plans: tuple[tree.Plan, ...]
    environments: tuple[LoadedEnvironment, ...]
    # Where the release and environment files decided each field of the objects rendered.
    provenance: Provenance = field(default_factory=Provenance, compare=False)

    @property
    def stale(self) -> bool:
        return any(p.stale for p in self.plans)

    @property
    def notices(self) -> list[Problem]:
        return [n for p in self.plans for n in p.notices]

    def diff(self) -> str:
        return tree.unified_diff(list(self.plans))


def sources(env: str, files: Iterable[str]) -> dict[str, str]:
    """The release or environment file each generated path (relative to the env folder) comes from."""
    sources: dict[str, str] = {}
    for path in files:
        first = path.split("/", 1)[0]
        if first == GATEWAYS:
            sources[path] = f"{ENVIRONMENTS}/{env}/environment.yaml"
        elif "/" in path:
            sources[path] = f"{ENVIRONMENTS}/{env}/{first}.yaml"
        else:
            sources[path] = f"{ENVIRONMENTS}/{env}/"
    return sources


def orphans(root: Path, rendered: set[str]) -> list[str]:
    """Environment folders meshcanary wrote whose environment is gone."""
    parent = root / OVERLAYS
    if not parent.is_dir():
        return []
    return sorted(
        p.name
        for p in parent.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in rendered
        and (p / HASHES_FILE).is_file()
    )


def plan(
    root: Path, names: Sequence[str] = (), only: Mapping[str, Collection[str]] | None = None
) -> RenderResult:
    """Render in memory and compare with the tree on disk; writes nothing.

    `only` narrows environments to some services: their folders (and the environment's
    gateways) are compared, in partial plans that cannot be applied.
    """
    return rendered(root, load(root, names, only), names, only)


def rendered(
    root: Path,
    environments: Sequence[LoadedEnvironment],
    names: Sequence[str] = (),
    only: Mapping[str, Collection[str]] | None = None,
    bases: dict[str, Base] | None = None,
) -> RenderResult:
    """`plan` of environments loaded already (`load(root, names, only)`): `check` starts
    kustomize on their overlays, which are on disk, before they are rendered. Each base is
    read once, and kept in `bases` when given, for the next call's environments."""
    progress.start("render", sum(len(loaded.releases) for loaded in environments))
    cache: dict[str, Base] = {} if bases is None else bases
    plans: list[tree.Plan] = []
    problems: list[Problem] = []
    provenance = Provenance()
    for loaded in environments:
        name = loaded.environment.name
        try:
            rendered = environment_files(root, loaded, cache)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        files = rendered.files
        provenance.update(rendered.provenance)
        within = (
            (*(f"{service}/" for service in sorted(only[name])), f"{GATEWAYS}/")
            if only and name in only
            else ()
        )
        plans.append(tree.plan(root, f"{OVERLAYS}/{name}", files, sources(name, files), within))
    if problems:
        raise InputError(problems)
    if not names:
        for orphan in orphans(root, {e.environment.name for e in environments}):
            plans.append(tree.plan(root, f"{OVERLAYS}/{orphan}", {}, {}))
    return RenderResult(tuple(plans), tuple(environments), provenance)


def render(root: Path, names: Sequence[str] = (), *, force: bool = False) -> RenderResult:
    """Render and write every stale environment; nothing is written if any would conflict."""
    from meshcanary.lock import exclusive

    with exclusive(root):
        return _render(root, names, force=force)


def recover(root: Path) -> None:
    """Finish what a killed writer left: a half-done swap, a release file not renamed yet."""
    swap.recover(root, OVERLAYS)
    # An edit killed before renaming its new release file into place left the file beside it.
    swap.discard_temporary(root / ENVIRONMENTS)


def _render(root: Path, names: Sequence[str], *, force: bool) -> RenderResult:
    recover(root)
    result = plan(root, names)
    conflicts = [c for p in result.plans for c in p.conflicts]
    if conflicts and not force:
        raise InputError(conflicts)
    for item in result.plans:
        tree.apply_all(root, _swaps(root, item), force=force)
    return result


# Swapping service folders alone writes only their files; one swap of the whole environment
# copies every file of it (7,000 at 1000 services: about 5 s of an 8 s render). But the folders
# are all staged before any is swapped in, and each is held open and locked until then (with
# the folder it replaces: two descriptors a service): past this many, one whole swap, which
# also puts the environment in place in one step, keeps a render far from the usual limit of
# 1,024 open files.
_MOST_SERVICE_SWAPS = 64


def _swaps(root: Path, item: tree.Plan) -> list[tree.Plan]:
    """The swaps that write an environment's plan: one per service folder it changes, as an
    edit writes one, when the environment's own files stay as they are (the same condition
    as `plan_service`'s `whole`); else the whole environment's.

    A service folder swapped alone leaves every other service's files as they were, inodes
    included: `check` remembers file digests by stat and would otherwise hash the whole
    environment again after a one-service change.
    """
    folders = tree.changed_folders(item)
    base = root / item.folder
    if (
        not item.files  # an environment removed: its folder goes
        or "" in folders  # kustomization.yaml, _gateways/, a service added or removed, the layout
        or len(folders) > _MOST_SERVICE_SWAPS
        # A folder that is a link is the whole render's to refuse or replace.
        or os.path.islink(base)
        or any(os.path.islink(base / service) for service in folders)
    ):
        return [item]
    return [tree.service_plan(item, service) for service in sorted(folders)]


def environment_kustomization(environment: Environment, services: Sequence[str]) -> str:
    """The environment's own kustomization.yaml for these services, as `environment_files`
    renders it, without rendering (or loading) the services."""
    resources = [*([GATEWAYS] if environment.gateways else []), *services]
    return document(
        {**KUSTOMIZATION, "resources": resources},
        header(f"{ENVIRONMENTS}/{environment.name}/"),
    )


def _services(root: Path, environment: str) -> list[str]:
    """The services of an environment by the names of its release files, as `load` finds them."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in os.scandir(root / ENVIRONMENTS / environment)
        if entry.name.endswith(".yaml")
        and entry.name != ENVIRONMENT_FILE
        and not entry.name.startswith(".")
    )


@dataclass(frozen=True)
class ServicePlan:
    """What writing one service's newly rendered folder into a repository changes."""

    environment: str
    service: str
    plan: tree.Plan  # of deploy/overlays/<env>/<service>/, its hash file included
    # The environment's own files (kustomization.yaml, _gateways/, their hash file) would
    # change as well, or are in the earlier layout: then the environment is rendered whole.
    whole: bool


def plan_service(root: Path, rendered: RenderResult, service: str) -> ServicePlan:
    """Compare `service`'s folder as `rendered` has it with the one in `root`; writes nothing.

    `rendered` holds one environment with `service` among its releases: rendered in `root`
    (`plan(root, [env], {env: {service}})`), or in a copy with the same environment file,
    release file and base (an edit renders and checks one there, then writes it here). Only
    the environment's release file names are read besides: they decide its kustomization.yaml.
    """
    (item,), (loaded,) = rendered.plans, rendered.environments
    environment = loaded.environment
    folder = f"{OVERLAYS}/{environment.name}"
    prefix = f"{service}/"
    generated = {
        path: text
        for path, text in item.files.items()
        if path.startswith(prefix) and not tree.is_hash_file(path)
    }
    compared = tree.plan(root, folder, generated, sources(environment.name, generated), (prefix,))
    own = {
        path: text
        for path, text in item.files.items()
        if path.startswith(f"{GATEWAYS}/") and not tree.is_hash_file(path)
    }
    own["kustomization.yaml"] = environment_kustomization(
        environment, _services(root, environment.name)
    )
    # A service folder that is a link is the whole render's to refuse or replace.
    whole = os.path.islink(root / folder / service) or not tree.holds(root, folder, own)
    return ServicePlan(environment.name, service, tree.service_plan(compared, service), whole)


def write_service(root: Path, update: ServicePlan, *, force: bool = False) -> None:
    """Write what `plan_service` found: the service's folder in one swap, or, when the
    environment's own files change too, the whole environment as `render` does."""
    from meshcanary.lock import exclusive

    with exclusive(root):
        if update.whole:
            _render(root, [update.environment], force=force)
            return
        # Loaded again as a render here would load it: a base removed since the service was
        # rendered stops the write at the release file's `base:` line.
        load(root, [update.environment], {update.environment: {update.service}})
        tree.apply(root, update.plan, force=force)


def render_service(root: Path, environment: str, service: str, *, force: bool = False) -> None:
    """Render one service of `environment` into its folder (the whole environment when its
    own files would change too); nothing is written if anything would conflict."""
    from meshcanary.lock import exclusive

    with exclusive(root):
        recover(root)
        rendered = plan(root, [environment], {environment: {service}})
        write_service(root, plan_service(root, rendered, service), force=force)
