"""A VirtualService's HTTP routes → the release's weights, header pins, mirror, timeout and
retries.

A release has one weighted route: the first one without a match (else the first weighted one)
gives the weights; a route with header matches and one destination becomes a pin (`match:`);
what else the routes say is reported where it was read.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from meshcanary.importer.context import Context
from meshcanary.importer.subsets import Destinations
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.mesh import items
from meshcanary.names import is_dns_label
from meshcanary.problem import Severity

_HEADER = re.compile(r"[a-z0-9][-a-z0-9_.]*")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?(ms|s|m|h)")
# Route fields the release file has a place for; any other one is reported.
_ROUTE_FIELDS = {"name", "match", "route", "timeout", "retries", "mirror", "mirrorPercentage"}
_RETRY_FIELDS = ("attempts", "perTryTimeout", "retryOn")
_RELEASE_KEYS = ("timeout", "retries", "match", "mirror")  # their order in the release file


@dataclass
class Routes:
    """What the release takes from the routes, and the versions in the order they named them."""

    weights: dict[str, int] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # timeout, retries, match, mirror
    order: list[str] = field(default_factory=list)


@dataclass
class _Weighted:
    """One HTTP route that splits requests by weight, read into versions."""

    index: int
    data: dict[str, Any]
    weights: dict[str, int]  # version → weight, in the route's order
    conditional: bool  # has a match the release cannot express as a header pin


@dataclass
class _Http:
    """The HTTP routes that reach the service's versions, sorted by what they become."""

    weighted: list[_Weighted] = field(default_factory=list)
    pins: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (index, route)
    matches: list[dict[str, Any]] = field(default_factory=list)  # the pins' match rules


def read(ctx: Context, resource: Resource, destinations: Destinations) -> Routes:
    """Weights, match rules, mirror, timeout and retries from the VirtualService's routes."""
    _note_other_fields(ctx, resource)
    http = _read_http(ctx, resource, destinations)
    found = Routes()
    chosen = next((r for r in http.weighted if not r.conditional), None) or (
        http.weighted[0] if http.weighted else None
    )
    if chosen is not None:
        _take_weighted(ctx, resource, chosen, http.weighted, destinations, found)
    for index, route in http.pins:
        if route.get("mirror") or route.get("mirrorPercentage"):
            ctx.note(
                resource,
                ["spec", "http", index, "mirror"],
                "mirroring on a header-matched route is not imported: the release "
                "mirrors the weighted route only",
                key=True,
            )
    used = [*http.pins, *([(chosen.index, chosen.data)] if chosen else [])]
    _take_agreed(ctx, resource, used, found)
    if http.matches:
        found.extras["match"] = http.matches
        ctx.origins.add(("match",), resource.location(["spec", "http", http.pins[0][0]]))
        for rule in http.matches:
            if rule["version"] not in found.order:
                found.order.append(rule["version"])
    if "mirror" in found.extras and found.extras["mirror"]["version"] not in found.order:
        found.order.append(found.extras["mirror"]["version"])
    found.extras = {k: found.extras[k] for k in sorted(found.extras, key=_release_key)}
    return found


def _release_key(key: str) -> int:
    return _RELEASE_KEYS.index(key) if key in _RELEASE_KEYS else len(_RELEASE_KEYS)


def _note_other_fields(ctx: Context, resource: Resource) -> None:
    for key in resource.get("spec") or {}:
        if key not in ("hosts", "gateways", "http"):
            ctx.note(
                resource,
                ["spec", key],
                f"VirtualService field {key} is not imported: a release renders HTTP routes",
                key=True,
            )


def _read_http(ctx: Context, resource: Resource, destinations: Destinations) -> _Http:
    """Each HTTP route up to the first that matches every request, read into versions."""
    found = _Http()
    catch_all: int | None = None
    for index, (path, route) in enumerate(items(resource, "spec", "http")):
        if not isinstance(route, dict):
            continue
        if catch_all is not None:
            ctx.note(
                resource,
                path,
                f"route {index} is never used: route {catch_all} before it has no match and "
                "takes every request; not imported",
            )
            continue
        conditions = route.get("match") or []
        if not conditions:
            catch_all = index
        _read_route(ctx, resource, index, route, conditions, destinations, found)
    return found


def _read_route(
    ctx: Context,
    resource: Resource,
    index: int,
    route: dict[str, Any],
    conditions: Any,
    destinations: Destinations,
    found: _Http,
) -> None:
    """One HTTP route: a pin when it sends header matches to one version, else weighted."""
    path: list[str | int] = ["spec", "http", index]
    for key in route:
        if key not in _ROUTE_FIELDS:
            ctx.note(
                resource,
                [*path, key],
                f"route field {key} is not imported: the release has no place for it",
                key=True,
            )
    entries = route.get("route")
    entries = entries if isinstance(entries, list) else []
    if not entries:
        ctx.note(resource, path, f"route {index} sends to no destination; not imported")
        return
    targets = _targets(ctx, resource, path, entries, destinations)
    if not targets:
        return
    if conditions and len(entries) == 1:
        rules = _pin(ctx, resource, path, route, conditions, next(iter(targets)))
        if rules:
            found.pins.append((index, route))
            found.matches.extend(rules)
        return
    found.weighted.append(_Weighted(index, route, targets, bool(conditions)))


