"""The release file: the service's VirtualService (hosts, gateways, routes), its
DestinationRule's traffic policy and the versions, checked against the release schema."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from meshcanary.errors import InputError
from meshcanary.importer import routes
from meshcanary.importer.context import REFUSED, Context, refused, what
from meshcanary.importer.gateway_api import Routing
from meshcanary.importer.gateways import Gateways, references
from meshcanary.importer.objects import name_only_metadata
from meshcanary.importer.subsets import Destinations, Subsets
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import destinations, items
from meshcanary.names import LABEL
from meshcanary.problem import Location, Problem
from meshcanary.release import schema

_HOST = re.compile(rf"\*|(\*\.)?{LABEL}(\.{LABEL})*")


@dataclass(frozen=True)
class Order:
    """The release's versions, stable first and canary last, and why in that order."""

    names: tuple[str, ...]
    reason: str


def build(
    ctx: Context,
    virtual_services: list[Resource],
    versions: list[Version],
    subsets: Subsets,
    gateways: Gateways,
    canary: str | None = None,
    service_ports: tuple[int, ...] = (),
    service_resource: Resource | None = None,
    gateway_api: Routing | None = None,
) -> tuple[dict[str, Any], Order]:
    """The release file's content and its versions' order; raises InputError when the schema
    refuses a value read."""
    by_name = {v.name: v for v in versions}
    ours = virtual_services
    for resource in ours[1:]:
        ctx.refuse(
            resource,
            [],
            f"{what(resource)} routes to Service {ctx.service_name} too, and a release renders "
            f"one VirtualService (the first, at {ours[0].location()})",
            "merge their hosts, gateways and routes into one VirtualService",
        )
    release: dict[str, Any] = {"service": ctx.service, "base": ctx.base}
    found = routes.Routes()
    if gateway_api is not None:
        found = gateway_api.found
        if gateway_api.on_release:
            release["routing"] = "gateway-api"
        for key in ("hosts", "gateways"):
            if getattr(gateway_api, key):
                release[key] = getattr(gateway_api, key)
    elif ours:
        found = _virtual_service(
            ctx,
            ours[0],
            release,
            Destinations(ctx, subsets, versions, service_ports),
            gateways,
        )
    rule = subsets.rule
    if rule is not None and rule.get("spec", "trafficPolicy") is not None:
        release["trafficPolicy"] = copy.deepcopy(rule.get("spec", "trafficPolicy"))
        ctx.origins.add(("trafficPolicy",), rule.location(["spec", "trafficPolicy"]))
    release.update(found.extras)
    rollout = _rollout(ctx, versions[0])
    if rollout:
        release["rollout"] = rollout
    release = {k: release[k] for k in sorted(release, key=_key_order)}
    weights = found.weights or routes.weights_from_replicas(
        ctx,
        versions,
        bool(ours) or bool(gateway_api and gateway_api.found.extras),
        service_resource,
    )
    order = ordered(ctx, weights, list(by_name), canary)
    release["versions"] = {
        name: {
            "image": by_name[name].image,
            "replicas": by_name[name].replicas,
            "weight": weights.get(name, 0),
        }
        for name in order.names
    }
    problems = [
        Problem(ctx.origins.at(list(error.absolute_path)), refused(error))
        for error in schema.validator("release").iter_errors(release)
    ]
    # A release made of refused values (one its object's schema refused) is not written
    # anyway: those refusals say what is wrong, where, better than the release's schema.
    if problems and not any(n.rule == REFUSED for n in ctx.notes.problems):
        raise InputError(problems)
    return release, order


# The Deployment's values where it names none, as the API server fills them in.
_ROLLOUT_DEFAULTS = {"maxSurge": "25%", "maxUnavailable": "25%", "minReadySeconds": 0}


