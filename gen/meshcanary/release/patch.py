"""A version's patch of its Deployment: what it may not touch, and where it says so.

`versions.<v>.patch` is a strategic-merge patch that kustomize applies to the base's
Deployment in that version's folder, for what differs beyond image and replicas. The release
and the base own the Deployment's identity (apiVersion, kind, name, namespace), its selector
and replica count, the pod labels the Service and the subsets select on, and the managed
container's image; a patch that touches any of them is refused at the key that does, as is
a directive (`$patch`, `$retainKeys`) that would replace or drop them wholesale. Other `$`
keys deeper in the patch are kustomize's directives (`$patch: delete` on an env entry) and
stay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from meshcanary.problem import Problem
from meshcanary.source import SourceDoc

# Directives that replace or prune the mapping holding them.
_WHOLESALE = ("$patch", "$retainKeys")

# Leaves name what owns the field, for the hint; mappings are walked into.
_OWNED: dict[str, Any] = {
    "apiVersion": "the patch applies to the version's Deployment; remove it",
    "kind": "the patch applies to the version's Deployment; remove it",
    "metadata": {
        "name": "the renderer names the Deployment <service>-<version>; remove it",
        "namespace": "environment.yaml sets the namespace; remove it",
        "annotations": {},  # walked for kustomize's own annotations (_KUSTOMIZE)
    },
    "spec": {
        "selector": "the selector is the base's plus version; change the base instead",
        "replicas": "set versions.{version}.replicas instead",
        "template": {
            "metadata": {
                "labels": {
                    "app": "the Service and the subsets select pods on it; change the base instead",
                    "version": "the renderer sets it to the version's name; remove it",
                }
            },
            "spec": {"containers": None},  # a list, checked element by element
        },
    },
}
CONTAINERS = ("spec", "template", "spec", "containers")
# Annotations kustomize acts on (config.kubernetes.io/local-config drops the object).
_KUSTOMIZE = ("config.kubernetes.io/", "internal.config.kubernetes.io/", "kustomize.config.k8s.io/")
LABELS = ("spec", "template", "metadata", "labels")


def _at(version: str, path: Sequence[str | int]) -> list[str | int]:
    return ["versions", version, "patch", *path]


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def problems(doc: SourceDoc, version: str, patch: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with `versions.<version>.patch` of the release in `doc`."""
    found: list[Problem] = []
    _plain_values(doc, version, patch, [], found)
    if not found:
        _owned(doc, version, patch, _OWNED, [], found)
    return found


def _plain_values(
    doc: SourceDoc, version: str, node: Any, path: list[str | int], found: list[Problem]
) -> None:
    """Only values a Kubernetes object holds: text, numbers, booleans and null."""
    if isinstance(node, Mapping):
        # Keys are text already: the loader writes every key as text.
        for key, value in node.items():
            _plain_values(doc, version, value, [*path, key], found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _plain_values(doc, version, value, [*path, index], found)
    elif not (
        node is None
        or isinstance(node, str | bool | int)
        or (isinstance(node, float) and math.isfinite(node))
    ):
        found.append(
            Problem(
                doc.location(_at(version, path)),
                f"the patch of {version} sets {_dotted(path)} to {node!r}, "
                "which no Kubernetes field holds",
                "quote it to write text",
            )
        )


def _owned(
    doc: SourceDoc,
    version: str,
    node: Mapping[str, Any],
    owned: Mapping[str, Any],
    path: list[str | int],
    found: list[Problem],
) -> None:
    for key, value in node.items():
        here = [*path, key]
        where = doc.location(_at(version, here), key=True)
        if key.startswith("$") and (not path or key in _WHOLESALE):
            found.append(
                Problem(
                    where,
                    f"the patch of {version} has {key} in {_dotted(path) or 'its top level'}, "
                    "which would replace or drop fields the release owns",
                    "patch the fields that differ, one by one",
                )
            )
            continue
        if path == ["metadata", "annotations"] and key.startswith(_KUSTOMIZE):
            found.append(
                Problem(
                    where,
                    f"the patch of {version} sets annotation {key}, which tells kustomize "
                    "how to build the Deployment",
                    "remove it; the release decides how its Deployment is built",
                )
            )
            continue
        if key not in owned:
            continue
        rule = owned[key]
        if isinstance(rule, str):
            found.append(
                Problem(
                    where,
                    f"the patch of {version} sets {_dotted(here)}, which the release owns",
                    rule.format(version=version),
                )
            )
        elif rule is None:
            _containers(doc, version, value, here, found)
        elif not isinstance(value, Mapping):
            found.append(
                Problem(
                    where,
                    f"the patch of {version} sets {_dotted(here)} to {_kind(value)}, "
                    "which would replace fields the release owns",
                    f"write {_dotted(here)} as a mapping of the fields to change",
                )
            )
        else:
            _owned(doc, version, value, rule, here, found)


def _kind(value: Any) -> str:
    return "null" if value is None else "a list" if isinstance(value, list) else repr(value)


def _containers(
    doc: SourceDoc, version: str, value: Any, path: list[str | int], found: list[Problem]
) -> None:
    """Each entry names the container it changes: kustomize merges containers by name."""
    where = doc.location(_at(version, path), key=True)
    if not isinstance(value, list):
        found.append(
            Problem(
                where,
                f"the patch of {version} sets {_dotted(path)} to {_kind(value)}",
                "write a list of the containers to change, each with its name",
            )
        )
        return
    for index, entry in enumerate(value):
        here = [*path, index]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            found.append(
                Problem(
                    doc.location(_at(version, here)),
                    f"{_dotted(here)} in the patch of {version} names no container",
                    "kustomize merges containers by name: give each entry the name: it changes",
                )
            )
        elif entry.get("$patch", "delete") != "delete":
            found.append(
                Problem(
                    doc.location(_at(version, [*here, "$patch"]), key=True),
                    f"the patch of {version} has $patch: {entry['$patch']} "
                    f"on container {entry['name']}",
                    "$patch: delete removes a container; to change one, set its fields",
                )
            )


def base_problems(
    doc: SourceDoc,
    version: str,
    patch: Mapping[str, Any],
    managed: str,
    selected: Mapping[str, str],
) -> list[Problem]:
    """What the patch does to what the base owns, known once the base is read: the image and
    the presence of `managed`, the container whose image the release sets, and the pod labels
    in `selected` (what the Deployment's selector and the Service select on)."""
    found: list[Problem] = []
    labels = _node(patch, LABELS)
    for label, value in labels.items() if isinstance(labels, Mapping) else ():
        if label in selected and value != selected[label] and label not in ("app", "version"):
            found.append(
                Problem(
                    doc.location(_at(version, [*LABELS, label]), key=True),
                    f"the patch of {version} changes pod label {label}, "
                    "which the Service or the Deployment's selector selects on",
                    "every version's pods carry the base's selected labels: change the base",
                )
            )
    containers = _node(patch, CONTAINERS)
    for index, entry in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(entry, Mapping) or entry.get("name") != managed:
            continue
        for key in ("image", "$patch", "$retainKeys"):
            if key in entry:
                found.append(
                    Problem(
                        doc.location(_at(version, [*CONTAINERS, index, key]), key=True),
                        f"the patch of {version} sets {key} of container {managed}, "
                        "whose image the release sets",
                        f"set versions.{version}.image instead"
                        if key == "image"
                        else "the container whose image the release sets stays",
                    )
                )
    return found


def _node(patch: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = patch
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node
