"""What a check covers: the services changed paths can affect, the overlays they build, and
the part of them a CI shard owns."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from meshcanary.check.cache import TOPS
from meshcanary.layout import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS,
    GATEWAYS,
    OVERLAYS,
    environment_names,
)

if TYPE_CHECKING:
    from meshcanary.release.load import LoadedEnvironment
    from meshcanary.release.model import Release

# Per environment, some services or (None) all of them; empty means every environment.
Scope = Mapping[str, "set[str] | None"]


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


def inputs(scope: Scope) -> tuple[str, ...]:
    """The repository paths a run over `scope` reads (release files also bring their bases)."""
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


# Compared by identity: equal units are the same unit, and comparing the dataclasses field by
# field would make the sets of units below quadratic in the overlays.
@dataclass(frozen=True, eq=False)
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
    chosen: set[Unit] = set()
    for raw in paths:
        path = (
            PurePosixPath(Path(raw).resolve().relative_to(root.resolve()).as_posix())
            if Path(raw).is_absolute()
            else PurePosixPath(raw)
        )
        chosen.update(unit for unit in units if _touches(path, unit))
    return with_gateways(units, chosen)


def _touches(path: PurePosixPath, unit: Unit) -> bool:
    """Whether a change at `path` can change what `unit` builds."""
    parts = path.parts
    env = unit.environment.environment.name
    release = unit.release
    if parts[:2] == (ENVIRONMENTS, env) and len(parts) == 3:
        return parts[2] == ENVIRONMENT_FILE or (
            release is not None and parts[2] == f"{release.service}.yaml"
        )
    if parts[:3] == ("deploy", "overlays", env) and len(parts) >= 4:
        return parts[3] == unit.name or len(parts) == 4
    return release is not None and str(path).startswith(release.base.rstrip("/") + "/")


def with_gateways(units: Sequence[Unit], chosen: Collection[Unit]) -> list[Unit]:
    """The `chosen` units, in the order of `units`, and the gateways of every environment a
    chosen service is in: the routes of a service bind to them."""
    served = {u.environment.environment.name for u in chosen if u.release is not None}
    return [
        u
        for u in units
        if u in chosen or (u.release is None and u.environment.environment.name in served)
    ]


def owned(shard: Shard | None, unit: Unit) -> bool:
    """Whether `shard` (None: the only one) reports on `unit`."""
    if shard is None:
        return True
    if unit.release is None:
        return shard.owns_environment(unit.environment.environment.name)
    return shard.owns(unit.name)


def owned_path(shard: Shard | None, path: str) -> bool:
    """Whether a generated file's finding belongs to `shard`."""
    if shard is None:
        return True
    parts = path.split("/")
    env, rest = parts[2], parts[3:]
    if len(rest) >= 2 and rest[0] != GATEWAYS:
        return shard.owns(rest[0])
    return shard.owns_environment(env)