def _rollout(ctx: Context, stable: Version) -> dict[str, Any]:
    """The stable Deployment's own rollout, for each field the environment's defaults would
    otherwise change in every rendered Deployment."""
    defaults = (ctx.env_data or {}).get("defaults")
    wanted = (defaults.get("rollout") if isinstance(defaults, dict) else None) or {}
    if not isinstance(wanted, dict) or not wanted:
        return {}
    spec = _mapping(stable.resource.get("spec"))
    strategy = _mapping(spec.get("strategy"))
    rolling = _mapping(strategy.get("rollingUpdate"))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" and (
        "maxSurge" in wanted or "maxUnavailable" in wanted
    ):
        ctx.refuse(
            stable.resource,
            ["spec", "strategy", "type"],
            f"strategy {strategy.get('type')!r}: {ctx.env_path} sets rolling-update defaults, "
            "which a release can only override with other rolling-update values",
        )
        return {}
    own = {**rolling, "minReadySeconds": spec.get("minReadySeconds")}
    rollout = {
        key: own[key] if own.get(key) is not None else _ROLLOUT_DEFAULTS[key]
        for key in _ROLLOUT_DEFAULTS
        if key in wanted
    }
    for key in rollout:
        where = (
            ["spec", "minReadySeconds"]
            if key == "minReadySeconds"
            else ["spec", "strategy", "rollingUpdate", key]
        )
        ctx.origins.add(("rollout", key), stable.resource.location(where))
    return rollout


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# The release file's keys in the order a person writes them (the schema's order).
_KEYS = (
    "service",
    "base",
    "routing",
    "hosts",
    "gateways",
    "ports",
    "trafficPolicy",
    "requests",
    "timeout",
    "retries",
    "rewrite",
    "corsPolicy",
    "requestHeaders",
    "responseHeaders",
    "match",
    "mirror",
    "rollout",
)


def _key_order(key: str) -> int:
    return _KEYS.index(key) if key in _KEYS else len(_KEYS)


def ordered(ctx: Context, weights: dict[str, int], names: list[str], canary: str | None) -> Order:
    """Stable first: the version with the most traffic; canary last: the one at 0 (or with
    the least), the newest by name among equals, unless `canary` names it."""
    ranked = sorted(names, key=lambda n: (-weights.get(n, 0), _natural(n)))
    if canary is not None:
        if canary not in names:
            raise InputError(
                [
                    Problem(
                        Location("--canary"),
                        f"{ctx.service} has no version {canary} ({', '.join(ranked)})",
                        "name one of the imported versions",
                    )
                ]
            )
        ranked = [*(n for n in ranked if n != canary), canary]
    stable, last = ranked[0], ranked[-1]
    if len(ranked) == 1:
        reason = f"one version, {stable}"
    elif canary is not None:
        reason = f"stable {stable} ({weights.get(stable, 0)}%), canary {last} as --canary says"
    else:
        ties = [n for n in ranked if weights.get(n, 0) == weights.get(last, 0)]
        why = "the newest by name of those at" if len(ties) > 1 else "the least traffic,"
        reason = (
            f"stable {stable} (the most traffic, {weights.get(stable, 0)}%), canary {last} "
            f"({why} {weights.get(last, 0)}%); --canary {ctx.service}=VERSION chooses another"
        )
    return Order(tuple(ranked), reason)


def _virtual_service(
    ctx: Context,
    service: Resource,
    release: dict[str, Any],
    targets: Destinations,
    gateways: Gateways,
) -> routes.Routes:
    """The VirtualService's hosts and gateways into `release`; its routes, read."""
    name_only_metadata(ctx, service)
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


def routes_to_service(ctx: Context, resource: Resource) -> bool:
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
            ctx.refuse(
                resource,
                path,
                f"host {host!r} cannot be imported: a release's hosts are DNS names, "
                "optionally starting with *., or * alone",
            )
            continue
        if host in hosts:
            ctx.normalize(resource, path, f"host {host} again: listed once")
            continue
        if namespace != ctx.target_namespace and host.startswith(
            f"{ctx.service_name}.{namespace}."
        ):
            ctx.refuse(
                resource,
                path,
                f"host {host} names namespace {namespace}, but the environment deploys to "
                f"{ctx.target_namespace}",
                f"use {ctx.service_name}.{ctx.target_namespace}.svc.cluster.local",
            )
        hosts.append(host)
        paths.append(path)
    return hosts, paths
