"""Read a Kustomize base: its Deployment, its Service, and the other kinds it holds.

The renderer needs the base's image names (for `images`), the kinds to drop in each version
folder, and the Service name (the route destination). A plain base - resource files and
folders, generators - is read directly; anything that can rename or rewrite resources
(patches, prefixes, components, remote resources) is built with the real kustomize instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcanary import kustomize
from meshcanary.errors import InputError
from meshcanary.kustomize.contain import KUSTOMIZATION_NAMES, looks_remote
from meshcanary.manifest import loader_class, yaml_error
from meshcanary.positions import yaml_problem
from meshcanary.problem import Location, Problem
from meshcanary.source import parse_mapping, read_text

# Fields that cannot change a resource's kind, name, images or labels.
_PLAIN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "commonAnnotations",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "buildMetadata",
}
_GENERATED_KINDS = {"configMapGenerator": "ConfigMap", "secretGenerator": "Secret"}


@dataclass(frozen=True)
class Container:
    name: str
    image: str


@dataclass(frozen=True)
class Base:
    path: str  # repository-relative
    deployment: str
    containers: tuple[Container, ...]
    selector: dict[str, str]
    pod_labels: dict[str, str]
    ports: tuple[tuple[str, int], ...]  # container ports (name, number)
    service: str
    service_selector: dict[str, str]
    service_ports: tuple[tuple[str, int, int | str | None], ...]  # (name, port, targetPort)
    other_kinds: tuple[str, ...]  # kinds besides Deployment
    # (kind, name) of every object besides the Deployment, and of those among them rendered
    # once per version, in each version's folder, rather than once in _service/.
    others: tuple[tuple[str, str], ...] = ()
    per_version: tuple[tuple[str, str], ...] = ()
    # The Deployment as the base writes it: where a version's patch merges into its lists.
    body: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def shared_deletions(self) -> list[tuple[str, str | None]]:
        """What a version folder drops: (kind, None) for a kind it keeps no object of, else
        (kind, name) for each object of that kind rendered once."""
        kinds_kept = {kind for kind, _ in self.per_version}
        dropped: list[tuple[str, str | None]] = [
            (kind, None) for kind in self.other_kinds if kind not in kinds_kept
        ]
        dropped += [
            (kind, name)
            for kind, name in self.others
            if kind in kinds_kept and (kind, name) not in self.per_version
        ]
        return dropped

    def image_name(self, container: str | None, service: str) -> Container:
        """The container whose image a version sets: named, else named like the service, else first."""
        by_name = {c.name: c for c in self.containers}
        if container:
            return by_name[container]
        return by_name.get(service, self.containers[0])


def _kustomization(folder: Path) -> Path | None:
    # lexists, not is_file: a FIFO or a dangling link is reported when read, not skipped.
    return next((folder / n for n in KUSTOMIZATION_NAMES if os.path.lexists(folder / n)), None)


# Entries of a kustomization that may name a folder of resources.
_FOLDER_FIELDS = ("resources", "components", "bases", "generators", "transformers", "validators")


@dataclass
class _Walk:
    """What reading a base found: its resources, and whether kustomize must build it instead."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    plain: bool = True
    # YAML our parsers refuse: reported, with its position, only if kustomize refuses it too.
    unparsed: list[Problem] = field(default_factory=list)


def _load_all(text: str) -> list[Any]:
    # PyYAML's C loader, reading YAML as Kubernetes does: bases are Kubernetes manifests.
    import yaml

    return [d for d in yaml.load_all(text, Loader=loader_class()) if d is not None]


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _read_resources(path: Path, root: Path, walk: _Walk) -> None:
    display = _shown(path, root)
    # Not a regular file, too big, not UTF-8: refused here, as kustomize would hang or fail.
    text = read_text(path, display)
    try:
        docs = _load_all(text)
    except yaml_error() as exc:
        walk.unparsed.append(yaml_problem(exc, display, text))
        return
    except (ValueError, RecursionError) as exc:  # e.g. an over-long integer
        walk.unparsed.append(Problem(Location(display), f"invalid YAML: {exc}"))
        return
    walk.resources.extend(d for d in docs if isinstance(d, dict))


def _read_plain(folder: Path, root: Path, seen: set[Path], walk: _Walk) -> None:
    """Read a base's resources from its files into `walk`, where no kustomize is needed.

    The resolver has accepted every entry already (inside the repository, nothing remote),
    so this only decides whether the files can be read as they are: a kustomization that can
    rename or rewrite resources marks the walk as not plain, and kustomize builds the base.
    """
    if folder in seen:
        walk.plain = False
        return
    seen.add(folder)
    found = _kustomization(folder)
    if found is None:
        walk.plain = False
        return
    display = _shown(found, root)
    text = read_text(found, display)
    try:
        doc = parse_mapping(text, display)
    except InputError as exc:
        walk.plain = False
        walk.unparsed.extend(exc.problems)
        return
    spec = doc.data
    if set(spec) - _PLAIN_FIELDS:
        walk.plain = False
    for name in _FOLDER_FIELDS:
        entries = spec.get(name) or []
        if not isinstance(entries, list):
            walk.plain = False
            continue
        for entry in entries:
            if not isinstance(entry, str) or "\n" in entry or looks_remote(entry):
                walk.plain = False
                continue
            # As kustomize reads it: `..` taken lexically, then links followed.
            target = Path(os.path.realpath(os.path.normpath(folder / entry)))
            if target.is_dir():
                _read_plain(target, root, seen, walk)
            elif name == "resources" and target.is_file():
                _read_resources(target, root, walk)
            else:
                walk.plain = False
    for name, kind in _GENERATED_KINDS.items():
        generators = spec.get(name) or []
        for generator in generators if isinstance(generators, list) else [None]:
            if not isinstance(generator, dict):
                walk.plain = False
                continue
            walk.resources.append({"kind": kind, "metadata": {"name": generator.get("name", "")}})


