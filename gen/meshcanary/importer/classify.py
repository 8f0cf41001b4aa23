"""Reading the manifests to import: which objects import reads, which namespace they are in,
which environment they go to, and which Services are imported."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer.context import Context, Notes, Origins, drop_key, what
from meshcanary.importer.gateway_api import API_VERSIONS, ROUTE_KINDS, is_gateway_api
from meshcanary.importer.objects import stripped, top_level
from meshcanary.inputs import read_inputs
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS
from meshcanary.manifest import Parsed, Resource
from meshcanary.mesh import labels, pod_labels
from meshcanary.names import is_dns_label
from meshcanary.problem import Location, Problem
from meshcanary.rules.resource_name import misspelling
from meshcanary.source import load_mapping

KINDS = ("Deployment", "Service", "VirtualService", "DestinationRule", "Gateway")
# What a service's workloads need beside them; kept in its base.
SUPPORT_KINDS = (
    "ServiceAccount",
    "ConfigMap",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
)
ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway")
ISTIO_GROUP = "networking.istio.io/"
# gateway.networking.k8s.io Gateways, beside Istio's (`Gateway`) among what import reads.
API_GATEWAY = "Gateway (gateway.networking.k8s.io)"
ROUTING_KINDS = (*ISTIO_KINDS, *ROUTE_KINDS, API_GATEWAY)

ByKind = dict[str, list[Resource]]


def read(files: Sequence[Path]) -> Parsed:
    """Every resource of the inputs, read the way `lint` reads them (Kustomize folders built)."""
    if not files:
        raise InputError("no manifests given: name the files that hold the service's resources")
    parsed, _ = read_inputs([path.as_posix() for path in files])
    if parsed.problems:
        raise InputError(parsed.problems)
    return parsed


def environment(
    notes: Notes, root: Path, resources: ByKind, environment: str, namespace: str | None
) -> tuple[str, str, str, dict[str, Any] | None]:
    """The manifests' namespace, the environment's, its file's path and its data if it exists."""
    source_namespace = _namespace_of_manifests(notes, resources, namespace)
    env_path = f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}"
    env_data = _existing_environment(notes, root, env_path, namespace)
    target_namespace = (
        str(env_data["namespace"])
        if env_data and isinstance(env_data.get("namespace"), str)
        else namespace or source_namespace
    )
    return source_namespace, target_namespace, env_path, env_data


def context(
    root: Path,
    parsed: Parsed,
    notes: Notes,
    environment: str,
    namespaces: tuple[str, str, str, dict[str, Any] | None],
    service_resource: Resource,
    release_service: str,
) -> Context:
    """One service's import: its names, where it writes, and where its fields come from."""
    source_namespace, target_namespace, env_path, env_data = namespaces
    sources = sorted({r.file for r in parsed.resources})
    first = parsed.resources[0].location() if parsed.resources else Location("input")
    return Context(
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
        origins=Origins(service_resource.location() if service_resource else first),
    )


def release_name(service_resource: Resource, wanted: str | None) -> str:
    """The release's name: `wanted`, else the Service's; InputError when it cannot name one."""
    name = wanted or service_resource.name
    if not is_dns_label(name):
        raise InputError(
            [
                Problem(
                    service_resource.location(["metadata", "name"]),
                    f'Service name "{name}" is not a DNS-1123 label, so it cannot name a release',
                    "pass --service with a DNS-1123 label",
                )
            ]
        )
    return name


def classify(notes: Notes, parsed: Parsed) -> ByKind:
    """The objects import reads, by kind, each once; a refusal for each other one."""
    found: ByKind = {kind: [] for kind in (*KINDS, *SUPPORT_KINDS, *ROUTE_KINDS, API_GATEWAY)}
    seen: dict[tuple[str, str, str], Resource] = {}
    for resource in parsed.resources:
        kind = resource.kind
        if kind == "Gateway" and is_gateway_api(resource):
            kind = API_GATEWAY
        istio = kind in ISTIO_KINDS
        if not kind:
            _top_level_keys(notes, resource)  # `kind` misspelt, perhaps
        if kind == "Secret":
            notes.refuse(
                resource,
                [],
                f"{what(resource)} is not imported: a Secret's data does not belong in Git",
                "keep it where it is (or in a sealed or external secret); the Deployments' "
                "references to it are imported as they are. To go on, pass "
                f"--drop '{drop_key(resource, [])}'",
            )
            continue
        if kind not in found or (istio and not resource.api_version.startswith(ISTIO_GROUP)):
            notes.refuse(
                resource,
                ["kind"],
                f"{what(resource)} is not imported: a release and its base have no place for it",
                "import reads Deployments, Services, their ServiceAccounts, ConfigMaps, "
                "PodDisruptionBudgets and HorizontalPodAutoscalers, Istio "
                "VirtualServices, DestinationRules and Gateways, and Gateway API "
                "HTTPRoutes, GRPCRoutes, TCPRoutes, TLSRoutes and Gateways; to go on without it, "
                f"pass --drop '{drop_key(resource, [])}'",
            )
            continue
        if kind in (*ROUTE_KINDS, API_GATEWAY) and not _served(resource):
            notes.refuse(
                resource,
                ["apiVersion"],
                f"{what(resource)} of {resource.api_version} is not imported: import reads "
                f"{resource.kind} of {', '.join(_versions(resource))}",
                "write the object in a version import reads (the fields are the same)",
            )
            continue
        _top_level_keys(notes, resource)
        identity = (kind, resource.namespace, resource.name)
        first = seen.setdefault(identity, resource)
        if first is not resource:
            if stripped(first.data) == stripped(resource.data):
                notes.normalize(
                    resource,
                    [],
                    f"{what(resource)} again (first at {first.location()}), the same: imported once",
                )
            else:
                notes.refuse(
                    resource,
                    [],
                    f"{what(resource)} again (first at {first.location()}), different: in a "
                    "cluster they are one object, the later replacing the earlier",
                    "import one of them: leave the other file out",
                )
            continue
        found[kind].append(resource)
    return found


