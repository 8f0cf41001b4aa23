"""Reading one VirtualService route: its match conditions, destinations, options (timeout,
retries, rewrite, CORS, header changes) and mirror, in the form a release writes them.

A field a release has no place for, or that is malformed, is refused at its path; the rest of
the route is read as if it were absent (which is what `--drop` of that field means).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from meshcanary.importer.context import Context
from meshcanary.importer.subsets import SPREAD, Destinations
from meshcanary.manifest import Resource
from meshcanary.mesh import items

Path = list[str | int]

_HEADER = re.compile(r"[a-z0-9][-a-z0-9_.]*")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?(ms|s|m|h)")
_MATCH_KINDS = ("exact", "prefix", "regex")
_RETRY_FIELDS = ("attempts", "perTryTimeout", "retryOn")
_REWRITE_FIELDS = ("uri", "authority")
# Route options in the order a release writes them; `headers` is read into the last two.
OPTIONS = ("timeout", "retries", "rewrite", "corsPolicy", "requestHeaders", "responseHeaders")
_HTTP_FIELDS = {"name", "match", "route", "mirror", "mirrorPercentage", "headers", *OPTIONS[:4]}
REFUSED_ROUTE_FIELDS = {
    "fault": "fault injection (delays, aborts) has no place in a release",
    "redirect": "a redirect answers without reaching a version; a release routes to versions",
    "directResponse": "a direct response answers without reaching a version; a release routes "
    "to versions",
    "delegate": "a delegated route hands the decision to another VirtualService; a release "
    "routes itself",
    "mirrors": "mirrors (several mirror targets) has no place in a release: it mirrors to one "
    "version (mirror:)",
    "mirror_percent": "mirror_percent (deprecated) has no place in a release: it is written "
    "as mirrorPercentage",
}
_CONDITION_FIELDS = ("uri", "method", "authority", "headers", "queryParams", "ignoreUriCase")
_REFUSED_CONDITION_FIELDS = {
    "sourceLabels": "a match on the caller's labels has no place in a release",
    "sourceNamespace": "a match on the caller's namespace has no place in a release",
    "gateways": "a match on the gateway has no place in a release: its gateways: apply to "
    "every route",
    "withoutHeaders": "a match on absent headers has no place in a release",
    "statPrefix": "statPrefix (the name of the route's statistics) has no place in a release",
    "scheme": "a match on the URI scheme has no place in a release",
    "destinationSubnets": "a match on destination addresses has no place in a release",
}


@dataclass
class Condition:
    """One match condition as a release writes it (without its port), and where it was read."""

    path: Path
    fields: dict[str, Any]
    port: int | None = None
    port_path: Path | None = None


@dataclass
class Route:
    """One route that reaches the service's versions, read."""

    protocol: str  # http, tcp or tls
    index: int
    data: dict[str, Any]
    conditions: list[Condition]
    catch_all: bool
    targets: dict[str, int]  # version → weight, in the route's order
    ports: list[tuple[int | None, Path]]  # each destination's port, and the path to it
    options: dict[str, Any] = field(default_factory=dict)
    mirror: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return ["spec", self.protocol, self.index]

    @property
    def label(self) -> str:
        kind = "" if self.protocol == "http" else f"{self.protocol} "
        return f"{kind}route {self.index}"

    @property
    def sending(self) -> list[str]:
        return [v for v, w in self.targets.items() if w > 0]


# Routes -------------------------------------------------------------------------------


def reached(
    ctx: Context, resource: Resource, protocol: str, destinations: Destinations
) -> list[Route]:
    """The routes of `protocol` up to the first that takes every request, read; the routes
    after it are never used."""
    given = resource.get("spec", protocol)
    if given is not None and not isinstance(given, list):
        ctx.refuse(resource, ["spec", protocol], f"{protocol} is not a list of routes")
        return []
    found: list[Route] = []
    catch_all: int | None = None
    for index, (path, route) in enumerate(items(resource, "spec", protocol)):
        if catch_all is not None:
            ctx.normalize(
                resource,
                path,
                f"{protocol} route {index} is never reached: route {catch_all} before it takes "
                "every request; not rendered",
            )
            continue
        read_route = _read_route(ctx, resource, protocol, index, route, destinations)
        if read_route is None:
            continue
        route_read, takes_all = read_route
        if takes_all:
            catch_all = index
        if route_read is not None:
            found.append(route_read)
    return found


