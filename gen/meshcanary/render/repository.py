"""Rendering a repository: every environment's release files to its deploy/overlays/<env>/.

`plan` renders in memory and compares with the tree on disk; `render` writes what is stale.
Both also say where the release files decided each field they render (`provenance`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcanary import progress
from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENTS, GATEWAYS, HASHES_FILE, OVERLAYS
from meshcanary.problem import Problem
from meshcanary.release.load import LoadedEnvironment, load
from meshcanary.render import tree
from meshcanary.render.base import Base
from meshcanary.render.overlay import environment_files
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


def _orphans(root: Path, rendered: set[str]) -> list[str]:
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
    environments = load(root, names, only)
    progress.start("render", sum(len(loaded.releases) for loaded in environments))
    cache: dict[str, Base] = {}
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
        for orphan in _orphans(root, {e.environment.name for e in environments}):
            plans.append(tree.plan(root, f"{OVERLAYS}/{orphan}", {}, {}))
    return RenderResult(tuple(plans), tuple(environments), provenance)


def render(root: Path, names: Sequence[str] = (), *, force: bool = False) -> RenderResult:
    """Render and write every stale environment; nothing is written if any would conflict."""
    from meshcanary.lock import exclusive

    with exclusive(root):
        return _render(root, names, force=force)


def _render(root: Path, names: Sequence[str], *, force: bool) -> RenderResult:
    tree.recover(root, OVERLAYS)
    # An edit killed before renaming its new release file into place left the file beside it.
    tree.discard_temporary(root / ENVIRONMENTS)
    result = plan(root, names)
    conflicts = [c for p in result.plans for c in p.conflicts]
    if conflicts and not force:
        raise InputError(conflicts)
    for item in result.plans:
        tree.apply(root, item, force=force)
    return result
