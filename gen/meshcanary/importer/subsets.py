"""DestinationRule subsets → versions, and the version a route's destination reaches.

Each field either carries over (a subset becomes the version whose pods it selects) or is
refused at the field it was read from: subset traffic policies, `exportTo` and
`workloadSelector` have no place in a release, whose DestinationRule is rendered from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshcanary.importer.context import Context, drop_key, what
from meshcanary.importer.objects import name_only_metadata
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import Subset, destination, labels, pod_labels

# DestinationRule fields a release cannot say, and why.
_REFUSED_RULE_FIELDS = {
    "exportTo": "exportTo limits the namespaces that see the DestinationRule; the rendered one "
    "is seen by every namespace",
    "workloadSelector": "workloadSelector limits the workloads the DestinationRule applies "
    "to; the rendered one applies to every client",
}
_DESTINATION_FIELDS = ("host", "subset", "port")


@dataclass(frozen=True)
class Subsets:
    """The service's DestinationRule, if any, and the version each of its subsets selects."""

    rule: Resource | None = None
    versions: dict[str, str] = field(default_factory=dict)  # subset name → version


def read(ctx: Context, rules: list[Resource], versions: list[Version]) -> Subsets:
    """The subsets of the first DestinationRule for the Service; a refusal for every other one.

    DestinationRules for other hosts are not this service's: they are left to the import of
    the service they name."""
    ours = [r for r in rules if ctx.refers_to_service(r.get("spec", "host"), r)]
    for resource in ours[1:]:
        ctx.refuse(
            resource,
            [],
            f"{what(resource)} is a second DestinationRule for {ctx.service_name} (the first is "
            f"at {ours[0].location()}); a release renders one",
            "merge them into one DestinationRule, or pass "
            f"--drop '{resource.kind}/{resource.name}'",
        )
    if not ours:
        return Subsets()
    rule = ours[0]
    name_only_metadata(ctx, rule)
    spec = rule.get("spec")
    for key in spec if isinstance(spec, dict) else {}:
        if key in ("host", "trafficPolicy", "subsets"):
            continue
        ctx.refuse(
            rule,
            ["spec", key],
            _REFUSED_RULE_FIELDS.get(key, f"DestinationRule field {key} has no place in a release"),
            key=True,
        )
    entries = rule.get("spec", "subsets")
    if entries is not None and not isinstance(entries, list):
        ctx.refuse(rule, ["spec", "subsets"], "subsets is not a list")
        return Subsets(rule)
    mapping: dict[str, str] = {}
    for index, entry in enumerate(entries or []):
        subset = _subset(ctx, rule, index, entry)
        if subset is None:
            continue
        version = _version(ctx, subset, versions)
        if version is not None:
            mapping[subset.name] = version
    return Subsets(rule, mapping)


def _subset(ctx: Context, rule: Resource, index: int, entry: Any) -> Subset | None:
    """One entry of `spec.subsets`, or None with a refusal when it is not a named subset."""
    path: list[str | int] = ["spec", "subsets", index]
    if not isinstance(entry, dict):
        ctx.refuse(rule, path, f"subset {index} is not a mapping")
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        ctx.refuse(rule, path, f"subset {index} has no name, so no route can reach it")
        return None
    found = labels(entry.get("labels"))
    if found is None or not found:
        ctx.refuse(
            rule,
            [*path, "labels"] if "labels" in entry else path,
            f"subset {name} has no labels of strings, so it selects no version",
        )
        return None
    for key in entry:
        if key == "trafficPolicy":
            ctx.refuse(
                rule,
                [*path, key],
                f"subset {name} has a traffic policy of its own; a release's trafficPolicy "
                "applies to every version alike",
                key=True,
            )
        elif key not in ("name", "labels"):
            ctx.refuse(
                rule, [*path, key], f"subset field {key} has no place in a release", key=True
            )
    return Subset(rule, index, name, found)