def _read_route(
    ctx: Context,
    resource: Resource,
    protocol: str,
    index: int,
    route: Any,
    destinations: Destinations,
) -> tuple[Route | None, bool] | None:
    """One route read (None when it reaches no version), and whether it takes every request."""
    path: Path = ["spec", protocol, index]
    if not isinstance(route, dict):
        ctx.refuse(resource, path, f"{protocol} route {index} is not a mapping")
        return None
    known = _HTTP_FIELDS if protocol == "http" else {"match", "route"}
    for key in route:
        if key not in known:
            message = REFUSED_ROUTE_FIELDS.get(key, f"route field {key} has no place in a release")
            ctx.refuse(resource, [*path, key], message, key=True)
    conditions, catch_all = _conditions(ctx, resource, protocol, path, route)
    if not conditions and not catch_all:
        return None, False  # every condition refused: the route matches nothing read
    entries = route.get("route")
    if entries is not None and not isinstance(entries, list):
        ctx.refuse(resource, [*path, "route"], "route is not a list of destinations")
        entries = []
    if not entries:
        if not any(k in route for k in REFUSED_ROUTE_FIELDS):
            ctx.refuse(resource, path, f"{protocol} route {index} sends to no destination")
        return None, catch_all
    targets, ports = _targets(ctx, resource, path, entries, destinations)
    if not targets:
        return None, catch_all
    read_route = Route(protocol, index, route, conditions, catch_all, targets, ports)
    if protocol == "http":
        read_route.options = _options(ctx, resource, path, route)
        read_route.mirror = _mirror(ctx, resource, path, route, destinations, ports)
    return read_route, catch_all


def _conditions(
    ctx: Context, resource: Resource, protocol: str, path: Path, route: dict[str, Any]
) -> tuple[list[Condition], bool]:
    """A route's match conditions, and whether it takes every request."""
    given = route.get("match")
    if given is None or given == []:
        return [], True
    if not isinstance(given, list):
        ctx.refuse(resource, [*path, "match"], "match is not a list of conditions")
        return [], True
    found: list[Condition] = []
    for number, condition in enumerate(given):
        where: Path = [*path, "match", number]
        if not isinstance(condition, dict):
            ctx.refuse(resource, where, f"match condition {number} is not a mapping")
            continue
        read_condition = (
            _http_condition(ctx, resource, where, condition)
            if protocol == "http"
            else _layer4_condition(ctx, resource, protocol, where, condition)
        )
        if not read_condition.fields and read_condition.port is None:
            # Refused fields are read as absent (what --drop makes of them): said once.
            if set(condition) <= {"name", "ignoreUriCase"}:
                ctx.normalize(
                    resource,
                    where,
                    f"match condition {number} matches every request, so the route takes "
                    "every request",
                )
            return [], True
        found.append(read_condition)
    return found, False


def _http_condition(
    ctx: Context, resource: Resource, where: Path, condition: dict[str, Any]
) -> Condition:
    found = Condition(where, {})
    for key, value in condition.items():
        at: Path = [*where, key]
        if key in ("uri", "method", "authority"):
            kind = _string_match(ctx, resource, at, value, key)
            if kind is not None:
                found.fields[key] = kind
        elif key in ("headers", "queryParams"):
            named = _named_matches(ctx, resource, at, value, key)
            if named:
                found.fields[key] = named
        elif key == "ignoreUriCase":
            if not isinstance(value, bool):
                ctx.refuse(resource, at, "ignoreUriCase is not true or false")
            elif "uri" not in condition:
                ctx.normalize(resource, at, "ignoreUriCase without a uri match changes nothing")
            else:
                found.fields[key] = value
        elif key == "port":
            _port_of(ctx, resource, at, value, found)
        elif key == "name":
            ctx.normalize(
                resource,
                at,
                "the name of a match condition only labels it; not rendered",
                key=True,
            )
        else:
            message = _REFUSED_CONDITION_FIELDS.get(
                key, f"match field {key} has no place in a release"
            )
            ctx.refuse(resource, at, message, key=True)
    found.fields = {k: found.fields[k] for k in _CONDITION_FIELDS if k in found.fields}
    return found


