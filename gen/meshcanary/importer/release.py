"""The release file: the service's VirtualService (hosts, gateways, routes), its
DestinationRule's traffic policy and the versions, checked against the release schema."""

from __future__ import annotations

import copy
import re
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer import routes
from meshcanary.importer.context import Context, refused, what
from meshcanary.importer.gateways import Gateways, references
from meshcanary.importer.objects import istio_metadata
from meshcanary.importer.subsets import Destinations, Subsets
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import destinations, items
from meshcanary.names import LABEL
from meshcanary.problem import Problem
from meshcanary.release import schema

_HOST = re.compile(rf"(\*\.)?{LABEL}(\.{LABEL})*")


def build(
    ctx: Context,
    virtual_services: list[Resource],
    versions: list[Version],
    subsets: Subsets,
    gateways: Gateways,
) -> dict[str, Any]:
    """The release file's content; raises InputError when the schema refuses a value read."""
    by_name = {v.name: v for v in versions}
    ours = [r for r in virtual_services if _routes_to_service(ctx, r)]
    for resource in virtual_services:
        if resource not in ours:
            ctx.note(
                resource,
                ["spec"],
                f"{what(resource)} is not imported: it does not route to Service "
                f"{ctx.service_name}",
            )
    for resource in ours[1:]:
        ctx.note(
            resource,
            [],
            f"{what(resource)} is not imported: only the first VirtualService for "
            f"{ctx.service_name} is (at {ours[0].location()})",
            "merge their hosts, gateways and routes into one VirtualService",
        )
    release: dict[str, Any] = {"service": ctx.service, "base": ctx.base}
    found = routes.Routes()
    if ours:
        found = _virtual_service(
            ctx, ours[0], release, Destinations(ctx, subsets, versions), gateways
        )
    rule = subsets.rule
    if rule is not None and rule.get("spec", "trafficPolicy") is not None:
        release["trafficPolicy"] = copy.deepcopy(rule.get("spec", "trafficPolicy"))
        ctx.origins.add(("trafficPolicy",), rule.location(["spec", "trafficPolicy"]))
    release.update(found.extras)
    weights = found.weights or routes.weights_from_replicas(ctx, versions, bool(ours))
    ordered = [*found.order, *sorted((v for v in by_name if v not in found.order), key=_natural)]
    release["versions"] = {
        name: {
            "image": by_name[name].image,
            "replicas": by_name[name].replicas,
            "weight": weights.get(name, 0),
        }
        for name in ordered
    }
    problems = [
        Problem(ctx.origins.at(list(error.absolute_path)), refused(error))
        for error in schema.validator("release").iter_errors(release)
    ]
    if problems:
        raise InputError(problems)
    return release


def _virtual_service(
    ctx: Context,
    service: Resource,
    release: dict[str, Any],
    targets: Destinations,
    gateways: Gateways,
) -> routes.Routes:
    """The VirtualService's hosts and gateways into `release`; its routes, read."""
    istio_metadata(ctx, service)
    hosts, host_paths = _hosts(ctx, service)
    if hosts:
        release["hosts"] = hosts
        for index, path in enumerate(host_paths):
            ctx.origins.add(("hosts", index), service.location(path))
    names, name_paths = references(ctx, service, gateways)
    if names:
        release["gateways"] = names
        for index, path in enumerate(name_paths):
            ctx.origins.add(("gateways", index), service.location(path))
    return routes.read(ctx, service, targets)


def _natural(name: str) -> list[tuple[int, int | str]]:
    """Sort key that puts v2 before v10."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def _routes_to_service(ctx: Context, resource: Resource) -> bool:
    """Whether a VirtualService sends to the Service or is for its host."""
    if not isinstance(resource.get("spec"), dict):
        return False
    host = ctx.service_host(resource)
    if any(d.host == host for d in destinations(resource, ctx.namespace(resource))):
        return True
    return any(ctx.refers_to_service(h, resource) for _, h in items(resource, "spec", "hosts"))


def _hosts(ctx: Context, resource: Resource) -> tuple[list[str], list[JsonPath]]:
    """The hosts a release can name, once each, and where each was read."""
    hosts: list[str] = []
    paths: list[JsonPath] = []
    namespace = ctx.namespace(resource)
    for path, host in items(resource, "spec", "hosts"):
        if not isinstance(host, str) or not _HOST.fullmatch(host) or len(host) > 253:
            ctx.note(
                resource,
                path,
                f"host {host!r} is not imported: a release's hosts are DNS names, "
                "optionally starting with *.",
                "list the hosts clients use; `*` would capture every host",
            )
            continue
        if host in hosts:
            continue
        if namespace != ctx.target_namespace and host.startswith(
            f"{ctx.service_name}.{namespace}."
        ):
            ctx.note(
                resource,
                path,
                f"host {host} names namespace {namespace}, but the environment deploys to "
                f"{ctx.target_namespace}",
                f"use {ctx.service_name}.{ctx.target_namespace}.svc.cluster.local",
            )
        hosts.append(host)
        paths.append(path)
    return hosts, paths
