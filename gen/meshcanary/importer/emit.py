"""The files an import writes: the base (Deployment, Service, kustomization), the release
file and, for a new environment, its environment file; nothing when one of them exists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer.classify import ISTIO_KINDS, ByKind
from meshcanary.importer.context import BASES, Context, dotted, refused
from meshcanary.importer.gateways import Gateways
from meshcanary.importer.objects import note_server_fields, stripped
from meshcanary.importer.versions import Version, normalised
from meshcanary.manifest import Resource
from meshcanary.mesh import labels
from meshcanary.problem import Location, Problem, Severity
from meshcanary.release import schema
from meshcanary.render.emit import document

DEFAULT_ISTIO_API = "networking.istio.io/v1"
RELEASE_MODELINE = "yaml-language-server: $schema=../../schemas/release.schema.json"
ENVIRONMENT_MODELINE = "yaml-language-server: $schema=../../schemas/environment.schema.json"
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def base_files(ctx: Context, service: Resource, versions: list[Version]) -> dict[str, str]:
    """The base: the first version's Deployment without what a version sets, and the Service."""
    _note_differences(ctx, versions)
    deployment = _base_deployment(ctx, versions[0])
    note_server_fields(ctx.notes, service)
    service_data = stripped(service.data)
    selector = (service_data.get("spec") or {}).get("selector")
    if isinstance(selector, dict) and "version" in selector:
        selector.pop("version")
        ctx.note(
            service,
            ["spec", "selector", "version"],
            f"Service {service.name} selects version {service.get('spec', 'selector', 'version')}; "
            "the base's Service selects every version, and the routes pick one",
            key=True,
        )
    head = ctx.header + "\nHumans own this base; meshcanary never writes here."
    kustomization = {**KUSTOMIZATION, "resources": ["deployment.yaml", "service.yaml"]}
    return {
        f"{ctx.base}/kustomization.yaml": document(kustomization, head),
        f"{ctx.base}/deployment.yaml": document(deployment),
        f"{ctx.base}/service.yaml": document(service_data),
    }


def _note_differences(ctx: Context, versions: list[Version]) -> None:
    """The base holds the first version's Deployment: say where another one differs."""
    first = versions[0]
    reference = normalised(first)
    for other in versions[1:]:
        for path in _diff(reference, normalised(other)):
            ctx.note(
                other.resource,
                list(path),
                f"version {other.name}'s Deployment differs from {first.name}'s at "
                f"{dotted(path)}: the base holds {first.name}'s, and a version sets only "
                "its image and replicas",
                "make the versions' Deployments the same apart from image and replicas, "
                "or change the base after the import",
                key=not _holds(reference, path),  # a field only this version has
            )


def _base_deployment(ctx: Context, first: Version) -> dict[str, Any]:
    """The first version's Deployment named after the service, without version labels."""
    deployment = stripped(first.resource.data)
    metadata = deployment.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata.pop("name", None)
    kept = labels(metadata.get("labels")) or {}
    kept.pop("version", None)
    metadata = {"name": ctx.service, **metadata}
    if kept:
        metadata["labels"] = kept
    else:
        metadata.pop("labels", None)
    ordered: dict[str, Any] = {
        "apiVersion": deployment.get("apiVersion", "apps/v1"),
        "kind": "Deployment",
        "metadata": metadata,
    }
    ordered.update({k: v for k, v in deployment.items() if k not in ordered})
    spec = ordered.get("spec") or {}
    for holder in (
        (spec.get("selector") or {}).get("matchLabels"),
        ((spec.get("template") or {}).get("metadata") or {}).get("labels"),
    ):
        if isinstance(holder, dict):
            holder.pop("version", None)
    spec["template"]["spec"]["containers"][first.container]["image"] = first.image
    if "app" not in (labels((spec.get("selector") or {}).get("matchLabels")) or {}):
        raise InputError(
            [
                Problem(
                    first.resource.location(["spec", "selector", "matchLabels"]),
                    "the Deployment's selector has no app label, which a base needs",
                    f"label the selector and the pod template with app: {ctx.service}",
                )
            ]
        )
    return ordered