def _layer4_condition(
    ctx: Context, resource: Resource, protocol: str, where: Path, condition: dict[str, Any]
) -> Condition:
    found = Condition(where, {})
    for key, value in condition.items():
        at: Path = [*where, key]
        if key == "port":
            _port_of(ctx, resource, at, value, found)
        elif key == "sniHosts" and protocol == "tls":
            if isinstance(value, list) and value and all(isinstance(h, str) for h in value):
                found.fields["sniHosts"] = list(value)
            else:
                ctx.refuse(resource, at, "sniHosts is not a list of host names")
        else:
            message = _REFUSED_CONDITION_FIELDS.get(
                key, f"{protocol} match field {key} has no place in a release"
            )
            ctx.refuse(resource, at, message, key=True)
    if protocol == "tls" and "sniHosts" not in found.fields and "sniHosts" not in condition:
        ctx.refuse(
            resource,
            where,
            "tls match without sniHosts; a release's tls port matches its sniHosts, by "
            "default its hosts",
        )
    return found


def _port_of(ctx: Context, resource: Resource, at: Path, value: Any, found: Condition) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        found.port, found.port_path = value, at
    else:
        ctx.refuse(resource, at, f"port {value!r} is not a port number")


def _string_match(ctx: Context, resource: Resource, at: Path, value: Any, what: str) -> Any:
    """An Istio StringMatch (one of exact, prefix, regex with a string), copied; else None."""
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in _MATCH_KINDS
        and isinstance(next(iter(value.values())), str)
    ):
        return dict(value)
    ctx.refuse(
        resource, at, f"{what} match is not one of exact, prefix or regex with a string value"
    )
    return None


def _named_matches(
    ctx: Context, resource: Resource, at: Path, value: Any, what: str
) -> dict[str, Any]:
    """Header or query parameter matches, by name; header names lower-cased, as HTTP reads
    them."""
    if not isinstance(value, dict) or not value:
        ctx.refuse(resource, at, f"{what} is not a mapping of names to matches")
        return {}
    found: dict[str, Any] = {}
    for name, match in value.items():
        where: Path = [*at, str(name)]
        written = name.lower() if isinstance(name, str) and what == "headers" else name
        if not isinstance(name, str) or (what == "headers" and not _HEADER.fullmatch(written)):
            ctx.refuse(resource, where, f"{name!r} is not a name a release can match", key=True)
            continue
        kind = _string_match(ctx, resource, where, match, f"{what} {name}")
        if kind is None:
            continue
        if what == "queryParams" and "prefix" in kind:
            ctx.refuse(resource, where, "Istio has no prefix match for query parameters")
            continue
        if written != name:
            ctx.normalize(
                resource,
                where,
                f"header names match without regard to case: written as {written}",
                key=True,
            )
        found[written] = kind
    return found


def _targets(
    ctx: Context, resource: Resource, path: Path, entries: list[Any], destinations: Destinations
) -> tuple[dict[str, int], list[tuple[int | None, Path]]]:
    """Version → weight of a route's destinations, and the port each destination names."""
    targets: dict[str, int] = {}
    spread = 0  # weight of the destinations that reach every version (no subset)
    ports: list[tuple[int | None, Path]] = []
    for number, entry in enumerate(entries):
        where: Path = [*path, "route", number]
        if not isinstance(entry, dict):
            ctx.refuse(resource, where, "the route entry is not a mapping with a destination")
            continue
        for key in entry:
            if key == "headers":
                ctx.refuse(
                    resource,
                    [*where, key],
                    "headers set for one destination only; a release sets headers per route",
                    key=True,
                )
            elif key not in ("destination", "weight"):
                ctx.refuse(
                    resource, [*where, key], f"route entry field {key} has no place", key=True
                )
        target = entry.get("destination")
        version = destinations.version(resource, [*where, "destination"], target)
        weight = entry.get("weight")
        if weight is None:
            weight = 100 if len(entries) == 1 else 0
        elif isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            ctx.refuse(resource, [*where, "weight"], f"weight {weight!r} is not a whole number")
            weight = 0
        if version is None:
            continue
        if version == SPREAD:
            spread += weight
            continue
        if version in targets:
            ctx.normalize(
                resource,
                [*where, "destination"],
                f"{version} is a destination twice in this route; its weights are added",
            )
        targets[version] = targets.get(version, 0) + weight
        at: Path = [*where, "destination"]
        ports.append((_destination_port(ctx, resource, at, target), [*at, "port"]))
    if spread:
        # Every version's pods by their replicas: in whole numbers, each weight times the
        # pods there are, plus the spread's weight times the version's pods.
        replicas = destinations.replicas
        pods = sum(replicas.values())
        targets = {name: targets.get(name, 0) * pods + spread * replicas[name] for name in replicas}
    return targets, ports


