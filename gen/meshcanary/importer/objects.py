"""What import keeps of an object as it was read: not what the API server filled in, not the
metadata a rendered Istio object leaves behind."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from meshcanary.importer.context import Context, Notes, dotted, what
from meshcanary.manifest import Resource

TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
# Kinds whose content stands beside `metadata` rather than under `spec`.
_OWN_TOP_LEVEL = {
    "ConfigMap": ("data", "binaryData", "immutable"),
    "ServiceAccount": ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
}


def top_level(kind: object) -> tuple[str, ...]:
    """The top-level keys an object of `kind` has."""
    return (*TOP_LEVEL, *_OWN_TOP_LEVEL.get(str(kind), ()))


# Fields the API server fills in; `kubectl get -o yaml` output carries them.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)


def stripped(data: dict[str, Any]) -> dict[str, Any]:
    """A copy without what the API server fills in and without the namespace."""
    copied = copy.deepcopy(data)
    metadata = copied.get("metadata")
    if isinstance(metadata, dict):
        for name in (*SERVER_METADATA, "namespace"):
            metadata.pop(name, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            for name in SERVER_ANNOTATIONS:
                annotations.pop(name, None)
            if not annotations:
                metadata.pop("annotations")
    copied.pop("status", None)
    spec = copied.get("spec")
    if (
        copied.get("kind") == "Service"
        and isinstance(spec, dict)
        and spec.get("clusterIP") != "None"
    ):
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    for key in [k for k in copied if k not in top_level(copied.get("kind"))]:
        copied.pop(key)
    return copied


def note_server_fields(notes: Notes, resource: Resource) -> None:
    """One note per object for the server-set fields import leaves out."""
    metadata = resource.metadata
    paths: list[list[str | int]] = [
        ["metadata", name] for name in SERVER_METADATA if name in metadata
    ]
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        paths += [["metadata", "annotations", n] for n in SERVER_ANNOTATIONS if n in annotations]
    if "status" in resource.data:
        paths.append(["status"])
    if resource.kind == "Service" and resource.get("spec", "clusterIP") not in (None, "None"):
        paths.append(["spec", "clusterIP"])
    if paths:
        names = ", ".join(dotted(p) for p in paths)
        notes.normalize(
            resource,
            paths[0],
            f"{what(resource)}: fields the API server sets are left out ({names})",
            key=True,
        )


def name_only_metadata(ctx: Context, resource: Resource, *, renamed: bool = True) -> None:
    """What meshcanary renders in place of `resource` (a VirtualService, a DestinationRule, a
    route or Gateway of either API) carries a name only: refuse any other metadata, and say
    what the server's own fields were. `renamed`: note that it is rendered under the
    service's name (the caller says how it is renamed otherwise)."""
    for key in resource.metadata:
        if key not in ("name", "namespace", *SERVER_METADATA):
            ctx.refuse(
                resource,
                ["metadata", key],
                f"{what(resource)}: metadata.{key} cannot be imported; the rendered "
                "object has a name only",
                key=True,
            )
    note_server_fields(ctx.notes, resource)
    if renamed and resource.kind != "Gateway" and resource.name and resource.name != ctx.service:
        ctx.normalize(
            resource,
            ["metadata", "name"],
            f"{what(resource)} is rendered as {resource.kind} {ctx.service}",
            "the rendered object replaces this one: delete (or let Argo CD prune) it when "
            "the new one is applied, or both apply to the same host",
        )


@cache
def _validator() -> Any:
    from meshcanary.validate import Options
    from meshcanary.validate.embedded import EmbeddedValidator

    # The experimental channel's kinds (TCPRoute, TLSRoute) have no bundled schema: nothing
    # to check them against, which is no refusal.
    return EmbeddedValidator(Options(ignore_missing_schemas=True))


def schema_refused(ctx: Context, resource: Resource) -> bool:
    """Refuse, at each field, what the object's own schema (with its CEL rules) refuses: a
    value of the wrong type or range would otherwise be read as something it does not say (a
    weight "10", a mirror with both percent and fraction). True when it refused anything."""
    from meshcanary.problem import Severity

    found = [p for p in _validator().validate(resource).problems if p.severity is Severity.ERROR]
    for problem in found:
        path: list[str | int] = [
            int(part) if part.isdigit() else part.replace("~1", "/").replace("~0", "~")
            for part in problem.path.split("/")[1:]
        ]
        ctx.refuse(
            resource,
            path,
            f"{what(resource)}: {problem.message}",
            "its schema refuses it, as `meshcanary lint` and the API server do",
        )
    return bool(found)
