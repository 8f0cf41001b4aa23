"""A VirtualService's routes → the release's weights, requests, pins, route options, mirror
and ports.

A release renders its pins (`match:`) first, then one weighted route (serving `requests:`,
else every request), per port it lists. So the routes read become: the last route, or the
routes that split requests between versions (one when their shares and options agree); each
earlier route to one version becomes pins, one per match condition; tcp and tls routes become
`ports:` entries with the same weights. Every field is carried over, carried over in another
form with the same meaning (`ctx.normalize`), or refused where it was read (`ctx.refuse`), and
the import then fails unless `--drop` names it: a dropped field is read as if it were absent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from meshcanary.importer.context import Context, drop_key
from meshcanary.importer.route_fields import OPTIONS, Condition, Path, Route, reached
from meshcanary.importer.subsets import Destinations
from meshcanary.importer.versions import Version
from meshcanary.manifest import JsonPath, Resource
from meshcanary.names import is_dns_label

# The release file's order of the keys `Routes.extras` carries.
RELEASE_KEYS = ("ports", "requests", *OPTIONS, "match", "mirror")


@dataclass
class Routes:
    """What the release takes from the routes, and the versions in the order they named them."""

    weights: dict[str, int] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # release keys, in RELEASE_KEYS order
    order: list[str] = field(default_factory=list)


def read(ctx: Context, resource: Resource, destinations: Destinations) -> Routes:
    """Weights, requests, pins, route options, mirror and ports from the VirtualService."""
    _refuse_other_fields(ctx, resource)
    http = reached(ctx, resource, "http", destinations)
    found = Routes()
    weighted, pins = _roles(ctx, resource, http)
    if weighted:
        _take_weighted(ctx, resource, weighted, found)
        _take_pins(ctx, resource, pins, weighted[0], found)
    layer4 = [
        *reached(ctx, resource, "tcp", destinations),
        *reached(ctx, resource, "tls", destinations),
    ]
    ports = _http_ports(ctx, resource, [*pins, *weighted], destinations, bool(layer4))
    ports += _layer4_ports(
        ctx, resource, layer4, weighted[0] if weighted else None, destinations, found
    )
    _unique_ports(ctx, resource, ports)
    if ports:
        found.extras["ports"] = [entry for entry, _ in ports]
        for number, (_, where) in enumerate(ports):
            ctx.origins.add(("ports", number), resource.location(where))
    found.extras = {k: found.extras[k] for k in RELEASE_KEYS if k in found.extras}
    return found


def _refuse_other_fields(ctx: Context, resource: Resource) -> None:
    spec = resource.get("spec")
    for key in spec if isinstance(spec, dict) else {}:
        if key in ("hosts", "gateways", "http", "tcp", "tls"):
            continue
        ctx.refuse(
            resource,
            ["spec", key],
            "exportTo limits the namespaces that see the routes; the rendered VirtualService "
            "is seen by every namespace"
            if key == "exportTo"
            else f"VirtualService field {key} has no place in a release",
            key=True,
        )


# Which route is which ----------------------------------------------------------------------------


def shares(targets: dict[str, int]) -> dict[str, Fraction]:
    total = sum(targets.values())
    return {v: Fraction(w, total) for v, w in targets.items() if w} if total else {}


def _split(targets: dict[str, int]) -> str:
    return " + ".join(f"{v} {w}" for v, w in targets.items())


def _roles(
    ctx: Context, resource: Resource, routes: list[Route]
) -> tuple[list[Route], list[Route]]:
    """The routes that make the weighted route (the first of them gives its weights and
    options) and the pins, in order; a refusal for each route that can be neither."""
    if not routes:
        return [], []
    splits = [r for r in routes if r.catch_all or len(r.sending) != 1]
    main = routes[-1] if routes[-1].catch_all or not splits else splits[0]
    weighted = [main]
    for other in splits:
        if other is main:
            continue
        differs = _differs(other, main)
        if differs:
            ctx.refuse(
                resource,
                other.path,
                f"{other.label} {differs}: a release has one weighted route",
            )
        else:
            weighted.append(other)
    weighted.sort(key=lambda r: r.index)
    first = weighted[0].index
    pins = []
    for route in routes:
        if route in splits or route is main:
            continue
        if route.index > first:
            ctx.refuse(
                resource,
                route.path,
                f"{route.label} comes after the weighted route {first}: a release checks its "
                f"pins before the weighted route, so requests that match both would go to "
                f"{route.sending[0]} instead of being split",
            )
            continue
        pins.append(route)
    return [main, *(r for r in weighted if r is not main)], pins


def _differs(other: Route, main: Route) -> str:
    """How `other` differs from the weighted route `main` ("" when it does not)."""
    if shares(other.targets) != shares(main.targets):
        return (
            f"splits requests {_split(other.targets)}, the weighted route ({main.label}) "
            f"{_split(main.targets)}"
        )
    for key in (*OPTIONS, "mirror"):
        mine = other.mirror if key == "mirror" else other.options.get(key)
        theirs = main.mirror if key == "mirror" else main.options.get(key)
        if mine != theirs:
            return (
                f"splits requests like {main.label} but with {key} {_shown(mine)} instead "
                f"of {_shown(theirs)}"
            )
    return ""


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value)


def _take_weighted(ctx: Context, resource: Resource, weighted: list[Route], found: Routes) -> None:
    """The weighted route's weights, requests, options and mirror."""
    main = weighted[0]
    for route in weighted:
        name = route.data.get("name")
        if name is not None and name != "weighted":
            ctx.normalize(
                resource,
                [*route.path, "name"],
                f"route name {name!r} only labels the route: the weighted route is rendered "
                "as weighted",
            )
    catch_all = next((r for r in weighted if r.catch_all), None)
    requests: list[tuple[Condition, Route]] = []
    for route in sorted(weighted, key=lambda r: r.index):
        if catch_all is not None and route is not catch_all:
            ctx.normalize(
                resource,
                [*route.path, "match"],
                f"{route.label} splits requests like {catch_all.label}, which takes every "
                "other request: its conditions are not needed",
            )
        elif catch_all is None:
            requests.extend((c, route) for c in route.conditions)
    unique = _distinct([c for c, _ in requests])
    if unique and all(c.fields for c in unique):  # a port alone: every request on the ports
        found.extras["requests"] = [c.fields for c in unique]
        for number, condition in enumerate(unique):
            ctx.origins.add(("requests", number), resource.location(condition.path))
    _take_weights(ctx, resource, main, found)
    for key, value in main.options.items():
        found.extras[key] = value
        ctx.origins.add((key,), resource.location([*main.path, _source_key(key)]))
    if main.mirror is not None:
        found.extras["mirror"] = main.mirror
        ctx.origins.add(("mirror",), resource.location([*main.path, "mirror"]))
        if main.mirror["version"] not in found.order:
            found.order.append(main.mirror["version"])


