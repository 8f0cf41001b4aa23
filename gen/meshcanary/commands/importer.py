"""`meshcanary import`: existing manifests of one service → a Kustomize base and a release file.

Reads the Deployments (one per version, told apart by their pods' `version` label), the
Service, and the Istio VirtualService, DestinationRule and Gateways that route to them, and
writes `deploy/base/<service>/`, `environments/<env>/<service>.yaml` and, when the
environment is new, `environments/<env>/environment.yaml`. What the release file cannot say
(an unversioned Deployment next to versioned ones, route conditions other than headers,
fields two versions do not share, ...) is reported as a note at the field it was read from;
nothing is dropped without one. Nothing is written when the input cannot be imported.

A misspelt top-level key (the seed's `meta data:`) is a note, not an error: a version is told
apart by its pods' `version` label and rendered as `<service>-<version>`, so the lost name is
not needed, and the import itself is how such a manifest gets replaced. Bad YAML, no Service,
no version, or a value no release can hold (an upper-case image) stop the import instead.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import ValidationError

from meshcanary.commands.lint import read_inputs
from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENT_FILE, ENVIRONMENTS
from meshcanary.manifest import JsonPath, Parsed, Resource, pointer
from meshcanary.problem import Location, Problem, ResourceRef, Severity
from meshcanary.release import schema
from meshcanary.render.emit import document
from meshcanary.rules.resource_name import misspelling
from meshcanary.source import load_mapping

RULE = "import"
BASES = "deploy/base"
KINDS = ("Deployment", "Service", "VirtualService", "DestinationRule", "Gateway")
ISTIO_GROUP = "networking.istio.io/"
DEFAULT_ISTIO_API = "networking.istio.io/v1"
RELEASE_MODELINE = "yaml-language-server: $schema=../../schemas/release.schema.json"
ENVIRONMENT_MODELINE = "yaml-language-server: $schema=../../schemas/environment.schema.json"
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOST = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_GATEWAY = re.compile(
    r"mesh|[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[a-z0-9]([-a-z0-9]*[a-z0-9])?)?", re.ASCII
)
_HEADER = re.compile(r"[a-z0-9][-a-z0-9_.]*")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?(ms|s|m|h)")
_HAS_TAG_OR_DIGEST = re.compile(r".*(:[^/:@]+|@sha256:[a-f0-9]{64})")
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
# Fields the API server fills in; `kubectl get -o yaml` output carries them.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
_SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)
# Route fields the release file has a place for; any other one is reported.
_ROUTE_FIELDS = {"name", "match", "route", "timeout", "retries", "mirror", "mirrorPercentage"}
_RETRY_FIELDS = ("attempts", "perTryTimeout", "retryOn")
_SERVER_FIELDS = ("name", "port", "hosts", "tls", "bind", "defaultEndpoint")
_PORT_FIELDS = ("number", "name", "protocol", "targetPort")


@dataclass(frozen=True)
class ImportResult:
    """What `import_manifests` wrote (repository-relative paths) and what it could not carry over."""

    written: tuple[str, ...]
    notes: tuple[Problem, ...]  # located at the source field; sorted by position


def import_manifests(
    root: Path,
    files: Sequence[Path],
    environment: str,
    service: str | None = None,
    namespace: str | None = None,
) -> ImportResult:
    """Import the manifests in `files` (files or folders) as one service of `environment`.

    `service` defaults to the Service's name; `namespace` (for a new environment) to the
    manifests' namespace, else `default`. Raises InputError, writing nothing, when the input
    cannot be read or holds nothing a release can be made of, or when the base or the release
    file already exists.
    """
    problems = [
        Problem(Location(where), f'{what} "{value}" is not a DNS-1123 label', hint)
        for what, value, where, hint in (
            ("environment", environment, ENVIRONMENTS, "lower-case letters, digits and '-'"),
            ("service", service, "--service", "lower-case letters, digits and '-'"),
            ("namespace", namespace, "--namespace", "lower-case letters, digits and '-'"),
        )
        if value is not None and not _is_label(value)
    ]
    if problems:
        raise InputError(problems)
    parsed = _read(files)
    return _Importer(root, parsed, environment, service, namespace).run()


def _is_label(text: str) -> bool:
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None


def _read(files: Sequence[Path]) -> Parsed:
    """Every resource of the inputs, read the way `lint` reads them (Kustomize folders built)."""
    if not files:
        raise InputError("no manifests given: name the files that hold the service's resources")
    parsed, _ = read_inputs([path.as_posix() for path in files])
    if parsed.problems:
        raise InputError(parsed.problems)
    return parsed


def _natural(name: str) -> list[tuple[int, int | str]]:
    """Sort key that puts v2 before v10."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def _apportion(shares: dict[str, float], total: int = 100) -> dict[str, int]:
    """Whole numbers in proportion to `shares` that sum to `total` (largest remainder)."""
    whole = sum(shares.values())
    if whole <= 0:
        return dict.fromkeys(shares, 0)
    quotas = {name: share * total / whole for name, share in shares.items()}
    result = {name: int(quota) for name, quota in quotas.items()}
    order = sorted(quotas, key=lambda n: (-(quotas[n] - result[n]), list(shares).index(n)))
    for name in order[: total - sum(result.values())]:
        result[name] += 1
    return result


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


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


def _refused(error: ValidationError) -> str:
    """Why a value read from the manifests cannot stand in a release or environment file."""
    described = error.schema.get("description") if isinstance(error.schema, dict) else None
    where = _dotted(list(error.absolute_path))
    if error.validator in ("pattern", "minLength", "maxLength") and described:
        return f"cannot import {where} {json.dumps(error.instance)}: {described}"
    return f"cannot import {where}: {error.message}"


def _holds(data: Any, path: Sequence[str | int]) -> bool:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return False
        data = data[part]
    return True


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the object"


@dataclass
class _Version:
    name: str
    resource: Resource
    container: int  # index of the container whose image a version sets
    image: str
    replicas: int


@dataclass
class _Route:
    """One HTTP route of the VirtualService, read into versions."""

    index: int
    data: dict[str, Any]
    weights: dict[str, int]  # version → weight, in the route's order
    conditional: bool  # has a match the release cannot express as a header pin


@dataclass
class _Origins:
    """Where each field of a generated file was read from, to locate schema problems."""

    fallback: Location
    known: dict[tuple[str | int, ...], Location] = field(default_factory=dict)

    def add(self, path: tuple[str | int, ...], location: Location) -> None:
        self.known.setdefault(path, location)

    def at(self, path: Sequence[str | int]) -> Location:
        parts = tuple(path)
        while parts:
            if parts in self.known:
                return self.known[parts]
            parts = parts[:-1]
        return self.known.get((), self.fallback)


