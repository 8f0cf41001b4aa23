"""How one version's Deployment differs from the base's, written as a strategic-merge patch.

The base holds the stable version's Deployment; a version whose Deployment differs beyond its
image and replicas (args, env, resources, probes) keeps the difference as `versions.<v>.patch`,
which kustomize merges the way `kubectl patch` does: maps key by key (a `null` removes a key),
lists of containers, env, volumes and mounts element by element on their merge key (an element
with `$patch: delete` removes one), every other list replaced whole.
"""

from __future__ import annotations

import copy
from typing import Any

# The merge key of the Deployment's associative lists, by the field that holds the list
# (Kubernetes' `patchMergeKey`). A list not named here is replaced whole by a patch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ports": "containerPort",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def patch(base: Any, other: Any) -> dict[str, Any] | None:
    """The strategic-merge patch that turns `base` into `other` (both mappings); None when they
    are the same."""
    found = _map(base, other) if isinstance(base, dict) and isinstance(other, dict) else None
    return found or None


def _map(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in other.items():
        if key not in base:
            result[key] = copy.deepcopy(value)
            continue
        changed = _value(key, base[key], value)
        if changed is not _SAME:
            result[key] = changed
    for key in base:
        if key not in other:
            result[key] = None  # a null in a strategic-merge patch removes the key
    return result


class _Same:
    """Marks a value the patch leaves alone."""


_SAME = _Same()


def _value(key: str, base: Any, other: Any) -> Any:
    if base == other and type(base) is type(other):
        return _SAME
    if isinstance(base, dict) and isinstance(other, dict):
        return _map(base, other) or _SAME
    merge_key = MERGE_KEYS.get(key)
    if merge_key and _keyed(base, merge_key) and _keyed(other, merge_key):
        return _list(base, other, merge_key)
    return copy.deepcopy(other)


def _keyed(items: Any, merge_key: str) -> bool:
    """A list whose elements are mappings, each with a distinct merge key."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return False
    keys = [i.get(merge_key) for i in items]
    return None not in keys and len(set(map(repr, keys))) == len(keys)


def _list(base: list[dict[str, Any]], other: list[dict[str, Any]], merge_key: str) -> Any:
    """Element patches on the merge key. kustomize puts the patch's elements first, in the
    patch's order, so every element is named (unchanged ones by their key alone) to keep the
    version's order."""
    before = {repr(i[merge_key]): i for i in base}
    after = {repr(i[merge_key]): i for i in other}
    elements: list[dict[str, Any]] = []
    changed = False
    for name, element in after.items():
        if name not in before:
            elements.append(copy.deepcopy(element))
            changed = True
            continue
        difference = _map(before[name], element)
        changed = changed or bool(difference)
        elements.append({merge_key: element[merge_key], **difference})
    for name, element in before.items():
        if name not in after:
            elements.append({merge_key: element[merge_key], "$patch": "delete"})
            changed = True
    if not changed and list(before) == list(after):
        return _SAME
    return elements
