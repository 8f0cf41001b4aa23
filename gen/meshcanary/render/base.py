"""Read a Kustomize base: its Deployment, its Service, and the other kinds it holds.

The renderer needs the base's image names (for `images`), the kinds to drop in each version
folder, and the Service name (the route destination). A plain base - resource files and
folders, generators - is read directly; anything that can rename or rewrite resources
(patches, prefixes, components, remote resources) is built with the real kustomize instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcanary import kustomize
from meshcanary.errors import InputError
from meshcanary.manifest import Loader
from meshcanary.problem import Location, Problem

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
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
    other_kinds: tuple[str, ...]  # kinds besides Deployment, each dropped from version folders

    def image_name(self, container: str | None, service: str) -> Container:
        """The container whose image a version sets: named, else named like the service, else first."""
        by_name = {c.name: c for c in self.containers}
        if container:
            return by_name[container]
        return by_name.get(service, self.containers[0])


def _kustomization(folder: Path) -> Path | None:
    return next((folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()), None)


class _NeedsKustomize(Exception):
    pass


def _load_all(text: str) -> list[Any]:
    # PyYAML's C loader, reading YAML as Kubernetes does: bases are Kubernetes manifests.
    return [d for d in yaml.load_all(text, Loader=Loader) if d is not None]


def _read_plain(folder: Path, root: Path, seen: set[Path]) -> list[dict[str, Any]]:
    """Resources of a plain base, read from its files; `_NeedsKustomize` when not plain."""
    if folder in seen:
        raise _NeedsKustomize
    seen.add(folder)
    file = _kustomization(folder)
    if file is None:
        raise _NeedsKustomize
    docs = _load_all(file.read_text(encoding="utf-8"))
    spec = docs[0] if docs else {}
    if not isinstance(spec, dict) or set(spec) - _PLAIN_FIELDS:
        raise _NeedsKustomize
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources") or []:
        if not isinstance(entry, str) or "://" in entry or entry.startswith(("github.com", "git@")):
            raise _NeedsKustomize
        target = (folder / entry).resolve()
        if not target.is_relative_to(root):
            raise _NeedsKustomize
        if target.is_dir():
            resources.extend(_read_plain(target, root, seen))
        elif target.is_file():
            resources.extend(
                d for d in _load_all(target.read_text(encoding="utf-8")) if isinstance(d, dict)
            )
        else:
            raise _NeedsKustomize
    for field, kind in _GENERATED_KINDS.items():
        for generator in spec.get(field) or []:
            resources.append({"kind": kind, "metadata": {"name": generator.get("name", "")}})
    return resources


def _labels(node: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (node or {}).items()} if isinstance(node, dict) else {}


def read_base(root: Path, relative: str, where: Location) -> Base:
    """The parts of the base at `relative` the renderer needs; errors point at `where`."""
    folder = (root / relative).resolve()
    try:
        resources = _read_plain(folder, root.resolve(), set())
    except (_NeedsKustomize, yaml.YAMLError, OSError, UnicodeDecodeError):
        result = kustomize.build(folder, relative)
        if not result.ok:
            raise InputError(
                [Problem(where, f'kustomize cannot build base "{relative}": {result.error}')]
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
    service_spec = service.get("spec") or {}
    service_ports = tuple(
        (str(p.get("name", "")), int(p.get("port", 0)), p.get("targetPort"))
        for p in service_spec.get("ports") or []
        if isinstance(p, dict)
    )
    return Base(
        path=relative,
        deployment=str((deployment.get("metadata") or {}).get("name", "")),
        containers=containers,
        selector=selector,
        pod_labels=_labels((template.get("metadata") or {}).get("labels")),
        ports=ports,
        service=str((service.get("metadata") or {}).get("name", "")),
        service_selector=_labels(service_spec.get("selector")),
        service_ports=service_ports,
        other_kinds=tuple(sorted({str(r.get("kind")) for r in resources} - {"Deployment"})),
    )