def _source_key(key: str) -> str:
    return "headers" if key.endswith("Headers") else key


def _distinct(conditions: list[Condition]) -> list[Condition]:
    """One condition per set of fields: conditions that differ only by port are one once the
    ports are listed under `ports:`."""
    seen: list[dict[str, Any]] = []
    unique = []
    for condition in conditions:
        if condition.fields not in seen:
            seen.append(condition.fields)
            unique.append(condition)
    return unique


def _take_pins(
    ctx: Context, resource: Resource, pins: list[Route], main: Route, found: Routes
) -> None:
    """A `match:` entry per distinct condition of each route to one version."""
    matches: list[dict[str, Any]] = []
    for route in pins:
        version = route.sending[0]
        if len(route.targets) > 1:
            ctx.normalize(
                resource,
                [*route.path, "route"],
                f"{route.label} sends every request to {version} (its other destinations have "
                "weight 0): rendered as a pin to it",
            )
        if route.mirror is not None or route.data.get("mirror") is not None:
            ctx.refuse(
                resource,
                [*route.path, "mirror"],
                "mirroring on a route to one version: a release mirrors the weighted route only",
                key=True,
            )
        options = _pin_options(ctx, resource, route, main)
        name = route.data.get("name")
        for number, condition in enumerate(_distinct(route.conditions)):
            if not condition.fields:
                ctx.refuse(
                    resource,
                    condition.path,
                    f"{route.label} sends every request on port {condition.port} to {version}: "
                    "a release's pin needs a condition besides the port",
                )
                continue
            pin: dict[str, Any] = {}
            label = str(name) if number == 0 else f"{name}-{number}"
            if isinstance(name, str) and is_dns_label(label):
                pin["name"] = label
            elif name is not None:
                ctx.normalize(
                    resource,
                    [*route.path, "name"],
                    f"route name {label!r} is not a DNS-1123 label; it only labels the route, "
                    "which is rendered with a name of its own",
                )
            pin["version"] = version
            pin.update(copy.deepcopy(condition.fields))
            pin.update(copy.deepcopy(options))
            ctx.origins.add(("match", len(matches)), resource.location(condition.path))
            matches.append(pin)
        if version not in found.order:
            found.order.append(version)
    if matches:
        found.extras["match"] = matches