class _Importer:
    def __init__(
        self,
        root: Path,
        parsed: Parsed,
        environment: str,
        service: str | None,
        namespace: str | None,
    ) -> None:
        self.root = root
        self.parsed = parsed
        self.environment = environment
        self.wanted_service = service
        self.wanted_namespace = namespace
        self.notes: list[Problem] = []
        first = parsed.resources[0].location() if parsed.resources else Location("input")
        self.release_origins = _Origins(first)
        self.dr: Resource | None = None  # the service's DestinationRule, once found

    # -- notes ---------------------------------------------------------------------------

    def note(
        self,
        resource: Resource,
        path: JsonPath,
        message: str,
        hint: str = "",
        *,
        severity: Severity = Severity.WARNING,
        key: bool = False,
    ) -> None:
        self.notes.append(
            Problem(
                resource.location(path, key=key),
                message,
                hint,
                rule=RULE,
                severity=severity,
                resource=resource.ref,
                path=pointer(path),
            )
        )

    @staticmethod
    def what(resource: Resource) -> str:
        return f"{resource.kind} {resource.name}" if resource.name else f"{resource.kind} (no name)"

    # -- the flow ------------------------------------------------------------------------

    def run(self) -> ImportResult:
        resources = self.classify()
        self.source_namespace = self.namespace_of_manifests(resources)
        self.env_path = f"{ENVIRONMENTS}/{self.environment}/{ENVIRONMENT_FILE}"
        self.env_data = self.existing_environment()
        self.target_namespace = (
            str(self.env_data["namespace"])
            if self.env_data and isinstance(self.env_data.get("namespace"), str)
            else self.wanted_namespace or self.source_namespace
        )
        service_resource = self.choose_service(resources["Service"])
        self.service = self.wanted_service or service_resource.name
        self.service_name = service_resource.name
        if not _is_label(self.service):
            raise InputError(
                [
                    Problem(
                        service_resource.location(["metadata", "name"]),
                        f'Service name "{self.service}" is not a DNS-1123 label, so it cannot name a release',
                        "pass --service with a DNS-1123 label",
                    )
                ]
            )
        selector = _labels(service_resource.get("spec", "selector"))
        selector.pop("version", None)
        versions = self.versions(resources["Deployment"], selector)
        subsets = self.subsets(resources["DestinationRule"], versions)
        gateways = self.gateways(resources["Gateway"])
        release = self.release(resources["VirtualService"], versions, subsets, gateways)
        # The release's order (route order, else by name) decides which version the base holds.
        position = list(release["versions"])
        versions.sort(key=lambda v: position.index(v.name))
        files = {
            **self.base_files(service_resource, versions),
            **self.environment_file(resources, gateways),
        }
        files[f"{ENVIRONMENTS}/{self.environment}/{self.service}.yaml"] = document(
            release, f"{RELEASE_MODELINE}\n{self.header()}"
        )
        self.refuse_existing(files)
        for relative, text in files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        unique = {(n.location, n.message): n for n in self.notes}
        return ImportResult(tuple(files), tuple(sorted(unique.values(), key=Problem.sort_key)))

    def header(self) -> str:
        sources = sorted({r.file for r in self.parsed.resources})
        return "Imported by `meshcanary import` from:\n" + "\n".join(f"  {s}" for s in sources)

    def classify(self) -> dict[str, list[Resource]]:
        found: dict[str, list[Resource]] = {kind: [] for kind in KINDS}
        for resource in self.parsed.resources:
            kind = resource.kind
            istio = kind in ("VirtualService", "DestinationRule", "Gateway")
            if kind in KINDS and (not istio or resource.api_version.startswith(ISTIO_GROUP)):
                self.top_level_keys(resource)
                found[kind].append(resource)
                continue
            if not kind:
                self.top_level_keys(resource)  # `kind` misspelt, perhaps
            self.note(
                resource,
                ["kind"],
                f"{self.what(resource)} is not imported: a release has no place for it",
                "import reads Deployments, Services, and Istio VirtualServices, "
                "DestinationRules and Gateways; keep other objects in the base by hand",
            )
        return found

    def top_level_keys(self, resource: Resource) -> None:
        keys = [k for k in resource.data if isinstance(k, str)]
        for key in resource.data:
            if key in _TOP_LEVEL:
                continue
            missing = [f for f in ("apiVersion", "kind", "metadata", "spec") if f not in keys]
            meant = next((f for f in missing if misspelling(f, [str(key)]) == key), None)
            if meant is not None:
                lost = "no metadata, so no name" if meant == "metadata" else f"no {meant}"
                self.note(
                    resource,
                    [str(key)],
                    f"top-level key {key!r} looks like a misspelt {meant!r}; as written the "
                    f"{resource.kind or 'object'} has {lost}, and nothing under {key!r} is imported",
                    f"rename {key!r} to {meant!r} in the source manifests; the rendered "
                    "Deployments are named <service>-<version> whatever the input calls them",
                    key=True,
                )
            else:
                self.note(
                    resource,
                    [str(key)],
                    f"unknown top-level key {key!r} is not imported",
                    key=True,
                )

    def namespace_of_manifests(self, resources: dict[str, list[Resource]]) -> str:
        """The namespace the manifests were applied to: theirs, else --namespace, else default."""
        named = [r for group in resources.values() for r in group if r.namespace]
        if not named:
            return self.wanted_namespace or "default"
        chosen = named[0].namespace
        for resource in named[1:]:
            if resource.namespace != chosen and resource.kind != "Gateway":
                self.note(
                    resource,
                    ["metadata", "namespace"],
                    f"{self.what(resource)} is in namespace {resource.namespace}, the other "
                    f"manifests in {chosen}: the environment puts everything in one namespace",
                )
        return chosen

    def existing_environment(self) -> dict[str, Any] | None:
        path = self.root / self.env_path
        if not path.is_file():
            return None
        data = load_mapping(path, self.env_path).data
        declared = data.get("namespace")
        if self.wanted_namespace and declared != self.wanted_namespace:
            self.notes.append(
                Problem(
                    Location(self.env_path),
                    f"--namespace {self.wanted_namespace} is ignored: {self.env_path} exists "
                    f"and sets namespace {declared}",
                    rule=RULE,
                )
            )
        return data

    # -- Service -------------------------------------------------------------------------

    def choose_service(self, services: list[Resource]) -> Resource:
        unique: dict[str, Resource] = {}
        for resource in services:
            first = unique.setdefault(resource.name, resource)
            if first is resource:
                continue
            same = self.stripped(first.data) == self.stripped(resource.data)
            self.note(
                resource,
                [],
                f"Service {resource.name} again (first at {first.location()})"
                + ("; imported once" if same else "; only the first is imported"),
                "" if same else "remove one of the two so it is clear which one is live",
                severity=Severity.INFO if same else Severity.WARNING,
            )
        if not unique:
            where = (
                self.parsed.resources[0].location() if self.parsed.resources else Location("input")
            )
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
            unique.get(self.wanted_service or "")
            or (next(iter(unique.values())) if len(unique) == 1 else None)
            or self.service_selecting(list(unique.values()))
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
                self.note(
                    resource,
                    [],
                    f"Service {resource.name} is not imported: a base holds one Service",
                    "import it separately, or keep it in a base of its own",
                )
        return chosen

    def service_selecting(self, services: list[Resource]) -> Resource | None:
        """The one Service whose selector picks pods that carry a version label."""
        versioned = [
            _labels(d.get("spec", "template", "metadata", "labels"))
            for d in self.parsed.resources
            if d.kind == "Deployment"
        ]
        versioned = [labels for labels in versioned if "version" in labels]
        matching = [
            s
            for s in services
            if (selector := _labels(s.get("spec", "selector")))
            and any(selector.items() <= labels.items() for labels in versioned)
        ]
        return matching[0] if len(matching) == 1 else None

    def stripped(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy without what the API server fills in and without the namespace."""
        copied = copy.deepcopy(data)
        metadata = copied.get("metadata")
        if isinstance(metadata, dict):
            for name in (*_SERVER_METADATA, "namespace"):
                metadata.pop(name, None)
            annotations = metadata.get("annotations")
            if isinstance(annotations, dict):
                for name in _SERVER_ANNOTATIONS:
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
        for key in [k for k in copied if k not in _TOP_LEVEL]:
            copied.pop(key)
        return copied

    def note_server_fields(self, resource: Resource) -> None:
        """One note per object for the server-set fields import leaves out."""
        metadata = resource.metadata
        paths: list[list[str | int]] = [
            ["metadata", name] for name in _SERVER_METADATA if name in metadata
        ]
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            paths += [
                ["metadata", "annotations", n] for n in _SERVER_ANNOTATIONS if n in annotations
            ]
        if "status" in resource.data:
            paths.append(["status"])
        if resource.kind == "Service" and resource.get("spec", "clusterIP") not in (None, "None"):
            paths.append(["spec", "clusterIP"])
        if paths:
            names = ", ".join(_dotted(p) for p in paths)
            self.note(
                resource,
                paths[0],
                f"{self.what(resource)}: fields the API server sets are left out ({names})",
                severity=Severity.INFO,
                key=True,
            )

    # -- Deployments ---------------------------------------------------------------------

    def versions(self, deployments: list[Resource], selector: dict[str, str]) -> list[_Version]:
        ours: list[Resource] = []
        for resource in deployments:
            labels = _labels(resource.get("spec", "template", "metadata", "labels"))
            runs_service = (
                selector.items() <= labels.items()
                if selector
                else labels.get("app") == self.service
            )
            if not runs_service:
                shown = ", ".join(f"{k}={v}" for k, v in selector.items()) or f"app={self.service}"
                self.note(
                    resource,
                    ["spec", "template", "metadata", "labels"],
                    f"{self.what(resource)} is not imported: its pods lack {shown}, so they "
                    f"are not behind Service {self.service_name}",
                )
                continue
            ours.append(resource)
        versioned = [
            r for r in ours if "version" in _labels(r.get("spec", "template", "metadata", "labels"))
        ]
        found: dict[str, _Version] = {}
        if not versioned and len(ours) == 1:
            # A plain Deployment with no canary yet: it becomes the first version.
            resource = ours[0]
            self.note(
                resource,
                ["spec", "template", "metadata", "labels"],
                f"{self.what(resource)} has no version label: imported as version v1, "
                f"rendered as {self.service}-v1 with version=v1 on its selector and pods",
                "a Deployment's selector cannot change in place: the rendered one replaces it",
            )
            version = self.version(resource, "v1")
            if version is not None:
                found["v1"] = version
        for resource in ours:
            labels = _labels(resource.get("spec", "template", "metadata", "labels"))
            name = labels.get("version")
            if name is None:
                if versioned:
                    self.note(
                        resource,
                        ["spec", "template", "metadata", "labels"],
                        f"{self.what(resource)} has no version label on its pods: meshcanary "
                        "renders one Deployment per version and cannot represent an "
                        "unversioned one beside them; not imported",
                        "its pods are behind the Service too and take traffic outside the "
                        "routes' subsets; delete it once the versions run, or label it",
                    )
                continue
            path = ["spec", "template", "metadata", "labels", "version"]
            if not _is_label(name):
                self.note(
                    resource,
                    path,
                    f'version "{name}" is not a DNS-1123 label, which a version name must be '
                    "(it names the Deployment and the subset); not imported",
                    "relabel the pods with a name such as v1 or v1-2",
                )
                continue
            if name in found:
                self.note(
                    resource,
                    path,
                    f"a second Deployment of version {name} "
                    f"(the first at {found[name].resource.location()}); not imported",
                )
                continue
            version = self.version(resource, name)
            if version is not None:
                found[name] = version
        if not found:
            where = deployments[0].location() if deployments else self.release_origins.fallback
            raise InputError(
                [
                    Problem(
                        where,
                        f"no Deployment of service {self.service} with a version label on its "
                        "pods: there is no version to import",
                        "label each version's selector and pod template with version: <name>",
                    )
                ]
            )
        return list(found.values())

    def version(self, resource: Resource, name: str) -> _Version | None:
        self.note_server_fields(resource)
        containers = resource.get("spec", "template", "spec", "containers")
        if not isinstance(containers, list) or not containers:
            self.note(
                resource,
                ["spec", "template", "spec"],
                f"{self.what(resource)} has no containers; version {name} is not imported",
            )
            return None
        names = [c.get("name") if isinstance(c, dict) else None for c in containers]
        index = names.index(self.service) if self.service in names else 0
        container = containers[index]
        image = container.get("image") if isinstance(container, dict) else None
        image_path: list[str | int] = ["spec", "template", "spec", "containers", index, "image"]
        if not isinstance(image, str) or not image.strip():
            self.note(
                resource,
                image_path,
                f"{self.what(resource)} has no image; version {name} is not imported",
            )
            return None
        image = image.strip()
        if not _HAS_TAG_OR_DIGEST.fullmatch(image):
            self.note(
                resource,
                image_path,
                f"image {image} has no tag, which means latest; written as {image}:latest "
                "because a release names a tag or a digest",
                "pin a release tag (e.g. 1.4.2) or a digest in the release file",
            )
            image += ":latest"
        replicas = resource.get("spec", "replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            self.note(
                resource,
                ["spec"],
                f"{self.what(resource)} sets no replicas: written as 1, Kubernetes' default",
                "if an autoscaler owns the replica count, meshcanary's fixed count fights it",
                severity=Severity.INFO,
            )
            replicas = 1
        version = _Version(name, resource, index, image, replicas)
        self.release_origins.add(("versions", name), resource.location(["spec", "template"]))
        self.release_origins.add(("versions", name, "image"), resource.location(image_path))
        self.release_origins.add(
            ("versions", name, "replicas"), resource.location(["spec", "replicas"])
        )
        rendered = f"{self.service}-{name}"
        if resource.name and resource.name != rendered:
            self.note(
                resource,
                ["metadata", "name"],
                f"Deployment {resource.name} is rendered as {rendered}",
                "the rendered Deployment replaces this one: delete (or let Argo CD prune) it "
                "once the new one is ready",
            )
        selector = _labels(resource.get("spec", "selector", "matchLabels"))
        if selector and "version" not in selector:
            self.note(
                resource,
                ["spec", "selector", "matchLabels"],
                f"{self.what(resource)} does not select on version; the rendered one does",
                "a Deployment's selector cannot change in place: the rendered one replaces it",
                severity=Severity.INFO,
            )
        return version

    def normalised(self, version: _Version) -> dict[str, Any]:
        """The Deployment without what a version sets: name, version labels, image, replicas."""
        data = self.stripped(version.resource.data)
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("name", None)
            labels = metadata.get("labels")
            if isinstance(labels, dict):
                labels.pop("version", None)
                if not labels:
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

    # -- DestinationRule -----------------------------------------------------------------

    def refers_to_service(self, host: Any, resource: Resource) -> bool:
        if not isinstance(host, str):
            return False
        namespace = resource.namespace or self.source_namespace
        name = self.service_name
        return host in (
            name,
            f"{name}.{namespace}",
            f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local",
        )

    def subsets(
        self, rules: list[Resource], versions: list[_Version]
    ) -> dict[str, tuple[str, Resource, JsonPath]]:
        """Subset name → (version, where the subset is written) for the service's DestinationRule."""
        ours = [r for r in rules if self.refers_to_service(r.get("spec", "host"), r)]
        for resource in rules:
            if resource not in ours:
                self.note(
                    resource,
                    ["spec", "host"],
                    f"{self.what(resource)} is not imported: its host is not Service "
                    f"{self.service_name}",
                )
        for resource in ours[1:]:
            self.note(
                resource,
                [],
                f"{self.what(resource)} is not imported: only the first DestinationRule for "
                f"{self.service_name} is (at {ours[0].location()})",
                "merge them into one",
            )
        if not ours:
            return {}
        rule = ours[0]
        self.dr = rule
        self.istio_metadata(rule)
        for key in rule.get("spec") or {}:
            if key not in ("host", "trafficPolicy", "subsets"):
                self.note(
                    rule,
                    ["spec", key],
                    f"DestinationRule field {key} is not imported: the release has no place for it",
                    key=True,
                )
        mapping: dict[str, tuple[str, Resource, JsonPath]] = {}
        subsets = rule.get("spec", "subsets")
        for index, subset in enumerate(subsets if isinstance(subsets, list) else []):
            if not isinstance(subset, dict):
                continue
            name = str(subset.get("name", ""))
            labels = _labels(subset.get("labels"))
            path: list[str | int] = ["spec", "subsets", index]
            selected = [
                v
                for v in versions
                if labels.items()
                <= _labels(v.resource.get("spec", "template", "metadata", "labels")).items()
            ]
            if len(selected) != 1:
                which = ", ".join(v.name for v in selected) or "none of the imported versions"
                self.note(
                    rule,
                    [*path, "labels"],
                    f"subset {name} selects {which}; a subset is one version, so routes to it "
                    "are not imported",
                )
                continue
            version = selected[0].name
            mapping[name] = (version, rule, path)
            if name != version:
                self.note(
                    rule,
                    [*path, "name"],
                    f"subset {name} is rendered as subset {version}, after the version label "
                    "of the pods it selects",
                    severity=Severity.INFO,
                )
            for key in subset:
                if key not in ("name", "labels"):
                    self.note(
                        rule,
                        [*path, key],
                        f"subset {name}'s {key} is not imported: the release's trafficPolicy "
                        "covers every version",
                        key=True,
                    )
        return mapping

    def istio_metadata(self, resource: Resource) -> None:
        """Rendered Istio objects carry a name only; say what else is left behind."""
        for key in resource.metadata:
            if key not in ("name", "namespace", *_SERVER_METADATA):
                self.note(
                    resource,
                    ["metadata", key],
                    f"{self.what(resource)}: metadata.{key} is not imported; the rendered "
                    "object has a name only",
                    key=True,
                )
        self.note_server_fields(resource)
        if resource.kind != "Gateway" and resource.name and resource.name != self.service:
            self.note(
                resource,
                ["metadata", "name"],
                f"{self.what(resource)} is rendered as {resource.kind} {self.service}",
                "the rendered object replaces this one: delete (or let Argo CD prune) it when "
                "the new one is applied, or both apply to the same host",
            )

    # -- Gateways ------------------------------------------------------------------------

    def gateways(self, resources: list[Resource]) -> dict[str, tuple[Resource, dict[str, Any]]]:
        """Gateways the environment can declare: name → (source, environment entry)."""
        found: dict[str, tuple[Resource, dict[str, Any]]] = {}
        seen: dict[str, Resource] = {}
        for resource in resources:
            name = resource.name
            first = seen.setdefault(name, resource)
            if first is not resource:
                same = self.stripped(first.data) == self.stripped(resource.data)
                self.note(
                    resource,
                    [],
                    f"Gateway {name} again (first at {first.location()})"
                    + ("; imported once" if same else "; only the first is imported"),
                    severity=Severity.INFO if same else Severity.WARNING,
                )
                continue
            if resource.namespace and resource.namespace != self.source_namespace:
                # A shared gateway in its own namespace (istio-system): it stays where it is.
                self.note(
                    resource,
                    ["metadata", "namespace"],
                    f"Gateway {name} is in namespace {resource.namespace}, not the service's "
                    f"{self.source_namespace}: not imported; routes refer to it as "
                    f"{resource.namespace}/{name}",
                    severity=Severity.INFO,
                )
                continue
            entry = self.gateway_entry(resource)
            if entry is not None:
                found[name] = (resource, entry)
        return found

    def gateway_entry(self, resource: Resource) -> dict[str, Any] | None:
        self.istio_metadata(resource)
        spec = resource.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        for key in spec:
            if key not in ("selector", "servers"):
                self.note(
                    resource,
                    ["spec", key],
                    f"Gateway field {key} is not imported",
                    key=True,
                )
        servers: list[dict[str, Any]] = []
        raw = spec.get("servers")
        for index, server in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(server, dict):
                continue
            kept = {k: copy.deepcopy(v) for k, v in server.items() if k in _SERVER_FIELDS}
            for key in server:
                if key not in _SERVER_FIELDS:
                    self.note(
                        resource,
                        ["spec", "servers", index, key],
                        f"server field {key} is not imported",
                        key=True,
                    )
            port = server.get("port")
            if isinstance(port, dict):
                kept["port"] = {k: v for k, v in port.items() if k in _PORT_FIELDS}
                for key in port:
                    if key not in _PORT_FIELDS:
                        self.note(
                            resource,
                            ["spec", "servers", index, "port", key],
                            f"port field {key} is not imported",
                            key=True,
                        )
            servers.append(kept)
        entry = {"selector": copy.deepcopy(spec.get("selector")), "servers": servers}
        # Anything else the environment schema refuses: say where, and leave the Gateway out.
        errors = list(
            schema.validator("environment").iter_errors(
                {"namespace": "x", "gateways": {resource.name: entry}}
            )
        )
        if errors:
            for error in errors:
                path: list[str | int] = ["spec", *list(error.absolute_path)[2:]]
                self.note(
                    resource,
                    path,
                    f"Gateway {resource.name} is not imported: {_dotted(path)}: {error.message}",
                )
            return None
        return entry

    # -- the release ---------------------------------------------------------------------

    def release(
        self,
        routes_in: list[Resource],
        versions: list[_Version],
        subsets: dict[str, tuple[str, Resource, JsonPath]],
        gateways: dict[str, tuple[Resource, dict[str, Any]]],
    ) -> dict[str, Any]:
        by_name = {v.name: v for v in versions}
        self.subset_map = {name: version for name, (version, _, _) in subsets.items()}
        self.has_destination_rule = self.dr is not None
        self.read_as_label: set[str] = set()
        self.ports_noted: set[ResourceRef] = set()
        ours = [r for r in routes_in if self.routes_to_service(r)]
        for resource in routes_in:
            if resource not in ours:
                self.note(
                    resource,
                    ["spec"],
                    f"{self.what(resource)} is not imported: it does not route to Service "
                    f"{self.service_name}",
                )
        for resource in ours[1:]:
            self.note(
                resource,
                [],
                f"{self.what(resource)} is not imported: only the first VirtualService for "
                f"{self.service_name} is (at {ours[0].location()})",
                "merge their hosts, gateways and routes into one VirtualService",
            )
        release: dict[str, Any] = {"service": self.service, "base": f"{BASES}/{self.service}"}
        origins = self.release_origins
        weights: dict[str, int] = {}
        extras: dict[str, Any] = {}
        order: list[str] = []
        if ours:
            service = ours[0]
            self.istio_metadata(service)
            hosts, host_paths = self.hosts(service)
            if hosts:
                release["hosts"] = hosts
                for index, path in enumerate(host_paths):
                    origins.add(("hosts", index), service.location(path))
            names, name_paths = self.gateway_refs(service, gateways)
            if names:
                release["gateways"] = names
                for index, path in enumerate(name_paths):
                    origins.add(("gateways", index), service.location(path))
            weights, extras, order = self.routes(service, by_name)
        if self.dr is not None and self.dr.get("spec", "trafficPolicy") is not None:
            release["trafficPolicy"] = copy.deepcopy(self.dr.get("spec", "trafficPolicy"))
            origins.add(("trafficPolicy",), self.dr.location(["spec", "trafficPolicy"]))
        release.update(extras)
        if not weights:
            weights = self.weights_from_replicas(versions, bool(ours))
        ordered = [*order, *sorted((v for v in by_name if v not in order), key=_natural)]
        release["versions"] = {
            name: {
                "image": by_name[name].image,
                "replicas": by_name[name].replicas,
                "weight": weights.get(name, 0),
            }
            for name in ordered
        }
        problems = [
            Problem(origins.at(list(error.absolute_path)), _refused(error))
            for error in schema.validator("release").iter_errors(release)
        ]
        if problems:
            raise InputError(problems)
        return release

    def routes_to_service(self, resource: Resource) -> bool:
        spec = resource.get("spec")
        if not isinstance(spec, dict):
            return False
        for protocol in ("http", "tcp", "tls"):
            for route in spec.get(protocol) or []:
                for destination in (route or {}).get("route") or []:
                    host = ((destination or {}).get("destination") or {}).get("host")
                    if self.refers_to_service(host, resource):
                        return True
        return any(self.refers_to_service(h, resource) for h in spec.get("hosts") or [])

    def hosts(self, resource: Resource) -> tuple[list[str], list[JsonPath]]:
        hosts: list[str] = []
        paths: list[JsonPath] = []
        raw = resource.get("spec", "hosts")
        for index, host in enumerate(raw if isinstance(raw, list) else []):
            path: list[str | int] = ["spec", "hosts", index]
            if not isinstance(host, str) or not _HOST.fullmatch(host) or len(host) > 253:
                self.note(
                    resource,
                    path,
                    f"host {host!r} is not imported: a release's hosts are DNS names, "
                    "optionally starting with *.",
                    "list the hosts clients use; `*` would capture every host",
                )
                continue
            if host in hosts:
                continue
            namespace = resource.namespace or self.source_namespace
            if namespace != self.target_namespace and host.startswith(
                f"{self.service_name}.{namespace}."
            ):
                self.note(
                    resource,
                    path,
                    f"host {host} names namespace {namespace}, but the environment deploys to "
                    f"{self.target_namespace}",
                    f"use {self.service_name}.{self.target_namespace}.svc.cluster.local",
                )
            hosts.append(host)
            paths.append(path)
        return hosts, paths

    def gateway_refs(
        self, resource: Resource, gateways: dict[str, tuple[Resource, dict[str, Any]]]
    ) -> tuple[list[str], list[JsonPath]]:
        declared = (
            set((self.env_data or {}).get("gateways") or {})
            if self.env_data is not None
            else set(gateways)
        )
        names: list[str] = []
        paths: list[JsonPath] = []
        raw = resource.get("spec", "gateways")
        namespace = resource.namespace or self.source_namespace
        for index, name in enumerate(raw if isinstance(raw, list) else []):
            path: list[str | int] = ["spec", "gateways", index]
            if not isinstance(name, str) or not _GATEWAY.fullmatch(name):
                self.note(resource, path, f"gateway {name!r} is not imported: not a gateway name")
                continue
            if name != "mesh" and "/" not in name and name not in declared:
                qualified = f"{namespace}/{name}"
                source = (
                    f"not declared in {self.env_path}"
                    if self.env_data is not None
                    else "not among the imported Gateways"
                )
                self.note(
                    resource,
                    path,
                    f"gateway {name} is {source}: the release refers to it as {qualified}, a "
                    "Gateway managed outside meshcanary",
                    f"declare it under gateways: in {self.env_path} and write {name}",
                )
                name = qualified
            if name not in names:
                names.append(name)
                paths.append(path)
        return names, paths

    def destination(
        self, resource: Resource, path: JsonPath, target: Any, by_name: dict[str, _Version]
    ) -> str | None:
        """The version a route destination (or mirror) sends to, or None with a note."""
        target = target if isinstance(target, dict) else {}
        if not self.refers_to_service(target.get("host"), resource):
            self.note(
                resource,
                [*path, "host"],
                f"destination {target.get('host')!r} is not Service {self.service_name}; "
                "a release routes to its own versions only",
            )
            return None
        subset = target.get("subset")
        if not isinstance(subset, str):
            self.note(
                resource,
                path,
                "destination without a subset reaches every version through the Service; "
                "a release routes to one version per destination",
            )
            return None
        version = self.subset_map.get(subset)
        if version is None and not self.has_destination_rule and subset in by_name:
            version = subset  # no DestinationRule: read the subset name as the version label
            if subset in self.read_as_label:
                return version
            self.read_as_label.add(subset)
            self.note(
                resource,
                [*path, "subset"],
                f"no DestinationRule for {self.service_name} among the manifests: subset "
                f"{subset} is read as the pods labelled version={subset}",
                severity=Severity.INFO,
            )
        if version is None or version not in by_name:
            self.note(
                resource,
                [*path, "subset"],
                f"subset {subset} is not an imported version "
                f"({', '.join(by_name)}); what is routed to it is not imported",
            )
            return None
        if "port" in target and resource.ref not in self.ports_noted:
            self.ports_noted.add(resource.ref)
            self.note(
                resource,
                [*path, "port"],
                "destination ports are not imported (this one and any other in this "
                "VirtualService): rendered routes reach the Service on the port a request "
                "came in on",
                "list the ports under ports: in the release file to route each separately",
                severity=Severity.INFO,
            )
        return version

    def routes(
        self, resource: Resource, by_name: dict[str, _Version]
    ) -> tuple[dict[str, int], dict[str, Any], list[str]]:
        """Weights, match rules, mirror, timeout and retries from the VirtualService's routes."""
        spec = resource.get("spec") or {}
        for key in spec:
            if key not in ("hosts", "gateways", "http"):
                self.note(
                    resource,
                    ["spec", key],
                    f"VirtualService field {key} is not imported: a release renders HTTP routes",
                    key=True,
                )
        http = spec.get("http")
        http = http if isinstance(http, list) else []
        weighted: list[_Route] = []
        pins: list[tuple[int, dict[str, Any]]] = []
        matches: list[dict[str, Any]] = []
        origins = self.release_origins
        catch_all: int | None = None
        for index, route in enumerate(http):
            path: list[str | int] = ["spec", "http", index]
            if not isinstance(route, dict):
                continue
            if catch_all is not None:
                self.note(
                    resource,
                    path,
                    f"route {index} is never used: route {catch_all} before it has no match and "
                    "takes every request; not imported",
                )
                continue
            conditions = route.get("match") or []
            if not conditions:
                catch_all = index
            for key in route:
                if key not in _ROUTE_FIELDS:
                    self.note(
                        resource,
                        [*path, key],
                        f"route field {key} is not imported: the release has no place for it",
                        key=True,
                    )
            targets: dict[str, int] = {}
            destinations = route.get("route")
            destinations = destinations if isinstance(destinations, list) else []
            if not destinations:
                self.note(resource, path, f"route {index} sends to no destination; not imported")
                continue
            for number, entry in enumerate(destinations):
                entry = entry if isinstance(entry, dict) else {}
                where: list[str | int] = [*path, "route", number]
                for key in entry:
                    if key not in ("destination", "weight"):
                        self.note(
                            resource,
                            [*where, key],
                            f"destination field {key} is not imported",
                            key=True,
                        )
                version = self.destination(
                    resource, [*where, "destination"], entry.get("destination"), by_name
                )
                weight = entry.get("weight")
                if not isinstance(weight, int) or isinstance(weight, bool):
                    weight = 100 if len(destinations) == 1 else 0
                if version is not None:
                    targets[version] = targets.get(version, 0) + weight
            if not targets:
                continue
            pin = (
                self.pin(resource, path, route, conditions, next(iter(targets)))
                if conditions and len(destinations) == 1
                else None
            )
            if pin is not None:
                if pin:
                    pins.append((index, route))
                    matches.extend(pin)
                continue
            weighted.append(_Route(index, route, targets, bool(conditions)))
        weights: dict[str, int] = {}
        extras: dict[str, Any] = {}
        order: list[str] = []
        chosen = next((r for r in weighted if not r.conditional), None) or (
            weighted[0] if weighted else None
        )
        if chosen is not None:
            path = ["spec", "http", chosen.index]
            if chosen.conditional:
                self.note(
                    resource,
                    [*path, "match"],
                    f"no route takes the requests that match nothing; route {chosen.index}'s "
                    "weights are used for all of them, without its match conditions",
                )
            for other in weighted:
                if other is chosen:
                    continue
                same = other.weights == chosen.weights
                self.note(
                    resource,
                    ["spec", "http", other.index],
                    f"route {other.index} is not imported: a release has one weighted route"
                    + (
                        " (its weights are the same as route "
                        if same
                        else " (its weights differ from route "
                    )
                    + f"{chosen.index}'s, which are kept)",
                    severity=Severity.INFO if same else Severity.WARNING,
                )
            order = list(chosen.weights)
            weights = self.hundred(resource, path, chosen.weights)
            for version in weights:
                origins.add(("versions", version, "weight"), resource.location([*path, "route"]))
            mirror = self.mirror(resource, path, chosen.data, by_name)
            if mirror is not None:
                extras["mirror"] = mirror
                origins.add(("mirror",), resource.location([*path, "mirror"]))
            if chosen.data.get("name") not in (None, "weighted"):
                self.note(
                    resource,
                    [*path, "name"],
                    f"route name {chosen.data['name']} is not imported: the weighted route is "
                    "rendered as weighted",
                    severity=Severity.INFO,
                )
        for index, route in pins:
            if route.get("mirror") or route.get("mirrorPercentage"):
                self.note(
                    resource,
                    ["spec", "http", index, "mirror"],
                    "mirroring on a header-matched route is not imported: the release "
                    "mirrors the weighted route only",
                    key=True,
                )
        used = [r for _, r in pins] + ([chosen.data] if chosen else [])
        used_indexes = [i for i, _ in pins] + ([chosen.index] if chosen else [])
        for key in ("timeout", "retries"):
            value = self.agreed(resource, key, used, used_indexes)
            if value is not None:
                extras[key] = value
                origins.add((key,), resource.location(["spec", "http", used_indexes[0], key]))
        if matches:
            extras["match"] = matches
            origins.add(("match",), resource.location(["spec", "http", pins[0][0]]))
            for rule in matches:
                if rule["version"] not in order:
                    order.append(rule["version"])
        if "mirror" in extras and extras["mirror"]["version"] not in order:
            order.append(extras["mirror"]["version"])
        return weights, {k: extras[k] for k in sorted(extras, key=self.release_key)}, order

    @staticmethod
    def release_key(key: str) -> int:
        keys = ("timeout", "retries", "match", "mirror")
        return keys.index(key) if key in keys else len(keys)

    def pin(
        self,
        resource: Resource,
        path: list[str | int],
        route: dict[str, Any],
        conditions: list[Any],
        version: str,
    ) -> list[dict[str, Any]]:
        """Match rules for a route that sends requests with some headers to one version."""
        rules: list[dict[str, Any]] = []
        for number, condition in enumerate(conditions):
            where: list[str | int] = [*path, "match", number]
            condition = condition if isinstance(condition, dict) else {}
            other = [k for k in condition if k not in ("headers", "name")]
            if other or not condition.get("headers"):
                shown = ", ".join(other) or "no header"
                self.note(
                    resource,
                    [*where, other[0]] if other else where,
                    f"route {path[-1]} sends requests matching {shown} to {version}: a release "
                    "pins requests by headers only, so this match is not imported and those "
                    "requests follow the weights",
                    key=bool(other),
                )
                continue
            headers: dict[str, Any] = {}
            for header, value in condition["headers"].items():
                kinds = value if isinstance(value, dict) else {}
                if (
                    not isinstance(header, str)
                    or not _HEADER.fullmatch(header.lower())
                    or len(kinds) != 1
                    or next(iter(kinds)) not in ("exact", "prefix", "regex")
                ):
                    self.note(
                        resource,
                        [*where, "headers", str(header)],
                        f"header condition {header!r} is not one a release can express "
                        "(a header name and one of exact, prefix or regex); this match is not "
                        f"imported, so those requests follow the weights instead of going to {version}",
                        key=True,
                    )
                    headers = {}
                    break
                headers[header.lower()] = copy.deepcopy(kinds)
            if not headers:
                continue
            rule: dict[str, Any] = {}
            name = route.get("name")
            if isinstance(name, str) and _is_label(name):
                rule["name"] = name if number == 0 else f"{name}-{number}"
            elif name is not None:
                self.note(
                    resource,
                    [*path, "name"],
                    f"route name {name!r} is not a DNS-1123 label; the rendered route gets a "
                    "name of its own",
                    severity=Severity.INFO,
                )
            if "name" in condition:
                self.note(
                    resource,
                    [*where, "name"],
                    "a match condition's name is not imported",
                    severity=Severity.INFO,
                    key=True,
                )
            rule["version"] = version
            rule["headers"] = headers
            rules.append(rule)
        return rules

    def mirror(
        self,
        resource: Resource,
        path: list[str | int],
        route: dict[str, Any],
        by_name: dict[str, _Version],
    ) -> dict[str, Any] | None:
        target = route.get("mirror")
        percentage: Any = route.get("mirrorPercentage")
        if target is None:
            return None
        version = self.destination(resource, [*path, "mirror"], target, by_name)
        if version is None:
            return None
        if percentage is None:
            percent: float = 100  # Istio mirrors every request when no share is given
        elif isinstance(percentage, dict) and isinstance(percentage.get("value"), int | float):
            percent = percentage["value"]
        else:
            self.note(
                resource,
                [*path, "mirrorPercentage"],
                "mirrorPercentage is not {value: <number>}; mirroring is not imported",
            )
            return None
        if not 0 < percent <= 100:
            self.note(
                resource,
                [*path, "mirrorPercentage"],
                f"mirroring {percent}% of requests copies nothing; not imported",
                severity=Severity.INFO,
            )
            return None
        whole = int(percent) if float(percent).is_integer() else percent
        return {"version": version, "percent": whole}

    def agreed(
        self, resource: Resource, key: str, routes: list[dict[str, Any]], indexes: list[int]
    ) -> Any:
        """The routes' shared timeout or retries; a note when they differ or cannot be written."""
        if not routes:
            return None
        values = [r.get(key) for r in routes]
        first = values[0]
        for value, index in zip(values[1:], indexes[1:], strict=True):
            if value != first:
                self.note(
                    resource,
                    ["spec", "http", index, key] if value is not None else ["spec", "http", index],
                    f"{key} differs between routes (route {indexes[0]}: {_shown(first)}, "
                    f"route {index}: {_shown(value)}); a release sets one {key} for every "
                    "route, so it is not imported",
                )
                return None
        if first is None:
            return None
        where: list[str | int] = ["spec", "http", indexes[0], key]
        if key == "timeout":
            if isinstance(first, str) and _DURATION.fullmatch(first):
                return first
            self.note(
                resource, where, f"timeout {first!r} is not a duration such as 5s; not imported"
            )
            return None
        if not isinstance(first, dict) or not isinstance(first.get("attempts"), int):
            self.note(resource, where, "retries without a number of attempts; not imported")
            return None
        retries = {k: first[k] for k in _RETRY_FIELDS if k in first}
        for field_name in first:
            if field_name not in _RETRY_FIELDS:
                self.note(
                    resource,
                    [*where, field_name],
                    f"retries field {field_name} is not imported",
                    key=True,
                )
        timeout = retries.get("perTryTimeout")
        if timeout is not None and not (isinstance(timeout, str) and _DURATION.fullmatch(timeout)):
            self.note(
                resource,
                [*where, "perTryTimeout"],
                f"perTryTimeout {timeout!r} is not a duration such as 2s; not imported",
            )
            retries.pop("perTryTimeout")
        return retries

    def hundred(
        self, resource: Resource, path: JsonPath, weights: dict[str, int]
    ) -> dict[str, int]:
        """The route's weights, scaled to sum to 100 (with a note) when they do not."""
        total = sum(weights.values())
        if total == 100:
            return dict(weights)
        shown = " + ".join(f"{v} {w}" for v, w in weights.items())
        if total <= 0:
            first = next(iter(weights))
            self.note(
                resource,
                [*path, "route"],
                f"the imported weights sum to 0 ({shown}); {first} is given 100",
                "set the weights you mean in the release file",
            )
            return {name: 100 if name == first else 0 for name in weights}
        scaled = _apportion({k: float(v) for k, v in weights.items()})
        result = " + ".join(f"{v} {w}" for v, w in scaled.items())
        self.note(
            resource,
            [*path, "route"],
            f"the imported weights sum to {total} ({shown}), not 100; written as {result}, the "
            "same shares in percent",
            "meshcanary's weights are percentages; check the release file's weights",
        )
        return scaled

    def weights_from_replicas(self, versions: list[_Version], routed: bool) -> dict[str, int]:
        """Without a weighted route the Service spreads requests over every pod."""
        shares = {v.name: float(v.replicas) for v in versions}
        weights = _apportion(shares) if sum(shares.values()) > 0 else {}
        if not weights:
            weights = {v.name: 100 if i == 0 else 0 for i, v in enumerate(versions)}
        first = versions[0].resource
        shown = ", ".join(f"{name} {w}" for name, w in weights.items())
        self.note(
            first,
            ["spec", "replicas"],
            (
                "the VirtualService has no weighted route for the versions"
                if routed
                else "no VirtualService routes to the versions"
            )
            + f": the Service spreads requests over all pods, so the weights follow the "
            f"replicas ({shown})",
            "check the weights in the release file",
        )
        return weights

    # -- the files -----------------------------------------------------------------------

    def base_files(self, service: Resource, versions: list[_Version]) -> dict[str, str]:
        first = versions[0]
        reference = self.normalised(first)
        for other in versions[1:]:
            for path in _diff(reference, self.normalised(other)):
                self.note(
                    other.resource,
                    list(path),
                    f"version {other.name}'s Deployment differs from {first.name}'s at "
                    f"{_dotted(path)}: the base holds {first.name}'s, and a version sets only "
                    "its image and replicas",
                    "make the versions' Deployments the same apart from image and replicas, "
                    "or change the base after the import",
                    key=not _holds(reference, path),  # a field only this version has
                )
        deployment = self.stripped(first.resource.data)
        metadata = deployment.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata.pop("name", None)
        labels = _labels(metadata.get("labels"))
        labels.pop("version", None)
        metadata = {"name": self.service, **metadata}
        if labels:
            metadata["labels"] = labels
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
        if "app" not in _labels((spec.get("selector") or {}).get("matchLabels")):
            raise InputError(
                [
                    Problem(
                        first.resource.location(["spec", "selector", "matchLabels"]),
                        "the Deployment's selector has no app label, which a base needs",
                        f"label the selector and the pod template with app: {self.service}",
                    )
                ]
            )
        self.note_server_fields(service)
        service_data = self.stripped(service.data)
        selector = (service_data.get("spec") or {}).get("selector")
        if isinstance(selector, dict) and "version" in selector:
            selector.pop("version")
            self.note(
                service,
                ["spec", "selector", "version"],
                f"Service {service.name} selects version {service.get('spec', 'selector', 'version')}; "
                "the base's Service selects every version, and the routes pick one",
                key=True,
            )
        folder = f"{BASES}/{self.service}"
        head = self.header() + "\nHumans own this base; meshcanary never writes here."
        kustomization = {**KUSTOMIZATION, "resources": ["deployment.yaml", "service.yaml"]}
        return {
            f"{folder}/kustomization.yaml": document(kustomization, head),
            f"{folder}/deployment.yaml": document(ordered),
            f"{folder}/service.yaml": document(service_data),
        }

    def istio_api(self, resources: dict[str, list[Resource]]) -> str | None:
        versions: list[Resource] = [
            r for kind in ("VirtualService", "DestinationRule", "Gateway") for r in resources[kind]
        ]
        found = {r.api_version for r in versions}
        if not found:
            return None
        if len(found) == 1:
            return found.pop()
        self.note(
            versions[0],
            ["apiVersion"],
            f"Istio objects use several apiVersions ({', '.join(sorted(found))}); the "
            f"environment renders them all as {DEFAULT_ISTIO_API}",
            severity=Severity.INFO,
        )
        return DEFAULT_ISTIO_API

    def environment_file(
        self,
        resources: dict[str, list[Resource]],
        gateways: dict[str, tuple[Resource, dict[str, Any]]],
    ) -> dict[str, str]:
        api = self.istio_api(resources)
        if self.env_data is not None:
            declared = self.env_data.get("gateways") or {}
            for name, (resource, entry) in gateways.items():
                if name not in declared:
                    self.note(
                        resource,
                        [],
                        f"Gateway {name} is not declared in {self.env_path}, which import does "
                        "not change; it is not rendered",
                        f"add it under gateways: in {self.env_path}",
                    )
                elif declared[name] != entry:
                    self.note(
                        resource,
                        ["spec"],
                        f"Gateway {name} differs from the one {self.env_path} declares, which "
                        "is what is rendered",
                        severity=Severity.INFO,
                    )
            env_api = self.env_data.get("istioApiVersion", DEFAULT_ISTIO_API)
            if api is not None and api != env_api:
                first = next(
                    r
                    for k in ("VirtualService", "DestinationRule", "Gateway")
                    for r in resources[k]
                )
                self.note(
                    first,
                    ["apiVersion"],
                    f"rendered with {env_api}, the istioApiVersion of {self.env_path}",
                    severity=Severity.INFO,
                )
            return {}
        data: dict[str, Any] = {"namespace": self.target_namespace}
        if api is not None:
            data["istioApiVersion"] = api
        if gateways:
            data["gateways"] = {name: entry for name, (_, entry) in gateways.items()}
        problems = [
            Problem(self.release_origins.fallback, _refused(error))
            for error in schema.validator("environment").iter_errors(data)
        ]
        if problems:
            raise InputError(problems)
        return {self.env_path: document(data, f"{ENVIRONMENT_MODELINE}\n{self.header()}")}

    def refuse_existing(self, files: dict[str, str]) -> None:
        problems: list[Problem] = []
        base = self.root / BASES / self.service
        if base.exists():
            problems.append(
                Problem(
                    Location(f"{BASES}/{self.service}"),
                    f"base {BASES}/{self.service} already exists; import writes a new base",
                    "remove or rename it, or pass --service with another name",
                )
            )
        release = f"{ENVIRONMENTS}/{self.environment}/{self.service}.yaml"
        if (self.root / release).exists():
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
            if (self.root / relative).exists():
                problems.append(Problem(Location(relative), f"{relative} already exists"))
        if problems:
            raise InputError(problems)