def _diff(
    one: Any, other: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Paths of the outermost fields where `one` and `other` differ."""
    if isinstance(one, dict) and isinstance(other, dict):
        for key in [*one, *(k for k in other if k not in one)]:
            if key not in one or key not in other:
                yield (*path, key)
            else:
                yield from _diff(one[key], other[key], (*path, key))
    elif isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        for index, (a, b) in enumerate(zip(one, other, strict=True)):
            yield from _diff(a, b, (*path, index))
    elif one != other or type(one) is not type(other):
        yield path


def _holds(data: Any, path: Sequence[str | int]) -> bool:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return False
        data = data[part]
    return True


def release_file(ctx: Context, release: dict[str, Any]) -> dict[str, str]:
    return {ctx.release_path: document(release, f"{RELEASE_MODELINE}\n{ctx.header}")}


def environment_file(ctx: Context, resources: ByKind, gateways: Gateways) -> dict[str, str]:
    """A new environment's file; for an existing one, notes where it differs from the input."""
    api = _istio_api(ctx, resources)
    if ctx.env_data is not None:
        _note_existing(ctx, ctx.env_data, resources, gateways, api)
        return {}
    data: dict[str, Any] = {"namespace": ctx.target_namespace}
    if api is not None:
        data["istioApiVersion"] = api
    if gateways:
        data["gateways"] = {name: entry for name, (_, entry) in gateways.items()}
    problems = [
        Problem(ctx.origins.fallback, refused(error))
        for error in schema.validator("environment").iter_errors(data)
    ]
    if problems:
        raise InputError(problems)
    return {ctx.env_path: document(data, f"{ENVIRONMENT_MODELINE}\n{ctx.header}")}


def _istio_api(ctx: Context, resources: ByKind) -> str | None:
    istio = [r for kind in ISTIO_KINDS for r in resources[kind]]
    found = {r.api_version for r in istio}
    if not found:
        return None
    if len(found) == 1:
        return found.pop()
    ctx.note(
        istio[0],
        ["apiVersion"],
        f"Istio objects use several apiVersions ({', '.join(sorted(found))}); the "
        f"environment renders them all as {DEFAULT_ISTIO_API}",
        severity=Severity.INFO,
    )
    return DEFAULT_ISTIO_API


def _note_existing(
    ctx: Context,
    env_data: dict[str, Any],
    resources: ByKind,
    gateways: Gateways,
    api: str | None,
) -> None:
    """Import does not change an existing environment: say what it renders instead."""
    declared = env_data.get("gateways") or {}
    for name, (resource, entry) in gateways.items():
        if name not in declared:
            ctx.note(
                resource,
                [],
                f"Gateway {name} is not declared in {ctx.env_path}, which import does "
                "not change; it is not rendered",
                f"add it under gateways: in {ctx.env_path}",
            )
        elif declared[name] != entry:
            ctx.note(
                resource,
                ["spec"],
                f"Gateway {name} differs from the one {ctx.env_path} declares, which "
                "is what is rendered",
                severity=Severity.INFO,
            )
    env_api = env_data.get("istioApiVersion", DEFAULT_ISTIO_API)
    if api is not None and api != env_api:
        first = next(r for k in ISTIO_KINDS for r in resources[k])
        ctx.note(
            first,
            ["apiVersion"],
            f"rendered with {env_api}, the istioApiVersion of {ctx.env_path}",
            severity=Severity.INFO,
        )


def refuse_existing(ctx: Context, files: dict[str, str]) -> None:
    """Import writes new files only: InputError when the base, the release or any file exists."""
    problems: list[Problem] = []
    if (ctx.root / ctx.base).exists():
        problems.append(
            Problem(
                Location(ctx.base),
                f"base {ctx.base} already exists; import writes a new base",
                "remove or rename it, or pass --service with another name",
            )
        )
    release = ctx.release_path
    if (ctx.root / release).exists():
        problems.append(
            Problem(
                Location(release),
                f"{release} already exists",
                "remove it first, or import into another environment",
            )
        )
    for relative in files:
        if relative.startswith(f"{BASES}/") or relative == release:
            continue
        if (ctx.root / relative).exists():
            problems.append(Problem(Location(relative), f"{relative} already exists"))
    if problems:
        raise InputError(problems)


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
