"""Reading the manifests to import: which objects import reads, which namespace they are in,
which environment they go to, and which Service is the service's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer.context import RULE, Context, Notes, Origins, what
from meshcanary.importer.objects import TOP_LEVEL, stripped
from meshcanary.inputs import read_inputs
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS
from meshcanary.manifest import Parsed, Resource
from meshcanary.mesh import labels, pod_labels
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem, Severity
from meshcanary.rules.resource_name import misspelling
from meshcanary.source import load_mapping

KINDS = ("Deployment", "Service", "VirtualService", "DestinationRule", "Gateway")
ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway")
ISTIO_GROUP = "networking.istio.io/"

ByKind = dict[str, list[Resource]]


def read(files: Sequence[Path]) -> Parsed:
    """Every resource of the inputs, read the way `lint` reads them (Kustomize folders built)."""
    if not files:
        raise InputError("no manifests given: name the files that hold the service's resources")
    parsed, _ = read_inputs([path.as_posix() for path in files])
    if parsed.problems:
        raise InputError(parsed.problems)
    return parsed


def prepare(
    root: Path,
    parsed: Parsed,
    environment: str,
    service: str | None,
    namespace: str | None,
) -> tuple[Context, ByKind, Resource]:
    """The import's context, the objects it reads by kind, and the service's Service."""
    notes = Notes()
    resources = classify(notes, parsed)
    source_namespace = _namespace_of_manifests(notes, resources, namespace)
    env_path = f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}"
    env_data = _existing_environment(notes, root, env_path, namespace)
    target_namespace = (
        str(env_data["namespace"])
        if env_data and isinstance(env_data.get("namespace"), str)
        else namespace or source_namespace
    )
    service_resource = _choose_service(notes, parsed, resources["Service"], service)
    release_service = service or service_resource.name
    if not is_dns_label(release_service):
        raise InputError(
            [
                Problem(
                    service_resource.location(["metadata", "name"]),
                    f'Service name "{release_service}" is not a DNS-1123 label, so it cannot name a release',
                    "pass --service with a DNS-1123 label",
                )
            ]
        )
    sources = sorted({r.file for r in parsed.resources})
    first = parsed.resources[0].location() if parsed.resources else Location("input")
    context = Context(
        root=root,
        environment=environment,
        service=release_service,
        service_name=service_resource.name,
        source_namespace=source_namespace,
        target_namespace=target_namespace,
        env_path=env_path,
        env_data=env_data,
        header="Imported by `meshcanary import` from:\n" + "\n".join(f"  {s}" for s in sources),
        notes=notes,
        origins=Origins(first),
    )
    return context, resources, service_resource


def classify(notes: Notes, parsed: Parsed) -> ByKind:
    """The objects import reads, by kind; a note for each other one."""
    found: ByKind = {kind: [] for kind in KINDS}
    for resource in parsed.resources:
        kind = resource.kind
        istio = kind in ISTIO_KINDS
        if kind in KINDS and (not istio or resource.api_version.startswith(ISTIO_GROUP)):
            _top_level_keys(notes, resource)
            found[kind].append(resource)
            continue
        if not kind:
            _top_level_keys(notes, resource)  # `kind` misspelt, perhaps
        notes.note(
            resource,
            ["kind"],
            f"{what(resource)} is not imported: a release has no place for it",
            "import reads Deployments, Services, and Istio VirtualServices, "
            "DestinationRules and Gateways; keep other objects in the base by hand",
        )
    return found


def _top_level_keys(notes: Notes, resource: Resource) -> None:
    keys = [k for k in resource.data if isinstance(k, str)]
    for key in resource.data:
        if key in TOP_LEVEL:
            continue
        missing = [f for f in ("apiVersion", "kind", "metadata", "spec") if f not in keys]
        meant = next((f for f in missing if misspelling(f, [str(key)]) == key), None)
        if meant is not None:
            lost = "no metadata, so no name" if meant == "metadata" else f"no {meant}"
            notes.note(
                resource,
                [str(key)],
                f"top-level key {key!r} looks like a misspelt {meant!r}; as written the "
                f"{resource.kind or 'object'} has {lost}, and nothing under {key!r} is imported",
                f"rename {key!r} to {meant!r} in the source manifests; the rendered "
                "Deployments are named <service>-<version> whatever the input calls them",
                key=True,
            )
        else:
            notes.note(
                resource,
                [str(key)],
                f"unknown top-level key {key!r} is not imported",
                key=True,
            )


def _namespace_of_manifests(notes: Notes, resources: ByKind, wanted: str | None) -> str:
    """The namespace the manifests were applied to: theirs, else --namespace, else default."""
    named = [r for group in resources.values() for r in group if r.namespace]
    if not named:
        return wanted or "default"
    chosen = named[0].namespace
    for resource in named[1:]:
        if resource.namespace != chosen and resource.kind != "Gateway":
            notes.note(
                resource,
                ["metadata", "namespace"],
                f"{what(resource)} is in namespace {resource.namespace}, the other "
                f"manifests in {chosen}: the environment puts everything in one namespace",
            )
    return chosen


def _existing_environment(
    notes: Notes, root: Path, env_path: str, wanted: str | None
) -> dict[str, Any] | None:
    path = root / env_path
    if not path.is_file():
        return None
    data = load_mapping(path, env_path).data
    declared = data.get("namespace")
    if wanted and declared != wanted:
        notes.problems.append(
            Problem(
                Location(env_path),
                f"--namespace {wanted} is ignored: {env_path} exists and sets namespace {declared}",
                rule=RULE,
            )
        )
    return data


def _choose_service(
    notes: Notes, parsed: Parsed, services: list[Resource], wanted: str | None
) -> Resource:
    unique: dict[str, Resource] = {}
    for resource in services:
        first = unique.setdefault(resource.name, resource)
        if first is resource:
            continue
        same = stripped(first.data) == stripped(resource.data)
        notes.note(
            resource,
            [],
            f"Service {resource.name} again (first at {first.location()})"
            + ("; imported once" if same else "; only the first is imported"),
            "" if same else "remove one of the two so it is clear which one is live",
            severity=Severity.INFO if same else Severity.WARNING,
        )
    if not unique:
        where = parsed.resources[0].location() if parsed.resources else Location("input")
        raise InputError(
            [
                Problem(
                    where,
                    "no Service among the manifests: a base holds the Deployment and the "
                    "Service every version shares",
                    "add the Service's manifest to the files to import",
                )
            ]
        )
    chosen = (
        unique.get(wanted or "")
        or (next(iter(unique.values())) if len(unique) == 1 else None)
        or _service_selecting(parsed, list(unique.values()))
    )
    if chosen is None:
        raise InputError(
            [
                Problem(
                    next(iter(unique.values())).location(),
                    f"several Services ({', '.join(unique)}): which one is the service's?",
                    "pass --service with the name of one of them",
                )
            ]
        )
    for resource in unique.values():
        if resource is not chosen:
            notes.note(
                resource,
                [],
                f"Service {resource.name} is not imported: a base holds one Service",
                "import it separately, or keep it in a base of its own",
            )
    return chosen


def _service_selecting(parsed: Parsed, services: list[Resource]) -> Resource | None:
    """The one Service whose selector picks pods that carry a version label."""
    versioned = [pod_labels(d) for d in parsed.resources if d.kind == "Deployment"]
    versioned = [found for found in versioned if "version" in found]
    matching = [
        s
        for s in services
        if (selector := labels(s.get("spec", "selector")))
        and any(selector.items() <= found.items() for found in versioned)
    ]
    return matching[0] if len(matching) == 1 else None