def _targets(
    ctx: Context,
    resource: Resource,
    path: JsonPath,
    entries: list[Any],
    destinations: Destinations,
) -> dict[str, int]:
    """Version → weight of a route's destinations that reach a version."""
    targets: dict[str, int] = {}
    for number, entry in enumerate(entries):
        entry = entry if isinstance(entry, dict) else {}
        where: list[str | int] = [*path, "route", number]
        for key in entry:
            if key not in ("destination", "weight"):
                ctx.note(
                    resource, [*where, key], f"destination field {key} is not imported", key=True
                )
        version = destinations.version(resource, [*where, "destination"], entry.get("destination"))
        weight = entry.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool):
            weight = 100 if len(entries) == 1 else 0
        if version is not None:
            targets[version] = targets.get(version, 0) + weight
    return targets


def _take_weighted(
    ctx: Context,
    resource: Resource,
    chosen: _Weighted,
    weighted: list[_Weighted],
    destinations: Destinations,
    found: Routes,
) -> None:
    """The chosen route's weights and mirror; a note for each weighted route left out."""
    path: list[str | int] = ["spec", "http", chosen.index]
    if chosen.conditional:
        ctx.note(
            resource,
            [*path, "match"],
            f"no route takes the requests that match nothing; route {chosen.index}'s "
            "weights are used for all of them, without its match conditions",
        )
    for other in weighted:
        if other is chosen:
            continue
        same = other.weights == chosen.weights
        ctx.note(
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
    found.order = list(chosen.weights)
    found.weights = _hundred(ctx, resource, path, chosen.weights)
    for version in found.weights:
        ctx.origins.add(("versions", version, "weight"), resource.location([*path, "route"]))
    mirror = _mirror(ctx, resource, path, chosen.data, destinations)
    if mirror is not None:
        found.extras["mirror"] = mirror
        ctx.origins.add(("mirror",), resource.location([*path, "mirror"]))
    if chosen.data.get("name") not in (None, "weighted"):
        ctx.note(
            resource,
            [*path, "name"],
            f"route name {chosen.data['name']} is not imported: the weighted route is "
            "rendered as weighted",
            severity=Severity.INFO,
        )


def _pin(
    ctx: Context,
    resource: Resource,
    path: list[str | int],
    route: dict[str, Any],
    conditions: Any,
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
            ctx.note(
                resource,
                [*where, other[0]] if other else where,
                f"route {path[-1]} sends requests matching {shown} to {version}: a release "
                "pins requests by headers only, so this match is not imported and those "
                "requests follow the weights",
                key=bool(other),
            )
            continue
        headers = _headers(ctx, resource, where, condition["headers"], version)
        if not headers:
            continue
        rule: dict[str, Any] = {}
        name = route.get("name")
        if isinstance(name, str) and is_dns_label(name):
            rule["name"] = name if number == 0 else f"{name}-{number}"
        elif name is not None:
            ctx.note(
                resource,
                [*path, "name"],
                f"route name {name!r} is not a DNS-1123 label; the rendered route gets a "
                "name of its own",
                severity=Severity.INFO,
            )
        if "name" in condition:
            ctx.note(
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


def _headers(
    ctx: Context, resource: Resource, where: JsonPath, headers: Any, version: str
) -> dict[str, Any]:
    """A match condition's headers as a release writes them; none, with a note, when one of
    them cannot be written."""
    found: dict[str, Any] = {}
    for header, value in headers.items():
        kinds = value if isinstance(value, dict) else {}
        if (
            not isinstance(header, str)
            or not _HEADER.fullmatch(header.lower())
            or len(kinds) != 1
            or next(iter(kinds)) not in ("exact", "prefix", "regex")
        ):
            ctx.note(
                resource,
                [*where, "headers", str(header)],
                f"header condition {header!r} is not one a release can express "
                "(a header name and one of exact, prefix or regex); this match is not "
                f"imported, so those requests follow the weights instead of going to {version}",
                key=True,
            )
            return {}
        found[header.lower()] = copy.deepcopy(kinds)
    return found


def _mirror(
    ctx: Context,
    resource: Resource,
    path: list[str | int],
    route: dict[str, Any],
    destinations: Destinations,
) -> dict[str, Any] | None:
    target = route.get("mirror")
    percentage: Any = route.get("mirrorPercentage")
    if target is None:
        return None
    version = destinations.version(resource, [*path, "mirror"], target)
    if version is None:
        return None
    if percentage is None:
        percent: float = 100  # Istio mirrors every request when no share is given
    elif isinstance(percentage, dict) and isinstance(percentage.get("value"), int | float):
        percent = percentage["value"]
    else:
        ctx.note(
            resource,
            [*path, "mirrorPercentage"],
            "mirrorPercentage is not {value: <number>}; mirroring is not imported",
        )
        return None
    if not 0 < percent <= 100:
        ctx.note(
            resource,
            [*path, "mirrorPercentage"],
            f"mirroring {percent}% of requests copies nothing; not imported",
            severity=Severity.INFO,
        )
        return None
    whole = int(percent) if float(percent).is_integer() else percent
    return {"version": version, "percent": whole}


def _take_agreed(
    ctx: Context, resource: Resource, used: list[tuple[int, dict[str, Any]]], found: Routes
) -> None:
    """The timeout and retries of the routes the release is made of, when they agree."""
    routes = [route for _, route in used]
    indexes = [index for index, _ in used]
    for key in ("timeout", "retries"):
        value = _agreed(ctx, resource, key, routes, indexes)
        if value is not None:
            found.extras[key] = value
            where: list[str | int] = ["spec", "http", indexes[0], key]
            ctx.origins.add((key,), resource.location(where))


def _agreed(
    ctx: Context, resource: Resource, key: str, routes: list[dict[str, Any]], indexes: list[int]
) -> Any:
    """The routes' shared timeout or retries; a note when they differ or cannot be written."""
    if not routes:
        return None
    values = [r.get(key) for r in routes]
    first = values[0]
    for value, index in zip(values[1:], indexes[1:], strict=True):
        if value != first:
            ctx.note(
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
        return _timeout(ctx, resource, where, first)
    return _retries(ctx, resource, where, first)


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value)


def _timeout(ctx: Context, resource: Resource, where: JsonPath, timeout: Any) -> str | None:
    if isinstance(timeout, str) and _DURATION.fullmatch(timeout):
        return timeout
    ctx.note(resource, where, f"timeout {timeout!r} is not a duration such as 5s; not imported")
    return None


def _retries(
    ctx: Context, resource: Resource, where: JsonPath, given: Any
) -> dict[str, Any] | None:
    if not isinstance(given, dict) or not isinstance(given.get("attempts"), int):
        ctx.note(resource, where, "retries without a number of attempts; not imported")
        return None
    retries = {k: given[k] for k in _RETRY_FIELDS if k in given}
    for name in given:
        if name not in _RETRY_FIELDS:
            ctx.note(resource, [*where, name], f"retries field {name} is not imported", key=True)
    timeout = retries.get("perTryTimeout")
    if timeout is not None and not (isinstance(timeout, str) and _DURATION.fullmatch(timeout)):
        ctx.note(
            resource,
            [*where, "perTryTimeout"],
            f"perTryTimeout {timeout!r} is not a duration such as 2s; not imported",
        )
        retries.pop("perTryTimeout")
    return retries


def _hundred(
    ctx: Context, resource: Resource, path: JsonPath, weights: dict[str, int]
) -> dict[str, int]:
    """The route's weights, scaled to sum to 100 (with a note) when they do not."""
    total = sum(weights.values())
    if total == 100:
        return dict(weights)
    shown = " + ".join(f"{v} {w}" for v, w in weights.items())
    if total <= 0:
        first = next(iter(weights))
        ctx.note(
            resource,
            [*path, "route"],
            f"the imported weights sum to 0 ({shown}); {first} is given 100",
            "set the weights you mean in the release file",
        )
        return {name: 100 if name == first else 0 for name in weights}
    scaled = apportion({k: float(v) for k, v in weights.items()})
    result = " + ".join(f"{v} {w}" for v, w in scaled.items())
    ctx.note(
        resource,
        [*path, "route"],
        f"the imported weights sum to {total} ({shown}), not 100; written as {result}, the "
        "same shares in percent",
        "meshcanary's weights are percentages; check the release file's weights",
    )
    return scaled


def apportion(shares: dict[str, float], total: int = 100) -> dict[str, int]:
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


def weights_from_replicas(ctx: Context, versions: list[Version], routed: bool) -> dict[str, int]:
    """Without a weighted route the Service spreads requests over every pod."""
    shares = {v.name: float(v.replicas) for v in versions}
    weights = apportion(shares) if sum(shares.values()) > 0 else {}
    if not weights:
        weights = {v.name: 100 if i == 0 else 0 for i, v in enumerate(versions)}
    first = versions[0].resource
    shown = ", ".join(f"{name} {w}" for name, w in weights.items())
    ctx.note(
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
