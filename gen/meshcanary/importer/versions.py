"""Deployments → versions: which Deployments run the service, and each one's version name,
image and replicas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer.context import Context, what
from meshcanary.importer.objects import note_server_fields, stripped
from meshcanary.manifest import Resource
from meshcanary.mesh import Labels, labels, pod_labels
from meshcanary.names import is_dns_label
from meshcanary.problem import Problem

_HAS_TAG_OR_DIGEST = re.compile(r".*(:[^/:@]+|@sha256:[a-f0-9]{64})")
_POD_LABELS: list[str | int] = ["spec", "template", "metadata", "labels"]


@dataclass
class Version:
    name: str
    resource: Resource
    container: int  # index of the container whose image a version sets
    image: str
    replicas: int


def read(ctx: Context, deployments: list[Resource], selector: Labels) -> list[Version]:
    """The versions of the Deployments behind the Service (`selector`: its labels but version)."""
    ours = _behind_service(ctx, deployments, selector)
    versioned = [r for r in ours if "version" in pod_labels(r)]
    found: dict[str, Version] = {}
    if not versioned and len(ours) == 1:
        # A plain Deployment with no canary yet: it becomes the first version.
        resource = ours[0]
        ctx.normalize(
            resource,
            _POD_LABELS,
            f"{what(resource)} has no version label: imported as version v1, "
            f"rendered as {ctx.service}-v1 with version=v1 on its selector and pods",
            "a Deployment's selector cannot change in place: the rendered one replaces it",
        )
        version = _version(ctx, resource, "v1")
        if version is not None:
            found["v1"] = version
    for resource in ours:
        name = pod_labels(resource).get("version")
        if name is None:
            if versioned:
                ctx.refuse(
                    resource,
                    _POD_LABELS,
                    f"{what(resource)} has no version label on its pods: meshcanary "
                    "renders one Deployment per version and cannot represent an "
                    "unversioned one beside them; not imported",
                    "its pods are behind the Service too and take traffic outside the "
                    "routes' subsets; delete it once the versions run, or label it",
                )
            continue
        version = _versioned(ctx, resource, name, found)
        if version is not None:
            found[name] = version
    if not found:
        where = deployments[0].location() if deployments else ctx.origins.fallback
        raise InputError(
            [
                Problem(
                    where,
                    f"no Deployment of service {ctx.service} with a version label on its "
                    "pods: there is no version to import",
                    "label each version's selector and pod template with version: <name>",
                )
            ]
        )
    return list(found.values())


def _behind_service(ctx: Context, deployments: list[Resource], selector: Labels) -> list[Resource]:
    """The Deployments whose pods the Service selects; a note for each other one."""
    ours: list[Resource] = []
    for resource in deployments:
        pods = pod_labels(resource)
        runs_service = (
            selector.items() <= pods.items() if selector else pods.get("app") == ctx.service
        )
        if not runs_service:
            shown = ", ".join(f"{k}={v}" for k, v in selector.items()) or f"app={ctx.service}"
            ctx.refuse(
                resource,
                _POD_LABELS,
                f"{what(resource)} is not imported: its pods lack {shown}, so they "
                f"are not behind Service {ctx.service_name}",
            )
            continue
        ours.append(resource)
    return ours


def _versioned(
    ctx: Context, resource: Resource, name: str, found: dict[str, Version]
) -> Version | None:
    """The version of a Deployment whose pods carry `version: name`, unless it cannot be one."""
    path = [*_POD_LABELS, "version"]
    if not is_dns_label(name):
        ctx.refuse(
            resource,
            path,
            f'version "{name}" is not a DNS-1123 label, which a version name must be '
            "(it names the Deployment and the subset); not imported",
            "relabel the pods with a name such as v1 or v1-2",
        )
        return None
    if name in found:
        ctx.refuse(
            resource,
            path,
            f"a second Deployment of version {name} "
            f"(the first at {found[name].resource.location()}); not imported",
        )
        return None
    return _version(ctx, resource, name)


def _version(ctx: Context, resource: Resource, name: str) -> Version | None:
    note_server_fields(ctx.notes, resource)
    containers = resource.get("spec", "template", "spec", "containers")
    if not isinstance(containers, list) or not containers:
        ctx.refuse(
            resource,
            ["spec", "template", "spec"],
            f"{what(resource)} has no containers; version {name} is not imported",
        )
        return None
    names = [c.get("name") if isinstance(c, dict) else None for c in containers]
    index = names.index(ctx.service) if ctx.service in names else 0
    image_path: list[str | int] = ["spec", "template", "spec", "containers", index, "image"]
    image = _image(ctx, resource, containers[index], image_path, name)
    if image is None:
        return None
    replicas = resource.get("spec", "replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        ctx.normalize(
            resource,
            ["spec"],
            f"{what(resource)} sets no replicas: written as 1, Kubernetes' default",
            "if an autoscaler owns the replica count, meshcanary's fixed count fights it",
        )
        replicas = 1
    version = Version(name, resource, index, image, replicas)
    ctx.origins.add(("versions", name), resource.location(["spec", "template"]))
    ctx.origins.add(("versions", name, "image"), resource.location(image_path))
    ctx.origins.add(("versions", name, "replicas"), resource.location(["spec", "replicas"]))
    _note_replaced(ctx, resource, name)
    return version


def _image(
    ctx: Context, resource: Resource, container: Any, path: list[str | int], name: str
) -> str | None:
    """The container's image with a tag (`latest` when it has none), or None with a note."""
    image = container.get("image") if isinstance(container, dict) else None
    if not isinstance(image, str) or not image.strip():
        ctx.refuse(
            resource,
            path,
            f"{what(resource)} has no image; version {name} is not imported",
        )
        return None
    image = image.strip()
    if not _HAS_TAG_OR_DIGEST.fullmatch(image):
        ctx.normalize(
            resource,
            path,
            f"image {image} has no tag, which means latest; written as {image}:latest "
            "because a release names a tag or a digest",
            "pin a release tag (e.g. 1.4.2) or a digest in the release file",
        )
        image += ":latest"
    return image


