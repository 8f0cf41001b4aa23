"""What a service's workloads need beside them, kept in its base: the ServiceAccounts and
ConfigMaps its pods name, and the PodDisruptionBudgets and HorizontalPodAutoscalers that guard
or scale its Deployments (one in the base, rendered once per version, when they are per
version in the input)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from meshcanary.importer.context import Context, what
from meshcanary.importer.objects import note_server_fields, stripped
from meshcanary.importer.versions import Version
from meshcanary.manifest import Resource
from meshcanary.mesh import labels, pod_labels

PER_VERSION = "meshcanary.dev/per-version"


@dataclass(frozen=True)
class Supporting:
    """An object of the base besides the Deployment and the Service."""

    data: dict[str, Any]  # as the base holds it
    read_from: tuple[Resource, ...]  # the input objects it stands for (one per version or one)


def read(
    ctx: Context, by_kind: dict[str, list[Resource]], versions: list[Version], claimed: set[int]
) -> list[Supporting]:
    """The objects the versions' pods name or that select or scale them; each input object is
    taken by one service only (`claimed`: ids of objects taken already)."""
    found: list[Supporting] = []
    names = _referenced(versions)
    for kind in ("ServiceAccount", "ConfigMap"):
        for resource in by_kind.get(kind, []):
            if resource.name in names[kind] and id(resource) not in claimed:
                claimed.add(id(resource))
                note_server_fields(ctx.notes, resource)
                found.append(Supporting(stripped(resource.data), (resource,)))
    found += _guards(ctx, by_kind.get("PodDisruptionBudget", []), versions, claimed, _selects)
    found += _guards(ctx, by_kind.get("HorizontalPodAutoscaler", []), versions, claimed, _scales)
    return found


def _referenced(versions: list[Version]) -> dict[str, set[str]]:
    """The ServiceAccounts and ConfigMaps the versions' pods name."""
    names: dict[str, set[str]] = {"ServiceAccount": set(), "ConfigMap": set()}
    for version in versions:
        pod = version.resource.get("spec", "template", "spec")
        if not isinstance(pod, dict):
            continue
        for key in ("serviceAccountName", "serviceAccount"):
            if isinstance(pod.get(key), str):
                names["ServiceAccount"].add(pod[key])
        names["ConfigMap"].update(_config_maps(pod))
    return names


def _config_maps(pod: dict[str, Any]) -> Iterator[str]:
    for volume in _mappings(pod.get("volumes")):
        yield from _name(volume.get("configMap"))
        for source in _mappings((volume.get("projected") or {}).get("sources")):
            yield from _name(source.get("configMap"))
    for key in ("containers", "initContainers"):
        for container in _mappings(pod.get(key)):
            for source in _mappings(container.get("envFrom")):
                yield from _name(source.get("configMapRef"))
            for variable in _mappings(container.get("env")):
                yield from _name((variable.get("valueFrom") or {}).get("configMapKeyRef"))


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _name(reference: Any) -> Iterator[str]:
    if isinstance(reference, dict) and isinstance(reference.get("name"), str):
        yield reference["name"]


def _selects(resource: Resource, version: Version) -> bool:
    selector = labels(resource.get("spec", "selector", "matchLabels")) or {}
    return bool(selector) and selector.items() <= pod_labels(version.resource).items()


def _scales(resource: Resource, version: Version) -> bool:
    target = resource.get("spec", "scaleTargetRef")
    return (
        isinstance(target, dict)
        and target.get("kind") == "Deployment"
        and target.get("name") == version.resource.name
    )


def _guards(
    ctx: Context,
    resources: list[Resource],
    versions: list[Version],
    claimed: set[int],
    applies: Any,
) -> list[Supporting]:
    """PodDisruptionBudgets or HorizontalPodAutoscalers of the versions: one for all versions
    stays as it is; one per version becomes one in the base, rendered per version."""
    found: list[Supporting] = []
    per_version: dict[str, Resource] = {}
    for resource in resources:
        if id(resource) in claimed:
            continue
        covered = [v for v in versions if applies(resource, v)]
        if not covered:
            continue
        claimed.add(id(resource))
        note_server_fields(ctx.notes, resource)
        if len(covered) == len(versions) and len(versions) > 1:
            found.append(Supporting(stripped(resource.data), (resource,)))  # the whole service
        elif len(covered) == 1 and covered[0].name not in per_version:
            per_version[covered[0].name] = resource
        else:
            ctx.refuse(
                resource,
                ["spec"],
                f"{what(resource)} applies to {len(covered)} of {len(versions)} versions; "
                "a base's object applies to one version each or to all of them",
            )
    if per_version:
        found += _one_per_version(ctx, per_version, versions)
    return found


def _one_per_version(
    ctx: Context, per_version: dict[str, Resource], versions: list[Version]
) -> list[Supporting]:
    """The same object for each version → one in the base, marked to render per version."""
    shapes = {name: _version_free(ctx, r, name) for name, r in per_version.items()}
    first_name, first = next(iter(per_version.items()))
    missing = [v.name for v in versions if v.name not in per_version]
    reference = shapes[first_name]
    differing = [name for name, shape in shapes.items() if shape != reference]
    for name in differing:
        ctx.refuse(
            per_version[name],
            ["spec"],
            f"{what(per_version[name])} differs from {what(first)} beyond its version: a "
            "base holds one, rendered for every version",
        )
    for name in missing:
        ctx.refuse(
            first,
            [],
            f"{what(first)} is per version, but version {name} has none: a base's object "
            "is rendered for every version",
        )
    for name, resource in per_version.items():
        rendered = f"{reference['metadata']['name']}-{name}"
        if resource.name != rendered:
            ctx.normalize(
                resource,
                ["metadata", "name"],
                f"{what(resource)} is rendered as {resource.kind} {rendered}, one per version",
            )
    return [Supporting(reference, tuple(per_version.values()))]


def _version_free(ctx: Context, resource: Resource, version: str) -> dict[str, Any]:
    """The object as the base holds it: no version in its name, selector or target."""
    data = stripped(resource.data)
    metadata = data.setdefault("metadata", {})
    name = str(metadata.get("name", ""))
    metadata["name"] = name.removesuffix(f"-{version}") or ctx.service
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    assert isinstance(spec, dict)  # noqa: S101 - set just above
    selector = (spec.get("selector") or {}).get("matchLabels")
    if isinstance(selector, dict):
        selector.pop("version", None)
        metadata.setdefault("annotations", {})[PER_VERSION] = "true"
    target = spec.get("scaleTargetRef")
    if isinstance(target, dict):
        target["name"] = ctx.service  # the base's Deployment; rendered per version
    labelled = metadata.get("labels")
    if isinstance(labelled, dict):
        labelled.pop("version", None)
    return data
