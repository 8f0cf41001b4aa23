"""No route, and no match of a route, is shadowed by the routes before it.

Istio tries a VirtualService's routes in order and takes the first that matches. A route after
one that takes every request it could take (a route without `match`, or whose match is as
wide: `uri: {prefix: /}` and nothing else) is never used; so is a match that an earlier match
already covers (the same conditions, or fewer: `prefix: /api` covers `prefix: /api/v2`, a
header condition covers the same condition with more headers). During a canary this is how a
pinned route (`x-canary: always` → v2) placed after the weighted one silently stops pinning.

A match covers another when each of its conditions holds for every request the other matches:
`exact`, `prefix` and `regex` (the same expression, or `.*`) string matches on `uri`,
`scheme`, `method`, `authority`, `headers` and `queryParams`; `withoutHeaders`, `port`,
`sourceLabels`, `sourceNamespace`, and `gateways` (a match's own, else the VirtualService's).
TCP and TLS routes are read the same way (`destinationSubnets` and `sniHosts` cover narrower
subnets and hosts). A route whose every match is covered is reported at the route; a covered
match of a route that still has others, at the match.

Istio: IST0130 VirtualServiceUnreachableRule (a route after a route without match, or whose
matches all repeat earlier ones exactly) and IST0131 VirtualServiceIneffectiveMatch (at info: a
match repeated exactly, or an overlapping URI prefix with otherwise equal conditions). Broader:
any match that covers another counts, and both are warnings.

Fix: put the narrower route first, or remove the route or match that is never used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshcanary.manifest import Resource
from meshcanary.mesh import ISTIO, MESH, PROTOCOLS, gateway_key, items, namespace_of, of_kind
from meshcanary.problem import Severity
from meshcanary.rules import Finding, Scope

ID = "route-unreachable"
SEVERITY = Severity.WARNING
SUMMARY = "no route or match is shadowed by the routes before it"
HINT = "put the narrower route first, or remove the route or match that is never used"
ISTIO_CODES = ("IST0130", "IST0131")

# Fields of a match that do not select requests.
NAMES = frozenset(("name", "statPrefix"))
# Request attributes every HTTP request has: a match-all condition on them matches everything.
ALWAYS_PRESENT = frozenset(("uri", "scheme", "method", "authority"))


@dataclass(frozen=True)
class Match:
    """One match of a route (a route without `match` has one that matches everything)."""

    route: int
    index: int | None  # None: the route has no `match`
    label: str  # how a message names the route
    conditions: Mapping[str, Any]
    gateways: frozenset[tuple[str, str]]


def check(scope: Scope) -> Iterator[Finding]:
    for service in of_kind(scope, ISTIO, "VirtualService"):
        for protocol in PROTOCOLS:
            yield from _check_routes(service, protocol)


def _check_routes(service: Resource, protocol: str) -> Iterator[Finding]:
    namespace = namespace_of(service)
    default = _gateway_set(service.get("spec", "gateways"), namespace) or frozenset(
        {(namespace, MESH)}
    )
    earlier: list[Match] = []
    for path, route in items(service, "spec", protocol):
        if not isinstance(route, dict):
            continue
        number = int(path[-1])
        matches = _matches(route, number, namespace, default)
        if not matches:
            continue
        # A match is shadowed by an earlier route's, or by one before it in the same route.
        shadows = [
            (m, _covering(m, [*earlier, *matches[:i]], protocol)) for i, m in enumerate(matches)
        ]
        covered = [by for _, by in shadows if by is not None]
        if len(covered) == len(shadows):
            by = covered[0]
            at = [*path, "match"] if matches[0].index is not None else path
            yield Finding(
                service,
                at,
                f"route {matches[0].label} is never used: {_why(by)}",
                key=matches[0].index is not None,
            )
        else:
            for match, shadow in shadows:
                if shadow is not None and match.index is not None:
                    yield Finding(
                        service,
                        [*path, "match", match.index],
                        f"match #{match.index} of route {match.label} is never used: "
                        f"{_why(shadow)}",
                    )
        earlier.extend(matches)


def _matches(
    route: dict[str, Any], number: int, namespace: str, default: frozenset[tuple[str, str]]
) -> list[Match]:
    name = route.get("name")
    label = f"#{number} ({name!r})" if isinstance(name, str) and name else f"#{number}"
    listed = route.get("match")
    if not isinstance(listed, list) or not listed:
        return [Match(number, None, label, {}, default)]
    found = []
    for index, conditions in enumerate(listed):
        if not isinstance(conditions, dict):
            continue  # the schema's to report; it neither shadows nor is shadowed
        own = _gateway_set(conditions.get("gateways"), namespace)
        found.append(Match(number, index, label, conditions, own or default))
    return found


def _gateway_set(names: object, namespace: str) -> frozenset[tuple[str, str]]:
    if not isinstance(names, list):
        return frozenset()
    return frozenset(
        (namespace, MESH) if n == MESH else gateway_key(n, namespace)
        for n in names
        if isinstance(n, str) and n
    )


def _why(by: Match) -> str:
    if by.index is None:
        return f"route {by.label} before it has no match and takes every request"
    if not _selects(by.conditions):
        return f"match #{by.index} of route {by.label} before it matches every request"
    return f"match #{by.index} of route {by.label} before it takes every request it matches"


def _selects(conditions: Mapping[str, Any]) -> bool:
    return any(k not in NAMES and k != "gateways" for k in conditions)


def _covering(match: Match, earlier: list[Match], protocol: str) -> Match | None:
    for before in earlier:
        if match.gateways <= before.gateways and _covers(
            before.conditions, match.conditions, protocol
        ):
            return before
    return None


# Coverage ------------------------------------------------------------------------------------


def _covers(wide: Mapping[str, Any], narrow: Mapping[str, Any], protocol: str) -> bool:
    """Whether every request `narrow` matches is matched by `wide` (gateways aside)."""
    case_blind = protocol == "http" and wide.get("ignoreUriCase") is True
    for key, value in wide.items():
        if key in NAMES or key in ("gateways", "ignoreUriCase"):
            continue
        other = narrow.get(key)
        if protocol == "http" and key in ALWAYS_PRESENT:
            if key == "uri" and narrow.get("ignoreUriCase") is True and not case_blind:
                if not _matches_all(value, key):
                    return False
            elif not _string_covers(value, other, key, case_blind and key == "uri"):
                return False
        elif key in ("headers", "queryParams"):
            if not _map_covers(value, other, lower_keys=key == "headers"):
                return False
        elif key in ("destinationSubnets",):
            if not _subnets_cover(value, other):
                return False
        elif key == "sniHosts":
            if not _hosts_cover(value, other):
                return False
        elif key in ("sourceLabels", "withoutHeaders"):
            # Every label (or absent header) `wide` asks for, `narrow` asks for too.
            if not isinstance(value, dict):
                return False
            if value and (
                not isinstance(other, dict) or any(other.get(k) != v for k, v in value.items())
            ):
                return False
        elif value != other:
            return False
    return True


def _matches_all(value: object, key: str) -> bool:
    """Whether a string match holds for any value (a header's: for any header present)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value == {} and key not in ALWAYS_PRESENT
    kind, text = next(iter(value.items()))
    prefixes = ("", "/") if key == "uri" else ("",)
    return (kind == "prefix" and text in prefixes) or (kind == "regex" and text in (".*", "^.*$"))


def _string_covers(wide: object, narrow: object, key: str, case_blind: bool) -> bool:
    if _matches_all(wide, key):
        return True
    if not isinstance(wide, dict) or not isinstance(narrow, dict):
        return False
    if len(wide) != 1 or len(narrow) != 1:
        return wide == narrow
    (kind, text), (other_kind, other_text) = next(iter(wide.items())), next(iter(narrow.items()))
    if not isinstance(text, str) or not isinstance(other_text, str):
        return wide == narrow
    if case_blind and kind != "regex" and other_kind != "regex":
        text, other_text = text.lower(), other_text.lower()
    if kind == "exact":
        return other_kind == "exact" and other_text == text
    if kind == "prefix":
        return other_kind in ("exact", "prefix") and other_text.startswith(text)
    return kind == other_kind and text == other_text


def _map_covers(wide: object, narrow: object, *, lower_keys: bool) -> bool:
    if not isinstance(wide, dict) or not wide:
        return True
    if not isinstance(narrow, dict):
        return False

    def norm(key: object) -> str:
        return str(key).lower() if lower_keys else str(key)

    given = {norm(k): v for k, v in narrow.items()}
    for name, condition in wide.items():
        if norm(name) not in given:
            return False
        other = given[norm(name)]
        if condition == other or (_matches_all(condition, "") and isinstance(other, dict)):
            continue  # the same condition, or one any value of a present header meets
        if not _string_covers(condition, other, "", case_blind=False):
            return False
    return True


def _subnets_cover(wide: object, narrow: object) -> bool:
    if not isinstance(wide, list) or not wide:
        return True
    if not isinstance(narrow, list) or not narrow:
        return False
    return all(any(_subnet_of(n, w) for w in wide) for n in narrow)


def _subnet_of(narrow: object, wide: object) -> bool:
    try:
        inner = ipaddress.ip_network(str(narrow), strict=False)
        outer = ipaddress.ip_network(str(wide), strict=False)
    except ValueError:
        return narrow == wide
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _hosts_cover(wide: object, narrow: object) -> bool:
    if not isinstance(wide, list) or not wide:
        return True
    if not isinstance(narrow, list) or not narrow:
        return False
    return all(any(_host_covers(str(w), str(n)) for w in wide) for n in narrow)


def _host_covers(wide: str, narrow: str) -> bool:
    wide, narrow = wide.lower(), narrow.lower()
    if wide == narrow or wide == "*":
        return True
    return wide.startswith("*.") and narrow.endswith(wide[1:])