def _version(ctx: Context, subset: Subset, versions: list[Version]) -> str | None:
    """The one version a subset selects, or None with a refusal."""
    rule, name, path = subset.rule, subset.name, subset.path
    selected = [v for v in versions if subset.labels.items() <= pod_labels(v.resource).items()]
    if len(selected) != 1:
        which = ", ".join(v.name for v in selected) or "none of the imported versions"
        ctx.refuse(
            rule,
            path,
            f"subset {name} selects {which}; a release's subset is exactly one version",
        )
        return None
    version = selected[0].name
    if name != version:
        ctx.normalize(
            rule,
            [*path, "name"],
            f"subset {name} is rendered as subset {version}, after the version label of the "
            "pods it selects (the routes to it are rendered to the new name)",
        )
    return version


# What `Destinations.version` returns for a destination that reaches every version by replicas.
SPREAD = "*"


class Destinations:
    """The version each destination (or mirror) of the service's VirtualService sends to.

    `service_ports` are the Service's port numbers: a destination's port that is the only one
    needs no saying, which routes.py decides."""

    def __init__(
        self,
        ctx: Context,
        found: Subsets,
        versions: list[Version],
        service_ports: tuple[int, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.subsets = found
        self.versions = [v.name for v in versions]
        self.replicas = {v.name: v.replicas for v in versions}
        self.service_ports = service_ports
        self.read_as_label: set[str] = set()  # subsets said to be version labels already

    def version(self, resource: Resource, path: JsonPath, target: Any) -> str | None:
        """The version `target` (a `destination` or `mirror` at `path`) sends to, or None with
        a refusal."""
        ctx = self.ctx
        where = list(path)
        if not isinstance(target, dict):
            ctx.refuse(resource, where, "the destination is not a mapping with a host")
            return None
        for key in target:
            if key not in _DESTINATION_FIELDS:
                ctx.refuse(
                    resource, [*where, key], f"destination field {key} has no place", key=True
                )
        found = destination(resource, where, target, ctx.namespace(resource))
        if found is None or found.host != ctx.service_host(resource):
            shown = target.get("host")
            ctx.refuse(
                resource,
                [*where, "host"] if "host" in target else where,
                f"destination {shown!r} is not Service {ctx.service_name}; a release routes "
                "to its own versions only",
            )
            return None
        if found.subset is None:
            return self._without_subset(resource, where, target)
        subset = found.subset
        version = self.subsets.versions.get(subset)
        if version is None and self.subsets.rule is None and subset in self.versions:
            version = subset  # no DestinationRule: read the subset name as the version label
            if subset not in self.read_as_label:
                self.read_as_label.add(subset)
                ctx.normalize(
                    resource,
                    found.subset_path,
                    f"no DestinationRule for {ctx.service_name} among the manifests: subset "
                    f"{subset} is read as the pods labelled version={subset}, which the "
                    "rendered DestinationRule defines",
                )
        if version is None:
            ctx.refuse(
                resource,
                found.subset_path,
                f"subset {subset} is not an imported version ({', '.join(self.versions)})",
            )
        return version

    def _without_subset(self, resource: Resource, where: JsonPath, target: Any) -> str | None:
        """A destination without a subset reaches every pod of the Service: one version when
        there is one, else a spread by replicas no release can say."""
        if "subset" in target and target["subset"] not in (None, ""):
            self.ctx.refuse(resource, [*where, "subset"], "subset is not a name")
            return None
        if len(self.versions) == 1:
            (only,) = self.versions
            self.ctx.normalize(
                resource,
                list(where),
                f"destination without a subset reaches every pod of Service "
                f"{self.ctx.service_name}, all of version {only}: rendered as subset {only}",
            )
            return only
        shown = ", ".join(f"{name} {count}" for name, count in self.replicas.items())
        if sum(self.replicas.values()) <= 0:
            self.ctx.refuse(
                resource,
                list(where),
                f"destination without a subset spreads requests over the pods of every "
                f"version, and no version has a pod ({shown})",
                f"name the subset to send to, or pass --drop '{drop_key(resource, where)}'",
            )
            return None
        self.ctx.normalize(
            resource,
            list(where),
            "destination without a subset spreads requests over the pods of every version, "
            f"by their replicas ({shown}): written as weights in the same shares, which "
            "stay as written when the replica counts change",
            "check the weights in the release file",
        )
        return SPREAD