def _destination_port(ctx: Context, resource: Resource, where: Path, target: Any) -> int | None:
    port = target.get("port") if isinstance(target, dict) else None
    if port is None:
        return None
    number = port.get("number") if isinstance(port, dict) else None
    if (
        isinstance(port, dict)
        and set(port) == {"number"}
        and isinstance(number, int)
        and not isinstance(number, bool)
        and 1 <= number <= 65535
    ):
        return number
    ctx.refuse(resource, [*where, "port"], "the destination's port is not {number: <port>}")
    return None


# Route options -------------------------------------------------------------------------------


def _options(ctx: Context, resource: Resource, path: Path, route: dict[str, Any]) -> dict[str, Any]:
    """A route's timeout, retries, rewrite, CORS policy and header changes, as a release
    writes them."""
    found: dict[str, Any] = {}
    timeout = route.get("timeout")
    if timeout is not None:
        if isinstance(timeout, str) and _DURATION.fullmatch(timeout):
            found["timeout"] = timeout
        else:
            ctx.refuse(resource, [*path, "timeout"], f"timeout {timeout!r} is not a duration")
    if route.get("retries") is not None:
        retries = _retries(ctx, resource, [*path, "retries"], route["retries"])
        if retries is not None:
            found["retries"] = retries
    if route.get("rewrite") is not None:
        rewrite = _rewrite(ctx, resource, [*path, "rewrite"], route["rewrite"])
        if rewrite:
            found["rewrite"] = rewrite
    cors = route.get("corsPolicy")
    if cors is not None:
        if isinstance(cors, dict):
            found["corsPolicy"] = copy.deepcopy(cors)
        else:
            ctx.refuse(resource, [*path, "corsPolicy"], "corsPolicy is not a mapping")
    headers = route.get("headers")
    if headers is not None:
        found.update(_header_changes(ctx, resource, [*path, "headers"], headers))
    return {k: found[k] for k in OPTIONS if k in found}


def _retries(ctx: Context, resource: Resource, where: Path, given: Any) -> dict[str, Any] | None:
    if not isinstance(given, dict):
        ctx.refuse(resource, where, "retries is not a mapping")
        return None
    retries: dict[str, Any] = {}
    for name, value in given.items():
        at: Path = [*where, name]
        if (
            (name == "attempts" and isinstance(value, int) and not isinstance(value, bool))
            or (name == "perTryTimeout" and isinstance(value, str) and _DURATION.fullmatch(value))
            or (name == "retryOn" and isinstance(value, str) and value)
        ):
            retries[name] = value
        elif name in _RETRY_FIELDS:
            ctx.refuse(resource, at, f"retries {name} {value!r} is not one a release can hold")
        else:
            ctx.refuse(resource, at, f"retries field {name} has no place in a release", key=True)
    if "attempts" not in retries:
        if "attempts" not in given:
            ctx.refuse(resource, where, "retries without a number of attempts")
        return None
    return {k: retries[k] for k in _RETRY_FIELDS if k in retries}


