"""Where each field the renderer writes was decided: a place in a release or environment file.

The renderer records, as it builds each object, which key of which file decided each field
(`Origin`): a weight's line for `spec.http[i].route[j].weight`, the version's key for its
subset, the environment file's gateway for a Gateway's servers. kustomize output names the
objects, so they are keyed as it outputs them (environment, kind, namespace, name). `check`
points findings on those fields there rather than into generated files that say "do not edit".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshcanary.positions import JsonPath
from meshcanary.problem import Location
from meshcanary.source import SourceDoc

FieldPath = tuple[str, ...]  # a JSON path with indexes as text, as a JSON Pointer has them
ObjectKey = tuple[str, str, str, str]  # environment, kind, namespace, name


def field_path(path: JsonPath) -> FieldPath:
    return tuple(str(part) for part in path)


def parse_pointer(pointer: str) -> FieldPath:
    """The steps of a JSON Pointer (RFC 6901), as `manifest.pointer` writes them."""
    if not pointer:
        return ()
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


@dataclass(frozen=True)
class Origin:
    """A key of a release or environment file that decides a field of a generated object."""

    source: SourceDoc = field(compare=False)
    path: tuple[str | int, ...]
    key: bool = False  # the key itself (a version's name), not its value
    # Copied as written (trafficPolicy, a Gateway's servers): a field deeper in the object is
    # the same field deeper in the file.
    verbatim: bool = False

    @property
    def file(self) -> str:
        return self.source.display

    def location(self, rest: Sequence[str] = ()) -> Location:
        """Where the field `rest` below the recorded one is written (the recorded place
        itself unless the value is copied as written).

        A mapping or a list is shown at its key (`gateways:`), where a block starts; a
        scalar at its value.
        """
        path: list[str | int] = list(self.path)
        if self.verbatim and rest:
            path += [int(p) if p.isdecimal() else p for p in rest]
        return self.source.location(path, key=self.key or _collection(self.source.data, path))


def _collection(data: Any, path: Sequence[str | int]) -> bool:
    """Whether the value at `path` is a mapping or a list."""
    for part in path:
        inside = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not inside and not (isinstance(data, dict) and part in data):
            return False
        data = data[part]
    return isinstance(data, dict | list)


@dataclass(frozen=True)
class Origins:
    """Where the fields of one generated object were decided."""

    owner: str  # the release or environment file that generates the object
    fields: Mapping[FieldPath, Origin]
    # For a field not listed; None when what is not listed comes from the base, whose own
    # files say where.
    fallback: Origin | None = None

    def find(self, path: Sequence[str]) -> tuple[Origin, FieldPath] | None:
        """The origin of the longest recorded prefix of `path`, and the rest of `path`."""
        for end in range(len(path), -1, -1):
            origin = self.fields.get(tuple(path[:end]))
            if origin is not None:
                return origin, tuple(path[end:])
        return (self.fallback, ()) if self.fallback is not None else None


@dataclass(frozen=True)
class Generated:
    """An object the renderer writes, and where its fields were decided."""

    body: dict[str, Any]
    origins: Origins


class Recorder:
    """Collects the origins of one object's fields as the renderer builds it."""

    def __init__(self, source: SourceDoc) -> None:
        self.source = source
        self.fields: dict[FieldPath, Origin] = {}

    def add(
        self,
        at: JsonPath,
        decided_by: JsonPath,
        *,
        key: bool = False,
        verbatim: bool = False,
        source: SourceDoc | None = None,
    ) -> None:
        """Record that the field at `at` is what `decided_by` in the file says."""
        self.fields[field_path(at)] = Origin(
            source or self.source, tuple(decided_by), key, verbatim
        )

    def origins(self, fallback: JsonPath | None = None, *, key: bool = False) -> Origins:
        """The recorded fields; a field not recorded falls back to `fallback` in the file
        (None: to the base)."""
        found = Origin(self.source, tuple(fallback), key) if fallback is not None else None
        return Origins(self.source.display, dict(self.fields), found)


class Provenance:
    """The origins of every object a render generates, keyed as kustomize outputs them, and
    of what every object of an environment gets (its namespace), whatever kustomize names it."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Origins] = {}
        self._environments: dict[str, Origins] = {}

    def record(
        self, environment: str, kind: str, namespace: str, name: str, origins: Origins
    ) -> None:
        self._objects[(environment, kind, namespace, name)] = origins

    def record_environment(self, environment: str, origins: Origins) -> None:
        """What every object of `environment` not recorded on its own gets."""
        self._environments[environment] = origins

    def update(self, other: Provenance) -> None:
        self._objects.update(other._objects)
        self._environments.update(other._environments)

    def of(self, environment: str, kind: str, namespace: str, name: str) -> Origins | None:
        found = self._objects.get((environment, kind, namespace, name))
        return found if found is not None else self._environments.get(environment)

    def items(self) -> Iterator[tuple[ObjectKey, Origins]]:
        return iter(self._objects.items())
