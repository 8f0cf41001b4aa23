"""DestinationRule subsets → versions, and the version a route's destination reaches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshcanary.importer.context import Context, what
from meshcanary.importer.objects import istio_metadata
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import Destination, Subset, destination, pod_labels, subsets
from meshcanary.problem import ResourceRef, Severity


@dataclass(frozen=True)
class Subsets:
    """The service's DestinationRule, if any, and the version each of its subsets selects."""

    rule: Resource | None = None
    versions: dict[str, str] = field(default_factory=dict)  # subset name → version


def read(ctx: Context, rules: list[Resource], versions: list[Version]) -> Subsets:
    """The subsets of the first DestinationRule for the Service; a note for every other rule."""
    ours = [r for r in rules if ctx.refers_to_service(r.get("spec", "host"), r)]
    for resource in rules:
        if resource not in ours:
            ctx.note(
                resource,
                ["spec", "host"],
                f"{what(resource)} is not imported: its host is not Service {ctx.service_name}",
            )
    for resource in ours[1:]:
        ctx.note(
            resource,
            [],
            f"{what(resource)} is not imported: only the first DestinationRule for "
            f"{ctx.service_name} is (at {ours[0].location()})",
            "merge them into one",
        )
    if not ours:
        return Subsets()
    rule = ours[0]
    istio_metadata(ctx, rule)
    for key in rule.get("spec") or {}:
        if key not in ("host", "trafficPolicy", "subsets"):
            ctx.note(
                rule,
                ["spec", key],
                f"DestinationRule field {key} is not imported: the release has no place for it",
                key=True,
            )
    mapping: dict[str, str] = {}
    for subset in subsets(rule):
        version = _version(ctx, subset, versions)
        if version is not None:
            mapping[subset.name] = version
    return Subsets(rule, mapping)


def _version(ctx: Context, subset: Subset, versions: list[Version]) -> str | None:
    """The one version a subset selects, or None with a note."""
    rule, name, path = subset.rule, subset.name, subset.path
    selected = [v for v in versions if subset.labels.items() <= pod_labels(v.resource).items()]
    if len(selected) != 1:
        which = ", ".join(v.name for v in selected) or "none of the imported versions"
        ctx.note(
            rule,
            [*path, "labels"],
            f"subset {name} selects {which}; a subset is one version, so routes to it "
            "are not imported",
        )
        return None
    version = selected[0].name
    if name != version:
        ctx.note(
            rule,
            [*path, "name"],
            f"subset {name} is rendered as subset {version}, after the version label "
            "of the pods it selects",
            severity=Severity.INFO,
        )
    entry = rule.get(*path)
    for key in entry if isinstance(entry, dict) else {}:
        if key not in ("name", "labels"):
            ctx.note(
                rule,
                [*path, key],
                f"subset {name}'s {key} is not imported: the release's trafficPolicy "
                "covers every version",
                key=True,
            )
    return version


class Destinations:
    """The version each destination (or mirror) of the service's VirtualService sends to."""

    def __init__(self, ctx: Context, found: Subsets, versions: list[Version]) -> None:
        self.ctx = ctx
        self.subsets = found
        self.versions = [v.name for v in versions]
        self.read_as_label: set[str] = set()  # subsets noted as version labels already
        self.ports_noted: set[ResourceRef] = set()  # VirtualServices noted for their ports

    def version(self, resource: Resource, path: JsonPath, target: Any) -> str | None:
        """The version `target` (a `destination` or `mirror` at `path`) sends to, or None
        with a note."""
        found = self._destination(resource, path, target)
        if found is None or found.subset is None:
            return None
        subset = found.subset
        version = self.subsets.versions.get(subset)
        if version is None and self.subsets.rule is None and subset in self.versions:
            version = subset  # no DestinationRule: read the subset name as the version label
            if subset in self.read_as_label:
                return version
            self.read_as_label.add(subset)
            self.ctx.note(
                resource,
                found.subset_path,
                f"no DestinationRule for {self.ctx.service_name} among the manifests: "
                f"subset {subset} is read as the pods labelled version={subset}",
                severity=Severity.INFO,
            )
        if version is None or version not in self.versions:
            self.ctx.note(
                resource,
                found.subset_path,
                f"subset {subset} is not an imported version "
                f"({', '.join(self.versions)}); what is routed to it is not imported",
            )
            return None
        self._note_port(resource, path, target)
        return version

    def _destination(self, resource: Resource, path: JsonPath, target: Any) -> Destination | None:
        """`target` read as a destination; None, with a note, when it is not the Service's.
        A destination without a subset is noted too: it cannot stand for one version."""
        ctx = self.ctx
        found = destination(resource, list(path), target, ctx.namespace(resource))
        if found is None or found.host != ctx.service_host(resource):
            shown = target.get("host") if isinstance(target, dict) else None
            ctx.note(
                resource,
                [*path, "host"],
                f"destination {shown!r} is not Service {ctx.service_name}; "
                "a release routes to its own versions only",
            )
            return None
        if found.subset is None:
            ctx.note(
                resource,
                path,
                "destination without a subset reaches every version through the Service; "
                "a release routes to one version per destination",
            )
        return found

    def _note_port(self, resource: Resource, path: JsonPath, target: dict[str, Any]) -> None:
        """Once per VirtualService: rendered routes do not name a port."""
        if "port" in target and resource.ref not in self.ports_noted:
            self.ports_noted.add(resource.ref)
            self.ctx.note(
                resource,
                [*path, "port"],
                "destination ports are not imported (this one and any other in this "
                "VirtualService): rendered routes reach the Service on the port a request "
                "came in on",
                "list the ports under ports: in the release file to route each separately",
                severity=Severity.INFO,
            )
