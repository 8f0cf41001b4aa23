"""The versions' Services of the Gateway API shape: a Service that selects one version's pods,
beside the Service that selects them all (the base's), is that version's Service, which the
renderer makes of the base's Service per version; and the DestinationRules of those Services,
whose one trafficPolicy is the release's.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshcanary.importer.context import Context, what
from meshcanary.importer.objects import (
    name_only_metadata,
    note_server_fields,
    stripped,
)
from meshcanary.importer.versions import Version
from meshcanary.manifest import Resource
from meshcanary.mesh import labels, pod_labels, resolve_host


@dataclass(frozen=True)
class VersionService:
    """A Service that selects one version's pods."""

    resource: Resource
    version: str


def version_services(
    services: list[Resource], deployments: list[Resource]
) -> dict[int, VersionService]:
    """The Services (by id) that select the pods of one version only, beside a Service whose
    selector is a part of theirs (the base's, which selects every version)."""
    found: dict[int, VersionService] = {}
    for service in services:
        selector = labels(service.get("spec", "selector")) or {}
        if not selector:
            continue
        pods = [p for d in deployments if selector.items() <= (p := pod_labels(d)).items()]
        names = {p.get("version") for p in pods}
        if len(names) != 1 or None in names:
            continue
        version = names.pop()
        assert version is not None  # noqa: S101 - None was ruled out above
        for other in services:
            theirs = labels(other.get("spec", "selector")) or {}
            if other is not service and theirs and theirs.items() < selector.items():
                found[id(service)] = VersionService(service, version)
                break
    return found


def take_version_services(
    ctx: Context,
    base: Resource,
    candidates: list[VersionService],
    versions: list[Version],
    claimed: set[int],
) -> tuple[dict[str, str], dict[str, str]]:
    """This service's versions' Services: name → version, and input name → rendered name."""
    selector = labels(base.get("spec", "selector")) or {}
    selector.pop("version", None)
    known = {v.name for v in versions}
    mine: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for candidate in candidates:
        resource = candidate.resource
        theirs = labels(resource.get("spec", "selector")) or {}
        if id(resource) in claimed or not selector or not selector.items() <= theirs.items():
            continue
        claimed.add(id(resource))
        if candidate.version not in known:
            ctx.refuse(
                resource,
                ["spec", "selector"],
                f"{what(resource)} selects version {candidate.version}, which no imported "
                "Deployment runs",
            )
            continue
        if candidate.version in mine.values():
            ctx.refuse(
                resource,
                ["spec", "selector"],
                f"{what(resource)} is a second Service of version {candidate.version}: the "
                "renderer makes one per version",
            )
            continue
        mine[resource.name] = candidate.version
        rendered = f"{base.name}-{candidate.version}"
        if resource.name != rendered:
            renamed[resource.name] = rendered
        _like_base(ctx, base, resource, candidate.version)
    return mine, renamed


def _like_base(ctx: Context, base: Resource, resource: Resource, version: str) -> None:
    """A version's Service is rendered from the base's: a note for each field it differs in."""
    note_server_fields(ctx.notes, resource)
    rendered = stripped(base.data)
    given = stripped(resource.data)
    spec = rendered.get("spec") if isinstance(rendered.get("spec"), dict) else {}
    assert isinstance(spec, dict)  # noqa: S101 - set just above
    spec["selector"] = {**(labels(spec.get("selector")) or {}), "version": version}
    name = f"{base.name}-{version}"
    if resource.name != name:
        ctx.normalize(
            resource,
            ["metadata", "name"],
            f"{what(resource)} is rendered as Service {name}: the base's Service, per version",
        )
    for key in ("apiVersion", "kind"):
        if given.get(key) != rendered.get(key):
            ctx.refuse(
                resource,
                [key],
                f"{what(resource)} is of {key} {given.get(key)}, Service {base.name} of "
                f"{rendered.get(key)}: the renderer makes each version's Service from the base's",
            )
    mine, theirs = given.get("metadata") or {}, rendered.get("metadata") or {}
    for key in sorted(set(mine) | set(theirs)):
        if key in ("name", "namespace"):
            continue
        if key == "labels":
            wanted = {**(theirs.get(key) or {}), "version": version}
            own = dict(mine.get(key) or {})
            own.setdefault("version", version)  # the version folder labels what it renders
            if wanted == own:
                continue
        elif mine.get(key) == theirs.get(key):
            continue
        ctx.normalize(
            resource,
            ["metadata", key] if key in mine else ["metadata"],
            f"{what(resource)}: metadata.{key} is rendered as Service {base.name}'s, with the "
            "version label added",
            "a version's Service is the base's, per version: change the base's to change it",
            key=key in mine,
        )
    spec_given = given.get("spec") if isinstance(given.get("spec"), dict) else {}
    assert isinstance(spec_given, dict)  # noqa: S101 - set just above
    for key in sorted(set(spec) | set(spec_given)):
        if spec.get(key) != spec_given.get(key):
            ctx.refuse(
                resource,
                ["spec", key] if key in spec_given else ["spec"],
                f"{what(resource)} differs from Service {base.name} at spec.{key} beyond its "
                "version: the renderer makes each version's Service from the base's",
                "make the versions' Services the base's Service with a version selector",
                key=key in spec_given,
            )


def version_host(ctx: Context, rule: Resource, services: dict[str, str]) -> bool:
    """Whether a DestinationRule is for one of the versions' Services."""
    host = rule.get("spec", "host")
    namespace = ctx.namespace(rule)
    return isinstance(host, str) and any(
        resolve_host(host, namespace) == resolve_host(name, namespace) for name in services
    )


def traffic_policy(
    ctx: Context, rules: list[Resource], services: dict[str, str]
) -> Resource | None:
    """The DestinationRule whose trafficPolicy the release takes: the renderer writes one per
    version's Service, each with the release's trafficPolicy, so the input's must be alike."""
    if not rules:
        return None
    first = rules[0]
    covered: set[str] = set()
    for rule in rules:
        name_only_metadata(ctx, rule, renamed=False)  # named after its Service, below
        spec = rule.get("spec")
        for key in spec if isinstance(spec, dict) else {}:
            if key not in ("host", "trafficPolicy"):
                ctx.refuse(
                    rule,
                    ["spec", key],
                    f"DestinationRule field {key}: the renderer writes a version's Service's "
                    "DestinationRule with the release's trafficPolicy only",
                    key=True,
                )
        host = str(rule.get("spec", "host"))
        namespace = ctx.namespace(rule)
        hosts = [
            name
            for name in services
            if resolve_host(host, namespace) == resolve_host(name, namespace)
        ]
        covered |= {services[name] for name in hosts}
        rendered = f"{ctx.service_name}-{services[hosts[0]]}" if hosts else None
        if rendered is not None and rule.name != rendered:
            ctx.normalize(
                rule,
                ["metadata", "name"],
                f"{what(rule)} is rendered as DestinationRule {rendered}, named after its "
                "version's Service",
            )
        if rule is not first and rule.get("spec", "trafficPolicy") != first.get(
            "spec", "trafficPolicy"
        ):
            ctx.refuse(
                rule,
                ["spec", "trafficPolicy"],
                f"{what(rule)}'s trafficPolicy differs from {what(first)}'s: a release has one "
                "trafficPolicy, for every version's Service",
            )
    missing = sorted(set(services.values()) - covered)
    if missing:
        ctx.refuse(
            first,
            ["spec", "trafficPolicy"],
            f"no DestinationRule for the Service of version {', '.join(missing)}: a release's "
            "trafficPolicy applies to every version's Service",
        )
    return first
