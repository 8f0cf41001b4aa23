"""What every step of one import shares: its notes, the names it decided, and where the
release file's fields were read from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jsonschema import ValidationError

from meshcanary.layout import ENVIRONMENTS
from meshcanary.manifest import JsonPath, Resource, pointer
from meshcanary.mesh import resolve_host
from meshcanary.problem import Location, Problem, Severity

BASES = "deploy/base"

# What a note says of the field it is at: the release and base say it another way with the same
# meaning (normalized), or they cannot say it at all (refused: the import writes nothing unless
# `--drop` names the field, which makes it dropped).
NORMALIZED = "import-normalized"
REFUSED = "import-refused"
DROPPED = "import-dropped"


def what(resource: Resource) -> str:
    return f"{resource.kind} {resource.name}" if resource.name else f"{resource.kind} (no name)"


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the object"


def refused(error: ValidationError) -> str:
    """Why a value read from the manifests cannot stand in a release or environment file."""
    described = error.schema.get("description") if isinstance(error.schema, dict) else None
    where = dotted(list(error.absolute_path))
    if error.validator in ("pattern", "minLength", "maxLength") and described:
        return f"cannot import {where} {json.dumps(error.instance)}: {described}"
    return f"cannot import {where}: {error.message}"


def drop_key(resource: Resource, path: Sequence[str | int]) -> str:
    """How `--drop` names a field: `Kind/name:spec.http[1].fault` (`Kind/name` for the object)."""
    where = dotted(list(path)) if path else ""
    return f"{resource.kind}/{resource.name}" + (f":{where}" if where else "")


def _covers(drop: str, key: str) -> bool:
    """Whether `--drop drop` accepts the loss of the field `key` names (it or a parent of it)."""
    return key == drop or key.startswith((f"{drop}.", f"{drop}[", f"{drop}:"))


def _and(hint: str, more: str) -> str:
    return f"{hint}; {more}" if hint else more


@dataclass
class Notes:
    """What the import could not carry over, each located at the field it was read from."""

    problems: list[Problem] = field(default_factory=list)
    drops: tuple[str, ...] = ()  # --drop FIELD-PATH: losses the user accepts
    used_drops: set[str] = field(default_factory=set)

    def refuse(
        self, resource: Resource, path: JsonPath, message: str, hint: str = "", *, key: bool = False
    ) -> None:
        """The field at `path` (and all under it) cannot be carried over: the import fails
        unless a `--drop` covers it, and then it is reported as dropped."""
        name = drop_key(resource, path)
        drop = next((d for d in self.drops if _covers(d, name)), None)
        if drop is not None:
            self.used_drops.add(drop)
        if "--drop" not in hint:
            hint = _and(hint, f"to import without it, pass --drop '{name}'")
        rule, severity = (DROPPED, Severity.INFO) if drop else (REFUSED, Severity.ERROR)
        self._add(resource, path, key, Problem(Location(""), message, hint, rule, severity))

    def normalize(
        self, resource: Resource, path: JsonPath, message: str, hint: str = "", *, key: bool = False
    ) -> None:
        """The field at `path` is carried over in another form with the same meaning."""
        note = Problem(Location(""), message, hint, NORMALIZED, Severity.INFO)
        self._add(resource, path, key, note)

    def _add(self, resource: Resource, path: JsonPath, key: bool, note: Problem) -> None:
        """`note`, at the field of `resource` it is about."""
        self.problems.append(
            replace(
                note,
                location=resource.location(path, key=key),
                resource=resource.ref,
                path=pointer(path),
            )
        )

    def in_order(self) -> tuple[Problem, ...]:
        """Each note once (the last said at a place wins), sorted by position."""
        unique = {(n.location, n.message): n for n in self.problems}
        return tuple(sorted(unique.values(), key=Problem.sort_key))


@dataclass
class Origins:
    """Where each field of a generated file was read from, to locate schema problems."""

    fallback: Location
    known: dict[tuple[str | int, ...], Location] = field(default_factory=dict)

    def add(self, path: tuple[str | int, ...], location: Location) -> None:
        self.known.setdefault(path, location)

    def at(self, path: Sequence[str | int]) -> Location:
        parts = tuple(path)
        while parts:
            if parts in self.known:
                return self.known[parts]
            parts = parts[:-1]
        return self.known.get((), self.fallback)


@dataclass(frozen=True)
class Context:
    """One import once its Service is chosen: where it writes, and the names it uses."""

    root: Path
    environment: str
    service: str  # the release's: --service, else the Service's name
    service_name: str  # the Service's, which routes and DestinationRules name as their host
    source_namespace: str  # the manifests' namespace
    target_namespace: str  # the environment's
    env_path: str
    env_data: dict[str, Any] | None  # the environment file, when it exists already
    header: str  # the comment that names the imported files
    notes: Notes
    origins: Origins  # of the release file's fields

    def refuse(
        self, resource: Resource, path: JsonPath, message: str, hint: str = "", *, key: bool = False
    ) -> None:
        self.notes.refuse(resource, path, message, hint, key=key)

    def normalize(
        self, resource: Resource, path: JsonPath, message: str, hint: str = "", *, key: bool = False
    ) -> None:
        self.notes.normalize(resource, path, message, hint, key=key)

    @property
    def release_path(self) -> str:
        return f"{ENVIRONMENTS}/{self.environment}/{self.service}.yaml"

    @property
    def base(self) -> str:
        return f"{BASES}/{self.service}"

    def namespace(self, resource: Resource) -> str:
        """The namespace an object lands in: its own, else the one the manifests share."""
        return resource.namespace or self.source_namespace

    def service_host(self, resource: Resource) -> str:
        """The Service's host as `resource` resolves it."""
        return resolve_host(self.service_name, self.namespace(resource))

    def refers_to_service(self, host: Any, resource: Resource) -> bool:
        """Whether `host`, read in `resource`'s namespace, is the Service's."""
        return isinstance(host, str) and resolve_host(
            host, self.namespace(resource)
        ) == self.service_host(resource)