def _pin_options(ctx: Context, resource: Resource, route: Route, main: Route) -> dict[str, Any]:
    """The options a pin sets itself: those that differ from the weighted route's, which apply
    to it otherwise."""
    own: dict[str, Any] = {}
    for key in OPTIONS:
        mine, theirs = route.options.get(key), main.options.get(key)
        if mine == theirs:
            continue
        if mine is None:
            ctx.refuse(
                resource,
                route.path,
                f"{route.label} has no {key}, but the weighted route's {_shown(theirs)} would "
                f"apply to it: a pin cannot say it has no {key}",
                f"give {route.label} the same {_source_key(key)}, or pass "
                f"--drop '{drop_key(resource, route.path)}'",
            )
            continue
        own[key] = mine
    return own


# Ports --------------------------------------------------------------------------------------------


Port = tuple[dict[str, Any], Path]  # a `ports:` entry and where it was read


def _http_ports(
    ctx: Context,
    resource: Resource,
    routes: list[Route],
    destinations: Destinations,
    layer4: bool,
) -> list[Port]:
    """`ports:` entries for the HTTP routes: their match ports, and the Service port they
    send to when a release cannot leave it out."""
    if not routes:
        return []
    listed = _match_ports(ctx, resource, routes)
    target = _service_port(ctx, resource, routes, destinations)
    if not listed:
        if target is not None and target != _only(destinations):
            where = next(p for r in routes for n, p in r.ports if n is not None)
            ctx.refuse(
                resource,
                where,
                f"the routes send requests of every port to Service port {target}; a release "
                "sends to a Service port only for the ports it lists",
                f"add port: to the match conditions, or pass --drop '{drop_key(resource, where)}'",
            )
        elif layer4:
            main = routes[-1]
            ctx.refuse(
                resource,
                main.path,
                f"{main.label} has no port, but tcp or tls routes are listed by port: a "
                "release with ports: routes HTTP on the ports it lists only",
                "add port: to the HTTP route's match conditions",
            )
        return []
    entries: list[Port] = []
    for port, where in listed:
        entry: dict[str, Any] = {"port": port}
        if target is not None and target != port:
            entry["destinationPort"] = target
        entries.append((entry, where))
    return entries


def _match_ports(ctx: Context, resource: Resource, routes: list[Route]) -> list[tuple[int, Path]]:
    """The ports the routes match, when each route matches each of its conditions on every one
    of them (a release lists its ports once for all routes); a refusal otherwise."""
    listed: dict[int, Path] = {}
    for route in routes:
        for condition in route.conditions:
            if condition.port is not None and condition.port_path is not None:
                listed.setdefault(condition.port, condition.port_path)
    if not listed:
        return []
    for route in routes:
        groups: dict[str, set[int | None]] = {}
        for condition in route.conditions or [Condition(route.path, {})]:
            groups.setdefault(repr(condition.fields), set()).add(condition.port)
        for ports in groups.values():
            if ports != set(listed):
                shown = ", ".join(str(p) for p in sorted(listed))
                mine = ", ".join(str(p) for p in sorted(p for p in ports if p is not None))
                mine = mine or "every port"
                ctx.refuse(
                    resource,
                    [*route.path, "match"] if route.conditions else route.path,
                    f"{route.label} matches {mine}, but the routes match ports {shown}: a "
                    "release lists its ports once, for every route",
                )
                break
    return list(listed.items())


def _only(destinations: Destinations) -> int | None:
    ports = destinations.service_ports
    return ports[0] if len(ports) == 1 else None


def _service_port(
    ctx: Context, resource: Resource, routes: list[Route], destinations: Destinations
) -> int | None:
    """The one Service port the routes send to (the Service's only one when they name none);
    None for the port each request came in on, or, with a refusal, when they send to several."""
    only = _only(destinations)
    found: dict[int | None, Path] = {}
    for route in routes:
        for number, where in route.ports:
            if number is not None and number == only:
                ctx.normalize(
                    resource,
                    where,
                    f"port {number} is the Service's only port, which a destination without a "
                    "port reaches too",
                )
            found.setdefault(only if number is None else number, where)
    if len(found) > 1:
        shown = ", ".join(str(p) if p is not None else "none" for p in found)
        ctx.refuse(
            resource,
            list(found.values())[1],
            f"the routes send to different Service ports ({shown}); a release sends each "
            "port it lists to one Service port",
        )
        return None
    return next(iter(found), None)