PER_VERSION = "meshcanary.dev/per-version"


def _per_version(resource: dict[str, Any], deployment: str) -> bool:
    """An object each version gets its own copy of: an autoscaler of the base's Deployment
    (each version scales on its own), or one annotated so (a PodDisruptionBudget per version)."""
    metadata = resource.get("metadata") or {}
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and annotations.get(PER_VERSION) == "true":
        return True
    if resource.get("kind") != "HorizontalPodAutoscaler":
        return False
    spec = resource.get("spec")
    target = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
    return (
        isinstance(target, dict)
        and target.get("kind") == "Deployment"
        and target.get("name") == deployment
    )


def _name(resource: dict[str, Any]) -> str:
    metadata = resource.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _labels(node: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (node or {}).items()} if isinstance(node, dict) else {}


def read_base(
    root: Path, relative: str, where: Location, remote_bases: tuple[str, ...] = ()
) -> Base:
    """The parts of the base at `relative` the renderer needs; errors point at `where`.

    Every kustomization the base reaches is resolved first; what it refuses (a path out of
    the repository, a remote entry, a plugin) is reported at the entry's own line.
    """
    folder = (root / relative).resolve()
    builder = kustomize.builder(root)
    target = kustomize.Target(folder, relative, remote_bases)
    refused = builder.refused(target)
    if refused:
        raise InputError(refused)
    walk = _Walk()
    _read_plain(folder, root.resolve(), set(), walk)
    if walk.plain and not walk.unparsed:
        resources = walk.resources
    else:
        result = builder.build(target)
        if not result.ok:
            # Our own parse error points into the base file; kustomize's names only the file.
            raise InputError(
                walk.unparsed
                or [Problem(where, f'kustomize cannot build base "{relative}": {result.error}')]
            ) from None
        resources = [d for d in _load_all(result.output) if isinstance(d, dict)]

    def named(kind: str) -> list[dict[str, Any]]:
        return [r for r in resources if r.get("kind") == kind]

    deployments, services = named("Deployment"), named("Service")
    if len(deployments) != 1:
        raise InputError(
            [
                Problem(
                    where,
                    f'base "{relative}" must hold exactly one Deployment, found {len(deployments)}',
                    "keep other workloads in a base of their own",
                )
            ]
        )
    if len(services) != 1:
        raise InputError(
            [
                Problem(
                    where,
                    f'base "{relative}" must hold exactly one Service, found {len(services)}',
                    "the Service is shared by every version and is what the routes point at",
                )
            ]
        )
    deployment, service = deployments[0], services[0]
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    containers = tuple(
        Container(str(c.get("name", "")), str(c.get("image", "")))
        for c in pod_spec.get("containers") or []
        if isinstance(c, dict)
    )
    if not containers:
        raise InputError([Problem(where, f'the Deployment in base "{relative}" has no containers')])
    selector = _labels((spec.get("selector") or {}).get("matchLabels"))
    if "app" not in selector:
        raise InputError(
            [
                Problem(
                    where,
                    f'the Deployment in base "{relative}" has no "app" label in spec.selector.matchLabels',
                    "label the selector and the pod template with app: <service>; versions add version: <name>",
                )
            ]
        )
    ports = tuple(
        (str(p.get("name", "")), int(p.get("containerPort", 0)))
        for c in pod_spec.get("containers") or []
        for p in (c.get("ports") or [])
        if isinstance(p, dict)
    )
    deployment_name = str((deployment.get("metadata") or {}).get("name", ""))
    if _per_version(service, ""):
        raise InputError(
            [
                Problem(
                    where,
                    f'the Service in base "{relative}" is annotated {PER_VERSION}',
                    "the Service is shared by every version: remove the annotation",
                )
            ]
        )
    others = sorted({(str(r.get("kind")), _name(r)) for r in resources if r is not deployment})
    per_version = sorted(
        {
            (str(r.get("kind")), _name(r))
            for r in resources
            if r is not deployment and _per_version(r, deployment_name)
        }
    )
    service_spec = service.get("spec") or {}
    service_ports = tuple(
        (str(p.get("name", "")), int(p.get("port", 0)), p.get("targetPort"))
        for p in service_spec.get("ports") or []
        if isinstance(p, dict)
    )
    return Base(
        path=relative,
        deployment=deployment_name,
        containers=containers,
        selector=selector,
        pod_labels=_labels((template.get("metadata") or {}).get("labels")),
        ports=ports,
        service=str((service.get("metadata") or {}).get("name", "")),
        service_selector=_labels(service_spec.get("selector")),
        service_ports=service_ports,
        other_kinds=tuple(sorted({str(r.get("kind")) for r in resources} - {"Deployment"})),
        others=tuple(others),
        per_version=tuple(per_version),
        body=deployment,
    )