def _rewrite(ctx: Context, resource: Resource, where: Path, given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        ctx.refuse(resource, where, "rewrite is not a mapping")
        return {}
    found: dict[str, Any] = {}
    for name, value in given.items():
        at: Path = [*where, name]
        if name in _REWRITE_FIELDS and isinstance(value, str):
            found[name] = value
        elif (
            name == "uriRegexRewrite"
            and isinstance(value, dict)
            and set(value) == {"match", "rewrite"}
            and all(isinstance(v, str) for v in value.values())
        ):
            found[name] = dict(value)
        elif name in (*_REWRITE_FIELDS, "uriRegexRewrite"):
            ctx.refuse(resource, at, f"rewrite {name} is not one a release can hold")
        else:
            ctx.refuse(resource, at, f"rewrite field {name} has no place in a release", key=True)
    return found


def _header_changes(ctx: Context, resource: Resource, where: Path, given: Any) -> dict[str, Any]:
    """Istio's `headers: {request, response}` → requestHeaders, responseHeaders."""
    if not isinstance(given, dict):
        ctx.refuse(resource, where, "headers is not a mapping of request and response")
        return {}
    found: dict[str, Any] = {}
    for side, value in given.items():
        at: Path = [*where, side]
        if side not in ("request", "response"):
            ctx.refuse(resource, at, f"headers field {side} has no place in a release", key=True)
            continue
        changes: dict[str, Any] = {}
        for change, names in value.items() if isinstance(value, dict) else [(None, None)]:
            ok = (
                change in ("set", "add")
                and isinstance(names, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in names.items())
            ) or (
                change == "remove"
                and isinstance(names, list)
                and all(isinstance(n, str) for n in names)
            )
            if ok:
                written = _operation_names(ctx, resource, [*at, str(change)], names)
                if written:
                    changes[str(change)] = written
            else:
                ctx.refuse(
                    resource,
                    [*at, change] if change is not None else at,
                    f"headers.{side} is not {{set: {{name: value}}, add: {{name: value}}, "
                    "remove: [name]}",
                )
        if changes:
            found[f"{side}Headers"] = changes
    return found


def _operation_names(ctx: Context, resource: Resource, at: Path, names: Any) -> Any:
    """The header names of a set, add or remove, lower-cased as HTTP reads them; `host` is
    refused (Istio does not change it: rewrite.authority does)."""
    written: Any = {} if isinstance(names, dict) else []
    for name in names:
        lower = name.lower()
        where: Path = [*at, name] if isinstance(names, dict) else [*at, names.index(name)]
        if lower == "host" or not _HEADER.fullmatch(lower):
            ctx.refuse(resource, where, f"header {name!r} cannot be changed by a release")
            continue
        if lower != name:
            ctx.normalize(
                resource, where, f"header names are read without regard to case: written as {lower}"
            )
        if isinstance(names, dict):
            written[lower] = names[name]
        elif lower not in written:
            written.append(lower)
    return written


def _mirror(
    ctx: Context,
    resource: Resource,
    path: Path,
    route: dict[str, Any],
    destinations: Destinations,
    ports: list[tuple[int | None, Path]],
) -> dict[str, Any] | None:
    target = route.get("mirror")
    percentage: Any = route.get("mirrorPercentage")
    if target is None:
        if percentage is not None:
            ctx.normalize(
                resource,
                [*path, "mirrorPercentage"],
                "mirrorPercentage without a mirror copies nothing; not rendered",
            )
        return None
    version = destinations.version(resource, [*path, "mirror"], target)
    if version == SPREAD:
        ctx.refuse(
            resource,
            [*path, "mirror"],
            "a mirror without a subset copies to every version's pods; a release mirrors "
            "to one version",
        )
        return None
    if version is None:
        return None
    at: Path = [*path, "mirror"]
    ports.append((_destination_port(ctx, resource, at, target), [*at, "port"]))
    if percentage is None:
        percent: float = 100  # Istio mirrors every request when no share is given
    elif (
        isinstance(percentage, dict)
        and set(percentage) == {"value"}
        and isinstance(percentage["value"], int | float)
        and not isinstance(percentage["value"], bool)
        and 0 <= percentage["value"] <= 100
    ):
        percent = percentage["value"]
    else:
        ctx.refuse(resource, [*path, "mirrorPercentage"], "mirrorPercentage is not {value: 0..100}")
        return None
    if percent == 0:
        ctx.normalize(
            resource, [*path, "mirror"], "mirroring 0% of requests copies nothing; not rendered"
        )
        return None
    whole = int(percent) if float(percent).is_integer() else percent
    return {"version": version, "percent": whole}