def _versions(resource: Resource) -> list[str]:
    return [f"gateway.networking.k8s.io/{v}" for v in API_VERSIONS[resource.kind]]


def _served(resource: Resource) -> bool:
    return is_gateway_api(resource) and resource.api_version in _versions(resource)


def _top_level_keys(notes: Notes, resource: Resource) -> None:
    keys = [k for k in resource.data if isinstance(k, str)]
    for key in resource.data:
        if key in top_level(resource.kind):
            continue
        missing = [f for f in ("apiVersion", "kind", "metadata", "spec") if f not in keys]
        meant = next((f for f in missing if misspelling(f, [str(key)]) == key), None)
        value = resource.data[key]
        if meant == "metadata" and isinstance(value, dict) and set(value) <= {"name"}:
            # The seed's `meta data:`: only a name is lost, and a version's Deployment is
            # rendered as <service>-<version> whatever the input calls it.
            notes.normalize(
                resource,
                [str(key)],
                f"top-level key {key!r} looks like a misspelt 'metadata'; it holds only a "
                "name, which the rendered Deployment replaces with <service>-<version>",
                f"rename {key!r} to 'metadata' in the source manifests",
                key=True,
            )
        elif meant is not None:
            notes.refuse(
                resource,
                [str(key)],
                f"top-level key {key!r} looks like a misspelt {meant!r}; nothing under it "
                "is imported",
                f"rename {key!r} to {meant!r} in the source manifests",
                key=True,
            )
        else:
            notes.refuse(
                resource, [str(key)], f"unknown top-level key {key!r} is not imported", key=True
            )


def _namespace_of_manifests(notes: Notes, resources: ByKind, wanted: str | None) -> str:
    """The namespace the manifests were applied to: theirs, else --namespace, else default."""
    named = [r for group in resources.values() for r in group if r.namespace]
    if not named:
        return wanted or "default"
    chosen = named[0].namespace
    for resource in named[1:]:
        if resource.namespace != chosen and resource.kind != "Gateway":
            notes.refuse(
                resource,
                ["metadata", "namespace"],
                f"{what(resource)} is in namespace {resource.namespace}, the other "
                f"manifests in {chosen}: an environment puts everything in one namespace",
                "import each namespace into an environment of its own",
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
        raise InputError(
            [
                Problem(
                    Location(env_path),
                    f"--namespace {wanted}: {env_path} exists and sets namespace {declared}",
                    "leave --namespace out when importing into an existing environment",
                )
            ]
        )
    return data


def choose_services(
    notes: Notes, parsed: Parsed, services: list[Resource], wanted: Sequence[str]
) -> list[Resource]:
    """The Services to import: those named (`--service`), else every Service whose pods are
    among the manifests' Deployments."""
    if not services:
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
    by_name = {s.name: s for s in services}
    missing = [name for name in wanted if name not in by_name]
    if missing and len(services) == 1 and len(wanted) == 1:
        return services  # --service renames the one Service's release
    if missing:
        raise InputError(
            [
                Problem(
                    Location("--service"),
                    f"no Service {name} among the manifests ({', '.join(by_name)})",
                    "name one of the Services the manifests hold",
                )
                for name in missing
            ]
        )
    if wanted:
        return [by_name[name] for name in dict.fromkeys(wanted)]
    pods = [pod_labels(d) for d in parsed.resources if d.kind == "Deployment"]
    chosen = [s for s in services if _selects_any(s, pods)]
    if not chosen:
        raise InputError(
            [
                Problem(
                    services[0].location(),
                    "no Service selects the pods of a Deployment among the manifests: "
                    "there is no version to import",
                    "add the Deployments' manifests to the files to import",
                )
            ]
        )
    return chosen


def _selects_any(service: Resource, pods: list[dict[str, str]]) -> bool:
    selector = labels(service.get("spec", "selector")) or {}
    selector.pop("version", None)
    return bool(selector) and any(selector.items() <= found.items() for found in pods)
