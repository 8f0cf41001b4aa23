"""Every object has `apiVersion`, `kind` and a name (`metadata.name` or `generateName`).

Without these the API server cannot tell what the object is or which one it is, and `kubectl
apply` refuses the whole file. The usual cause in hand-written manifests is a misspelt key:
the article this project started from has `meta data:` where `metadata:` belongs, which YAML
happily reads as a different key, leaving the Deployment without a name.

When a required top-level key is missing and another top-level key looks like a misspelling
of it (same letters apart from case, spaces or punctuation, or one or two typos away), the
finding points at that key and says what to rename it to. Otherwise it points at the start of
the object (or at `metadata`, when only the name is missing).

Fix: add the missing field, or rename the misspelt key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from meshcanary.manifest import Resource
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "resource-name"
SEVERITY = Severity.ERROR
SUMMARY = "every object has apiVersion, kind and metadata.name (or generateName)"
HINT = "add apiVersion, kind and metadata.name to the object"
RELEASE_HINT = (
    "the release file renders this object with its name: a generated file edited by hand is "
    "rendered again with `meshcanary render --force`"
)

REQUIRED = ("apiVersion", "kind", "metadata")


def check(scope: Scope) -> Iterator[Finding]:
    for resource in scope.resources:
        yield from _check(resource)


def _present(resource: Resource, field: str) -> bool:
    value = resource.data.get(field)
    if field == "metadata":
        return isinstance(value, dict)
    return isinstance(value, str) and bool(value.strip())


def _check(resource: Resource) -> Iterator[Finding]:
    absent: list[str] = []
    for field in REQUIRED:
        if _present(resource, field):
            continue
        misspelt = misspelling(field, [k for k in resource.data if isinstance(k, str)])
        if misspelt is None:
            absent.append(field)
            continue
        without = "no metadata, so no name" if field == "metadata" else f"no {field}"
        yield Finding(
            resource,
            [misspelt],
            f"top-level key {misspelt!r} looks like a misspelt {field!r}; as written the "
            f"object has {without}",
            hint=f"rename {misspelt!r} to {field!r}",
            key=True,
        )
    if absent:
        # A key that is there with an empty or wrong value is the place to fix.
        path = [field for field in absent if field in resource.data][:1]
        shown = ("metadata.name" if field == "metadata" else field for field in absent)
        yield Finding(resource, path, f"object has no {', '.join(shown)}")
        return
    if not _present(resource, "metadata"):
        return  # reported above as a misspelt key
    metadata = resource.metadata
    if not _named(metadata.get("name")) and not _named(metadata.get("generateName")):
        path = ["metadata", "name"] if "name" in metadata else ["metadata"]
        yield Finding(
            resource,
            path,
            "metadata has no name (or generateName)",
            hint="add metadata.name",
            key=path == ["metadata"],
        )


def _named(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def misspelling(field: str, keys: list[str]) -> str | None:
    """The key among `keys` that looks like `field` misspelt, if one does."""
    wanted = _normal(field)
    allowed = max(1, len(wanted) // 4)
    for key in keys:
        if key == field or key in REQUIRED:
            continue
        if _distance(_normal(key), wanted) <= allowed:
            return key
    return None


def _distance(one: str, other: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    if abs(len(one) - len(other)) > 2:
        return 3
    rows = [list(range(len(other) + 1))]
    for i, a in enumerate(one, 1):
        row = [i]
        for j, b in enumerate(other, 1):
            cost = min(row[j - 1] + 1, rows[-1][j] + 1, rows[-1][j - 1] + (a != b))
            if i > 1 and j > 1 and a == other[j - 2] and one[i - 2] == b:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]