def _note_replaced(ctx: Context, resource: Resource, name: str) -> None:
    """The rendered Deployment is `<service>-<version>` and selects on version."""
    rendered = f"{ctx.service}-{name}"
    if resource.name and resource.name != rendered:
        ctx.normalize(
            resource,
            ["metadata", "name"],
            f"Deployment {resource.name} is rendered as {rendered}",
            "the rendered Deployment replaces this one: delete (or let Argo CD prune) it "
            "once the new one is ready",
        )
    for path in (["metadata", "labels", "version"], ["spec", "selector", "matchLabels", "version"]):
        given = resource.get(*path)
        if given is not None and given != name:
            ctx.normalize(
                resource,
                path,
                f"label version={given} is rendered as version={name}, the pods' label",
            )
    selector = labels(resource.get("spec", "selector", "matchLabels")) or {}
    if selector and "version" not in selector:
        ctx.normalize(
            resource,
            ["spec", "selector", "matchLabels"],
            f"{what(resource)} does not select on version; the rendered one does",
            "a Deployment's selector cannot change in place: the rendered one replaces it",
        )


def normalised(version: Version) -> dict[str, Any]:
    """The Deployment without what a version sets: name, version labels, image, replicas."""
    data = stripped(version.resource.data)
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("name", None)
        found = metadata.get("labels")
        if isinstance(found, dict):
            found.pop("version", None)
            if not found:
                metadata.pop("labels")
        if not metadata:
            data.pop("metadata")
    spec = data.get("spec")
    if isinstance(spec, dict):
        spec.pop("replicas", None)
        for holder in (
            (spec.get("selector") or {}).get("matchLabels"),
            ((spec.get("template") or {}).get("metadata") or {}).get("labels"),
        ):
            if isinstance(holder, dict):
                holder.pop("version", None)
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
        if isinstance(containers, list) and isinstance(containers[version.container], dict):
            containers[version.container].pop("image", None)
    return data