def _layer4_ports(
    ctx: Context,
    resource: Resource,
    routes: list[Route],
    http: Route | None,
    destinations: Destinations,
    found: Routes,
) -> list[Port]:
    """A `ports:` entry per tcp or tls match, with the weights of the HTTP weighted route (or
    of the first tcp or tls route when there is none)."""
    entries: list[Port] = []
    reference = http
    for route in routes:
        if reference is None:
            reference = route
            _take_weights(ctx, resource, route, found)
        elif shares(route.targets) != shares(reference.targets):
            ctx.refuse(
                resource,
                [*route.path, "route"],
                f"{route.label} splits {_split(route.targets)}, {reference.label} "
                f"{_split(reference.targets)}: a release has one set of weights",
            )
            continue
        target = _service_port(ctx, resource, [route], destinations)
        for condition in route.conditions or [Condition(route.path, {})]:
            port, where = condition.port, condition.port_path or condition.path
            if port is None:
                port = _only(destinations)
                if port is None:
                    ctx.refuse(
                        resource,
                        where,
                        f"{route.label} has no match port and Service {ctx.service_name} has "
                        "several: a release lists tcp and tls routes by port",
                        "add port: to the match, or pass "
                        f"--drop '{drop_key(resource, route.path)}'",
                    )
                    continue
                ctx.normalize(
                    resource,
                    where,
                    f"{route.label} matches no port: it takes the Service's only port, {port}",
                )
            entry: dict[str, Any] = {"port": port, "protocol": route.protocol}
            if target is not None and target != port:
                entry["destinationPort"] = target
            if "sniHosts" in condition.fields:
                entry["sniHosts"] = condition.fields["sniHosts"]
            entries.append((entry, where))
    return entries


def _unique_ports(ctx: Context, resource: Resource, ports: list[Port]) -> None:
    """A port is listed once: a later route on the same port is never reached."""
    seen: dict[int, dict[str, Any]] = {}
    for entry, where in list(ports):
        first = seen.setdefault(entry["port"], entry)
        if first is entry:
            continue
        ports.remove((entry, where))
        if first == entry:
            ctx.normalize(resource, where, f"port {entry['port']} is listed already; not again")
        else:
            ctx.refuse(
                resource,
                where,
                f"port {entry['port']} is routed as {first.get('protocol', 'http')} already; a "
                "release routes each port one way",
            )


# Weights ------------------------------------------------------------------------------------------


def _take_weights(ctx: Context, resource: Resource, route: Route, found: Routes) -> None:
    found.order = list(route.targets)
    found.weights = hundred(ctx, resource, [*route.path, "route"], route.targets)
    for version in found.weights:
        ctx.origins.add(("versions", version, "weight"), resource.location([*route.path, "route"]))


def hundred(
    ctx: Context, resource: Resource, path: JsonPath, weights: dict[str, int]
) -> dict[str, int]:
    """The route's weights as percentages: scaled, and said so, when they do not sum to 100."""
    total = sum(weights.values())
    if total == 100:
        return dict(weights)
    shown = " + ".join(f"{v} {w}" for v, w in weights.items())
    if total <= 0:
        first = next(iter(weights))
        ctx.refuse(
            resource,
            path,
            f"the weights sum to 0 ({shown}): the route sends requests nowhere, and a "
            "release's weights sum to 100",
        )
        return {name: 100 if name == first else 0 for name in weights}
    scaled = apportion({k: float(v) for k, v in weights.items()})
    result = " + ".join(f"{v} {w}" for v, w in scaled.items())
    if all(w * 100 % total == 0 for w in weights.values()):
        message = (
            f"the weights sum to {total} ({shown}): written as {result}, the same shares in percent"
        )
    else:
        exact = " + ".join(f"{v} {_percent(w, total)}" for v, w in weights.items())
        message = (
            f"the weights sum to {total} ({shown}): written as {result}, rounded to whole "
            f"percent from {exact}"
        )
    ctx.normalize(resource, path, message)
    return scaled


def _percent(weight: int, total: int) -> str:
    return f"{weight * 100 / total:.2f}".rstrip("0").rstrip(".") + "%"


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


def weights_from_replicas(
    ctx: Context, versions: list[Version], routed: bool, service: Resource | None = None
) -> dict[str, int]:
    """Without a weighted route the Service spreads requests over every pod: weights in
    proportion to the replicas say the same. Said at the Service, which spreads them."""
    shares = {v.name: float(v.replicas) for v in versions}
    weights = apportion(shares) if sum(shares.values()) > 0 else {}
    if not weights:
        weights = {v.name: 100 if i == 0 else 0 for i, v in enumerate(versions)}
    shown = ", ".join(f"{name} {w}" for name, w in weights.items())
    pods = ", ".join(f"{v.name} {v.replicas}" for v in versions)
    exact = all(w * sum(shares.values()) == 100 * shares[n] for n, w in weights.items())
    ctx.normalize(
        service if service is not None else versions[0].resource,
        ["spec"] if service is not None else ["spec", "replicas"],
        (
            "the routes read have no weighted rule for the versions"
            if routed
            else "no route read sends to the versions"
        )
        + f": the Service spreads requests over all pods ({pods}), so the weights follow the "
        f"replicas ({shown}{'' if exact else ', rounded to whole percent'})",
        "check the weights in the release file",
    )
    return weights
