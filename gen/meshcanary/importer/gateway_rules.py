"""The rules of one Gateway API route → a release's pins, weighted rule, requests, options and
mirror, as render/gateway_api.py writes them, read backwards.

A rule the renderer writes is a pin (one backendRef without a weight, and matches) or the
weighted rule (every version's backendRef with its weight, its matches the release's
`requests:`), always last. Every field of a rule is carried over, carried over in another form
with the same meaning (`ctx.normalize`), or refused where it was read (`ctx.refuse`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from meshcanary.importer.context import Context
from meshcanary.manifest import JsonPath, Resource
from meshcanary.names import is_dns_label

# The options a rule carries and a pin may set itself, in the release file's order.
OPTIONS = ("timeout", "rewrite", "corsPolicy", "requestHeaders", "responseHeaders")
_RULE_KEYS = ("name", "matches", "filters", "backendRefs", "timeouts")
_HTTP_MATCH_KEYS = ("path", "headers", "queryParams", "method")
_PATH_KINDS = {"Exact": "exact", "PathPrefix": "prefix", "RegularExpression": "regex"}
_BACKEND_KEYS = ("group", "kind", "name", "namespace", "port", "weight")
_FILTERS = {
    "HTTPRoute": (
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "URLRewrite",
        "CORS",
        "RequestMirror",
    ),
    "GRPCRoute": ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"),
}
_FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "URLRewrite": "urlRewrite",
    "CORS": "cors",
    "RequestMirror": "requestMirror",
}
_CORS_KEYS = (
    "allowOrigins",
    "allowMethods",
    "allowHeaders",
    "exposeHeaders",
    "allowCredentials",
    "maxAge",
)
# What release/routing.py makes of a pin's cookie: a regular expression on the Cookie header.
_COOKIE = re.compile(r"\^\(\.\*;\\s\*\)\?(?P<pair>.*)\(\\s\*;\.\*\)\?\$")
_RE2_ESCAPED = re.compile(r"\\([.^$*+?()\[\]{}|\\/])")
_RE2_META = r".^$*+?()[]{}|\/"


def _unescaped(text: str) -> str | None:
    """The literal an RE2 expression written by `re2_escape` matches, or None if it is not one."""
    literal = _RE2_ESCAPED.sub(lambda m: m.group(1), text)
    escaped = "".join(f"\\{c}" if c in _RE2_META else c for c in literal)
    return literal if escaped == text else None


@dataclass
class Rule:
    """One rule in the release's words."""

    path: JsonPath
    conditions: list[tuple[dict[str, Any], JsonPath]]  # release conditions, where each was read
    targets: dict[str, int]  # version → weight as written (1 when none)
    weighted: bool  # some backendRef says its weight
    name: str | None
    options: dict[str, Any] = field(default_factory=dict)
    mirror: dict[str, Any] | None = None
    port: int | None = None  # the backendRefs' port
    port_path: JsonPath | None = None
    ports: list[tuple[int | None, JsonPath]] = field(default_factory=list)  # the mirror's too

    @property
    def version(self) -> str:
        return next(iter(self.targets))


class Reader:
    """Reads the rules of one route: `services` maps a version's Service to its version."""

    def __init__(
        self,
        ctx: Context,
        route: Resource,
        services: dict[str, str],
        replicas: dict[str, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.route = route
        self.services = services
        self.replicas = replicas or {}  # version → replicas, for a rule to the base's Service
        self.grpc = route.kind == "GRPCRoute"

    def refuse(self, path: JsonPath, message: str, hint: str = "", *, key: bool = False) -> None:
        self.ctx.refuse(self.route, path, message, hint, key=key)

    def normalize(self, path: JsonPath, message: str, hint: str = "") -> None:
        self.ctx.normalize(self.route, path, message, hint)

    # Rules ---------------------------------------------------------------------------------

    def rules(self) -> list[Rule]:
        found: list[Rule] = []
        entries = self.route.get("spec", "rules")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            path: JsonPath = ["spec", "rules", index]
            if not isinstance(entry, dict):
                self.refuse(path, "a rule that is not a mapping cannot be imported")
                continue
            rule = self._rule(path, entry)
            if rule is not None:
                found.append(rule)
        return found

    def _rule(self, path: JsonPath, entry: dict[str, Any]) -> Rule | None:
        layer4 = self.route.kind in ("TCPRoute", "TLSRoute")
        for key in entry:
            if key not in (("name", "backendRefs") if layer4 else _RULE_KEYS):
                self.refuse(
                    [*path, key],
                    f"rule field {key} has no place in a release: meshcanary renders a rule's "
                    "name, matches, filters, backendRefs and request timeout only",
                    key=True,
                )
        targets, weighted, port, port_path = self._backends(path, entry.get("backendRefs"))
        if not targets:
            return None
        name = entry.get("name")
        rule = Rule(
            path,
            self._conditions(path, entry.get("matches")),
            targets,
            weighted,
            name if isinstance(name, str) else None,
            port=port,
            port_path=port_path,
        )
        if not layer4:
            self._filters(path, entry.get("filters"), rule)
            self._timeouts([*path, "timeouts"], entry.get("timeouts"), rule)
        return rule

    # Backends ------------------------------------------------------------------------------

    def _backends(
        self, path: JsonPath, refs: Any
    ) -> tuple[dict[str, int], bool, int | None, JsonPath | None]:
        targets: dict[str, int] = {}
        weighted = False
        port: int | None = None
        port_path: JsonPath | None = None
        spread = self._spread(path, refs)
        if spread is not None:
            return spread
        for index, ref in enumerate(refs if isinstance(refs, list) else []):
            at: JsonPath = [*path, "backendRefs", index]
            version = self.backend(at, ref)
            if version is None:
                continue
            weight = ref.get("weight")
            if weight is not None:
                weighted = True
            if not isinstance(weight, int) or isinstance(weight, bool):
                weight = 1  # the Gateway API's default
            if version in targets:
                self.refuse(at, f"a second backendRef to version {version}'s Service")
                continue
            targets[version] = weight
            given = ref.get("port")
            if port is None:
                port, port_path = given, [*at, "port"]
            elif given != port:
                self.refuse(
                    [*at, "port"],
                    f"backendRef port {given}, another backendRef of the rule {port}: a release "
                    "sends each of its ports to one Service port",
                )
        if not targets and refs:
            return {}, False, None, None
        if not targets:
            self.refuse(
                path,
                "a rule without backendRefs answers every request with an error: a release "
                "sends each request to a version",
            )
        return targets, weighted, port, port_path

    def _spread(
        self, path: JsonPath, refs: Any
    ) -> tuple[dict[str, int], bool, int | None, JsonPath | None] | None:
        """A rule whose one backendRef is the Service every version shares: it spreads the
        requests over all their pods, as weights in proportion to the replicas do."""
        only = refs[0] if isinstance(refs, list) and len(refs) == 1 else None
        if not isinstance(only, dict) or only.get("name") != self.ctx.service_name:
            return None
        if set(only) - {"group", "kind", "name", "port", "weight"} or only.get("group", "") != "":
            return None
        if only.get("kind", "Service") != "Service" or not isinstance(only.get("port"), int):
            return None
        if not self.replicas or not sum(self.replicas.values()):
            return None
        at: JsonPath = [*path, "backendRefs", 0]
        if only.get("weight", 1) == 0:
            self.refuse(
                [*at, "weight"],
                "the rule's only backendRef has weight 0: it answers the requests it takes with "
                "an error, and a release sends every request to some version",
            )
            return None
        shown = ", ".join(f"{v} {n}" for v, n in self.replicas.items())
        self.normalize(
            at,
            f"the rule sends to Service {self.ctx.service_name}, which spreads requests over "
            f"the pods of every version ({shown}): rendered as weights in proportion to the "
            "replicas, sent to each version's Service",
            "check the weights in the release file",
        )
        return dict(self.replicas), True, only["port"], [*at, "port"]

    def backend(self, at: JsonPath, ref: Any) -> str | None:
        """The version a backendRef sends to, or None, with a refusal."""
        if not isinstance(ref, dict):
            self.refuse(at, "a backendRef that is not a mapping cannot be imported")
            return None
        for key in ref:
            if key not in _BACKEND_KEYS:
                self.refuse(
                    [*at, key],
                    f"backendRef field {key}: meshcanary's backendRefs name a version's Service, "
                    "its port and weight only",
                    key=True,
                )
        if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
            self.refuse(
                at,
                f"backendRef to {ref.get('kind', 'Service')} of group "
                f"{ref.get('group', '')!r}: a release sends to its versions' Services only",
            )
            return None
        namespace = ref.get("namespace")
        if namespace is not None and namespace != self.ctx.namespace(self.route):
            self.refuse(
                [*at, "namespace"],
                f"backendRef to namespace {namespace}: a release sends to its versions' "
                "Services, in the environment's namespace",
            )
            return None
        name = ref.get("name")
        version = self.services.get(name) if isinstance(name, str) else None
        if version is None:
            base = name == self.ctx.service_name
            self.refuse(
                [*at, "name"],
                f"backendRef to Service {name}: "
                + (
                    "the Service every version shares spreads requests over all their pods; "
                    "a release sends to one Service per version"
                    if base
                    else "not a Service of one of the imported versions"
                ),
                "add a Service per version (selector app and version) and send to those",
            )
            return None
        if not isinstance(ref.get("port"), int):
            self.refuse(at, "a backendRef to a Service names its port; this one does not")
            return None
        return version

    # Conditions ----------------------------------------------------------------------------

    def _conditions(self, path: JsonPath, matches: Any) -> list[tuple[dict[str, Any], JsonPath]]:
        found: list[tuple[dict[str, Any], JsonPath]] = []
        for index, match in enumerate(matches if isinstance(matches, list) else []):
            at: JsonPath = [*path, "matches", index]
            if not isinstance(match, dict):
                self.refuse(at, "a match that is not a mapping cannot be imported")
                continue
            condition = self._grpc_match(at, match) if self.grpc else self._http_match(at, match)
            if condition is not None:
                found.append((condition, at))
        return found

    def _http_match(self, at: JsonPath, match: dict[str, Any]) -> dict[str, Any] | None:
        condition: dict[str, Any] = {}
        for key in match:
            if key not in _HTTP_MATCH_KEYS:
                self.refuse([*at, key], f"match field {key} cannot be imported", key=True)
        path = match.get("path")
        if isinstance(path, dict):
            kind = _PATH_KINDS.get(path.get("type", "PathPrefix"))
            value = path.get("value", "/")
            for key in path:
                if key not in ("type", "value"):
                    self.refuse([*at, "path", key], f"path field {key} cannot be imported")
            if kind is None or not isinstance(value, str):
                self.refuse(
                    [*at, "path"],
                    f"path type {path.get('type')}: a release matches Exact, PathPrefix or "
                    "RegularExpression paths",
                    key=True,
                )
                return None
            if not (kind == "prefix" and value == "/"):  # every path: no condition
                condition["uri"] = {kind: value}
        if not self._headers(at, match, condition):
            return None
        params = self._named([*at, "queryParams"], match.get("queryParams"), header=False)
        if params is None:
            return None
        if params:
            condition["queryParams"] = params
        method = match.get("method")
        if method is not None:
            condition["method"] = {"exact": method}
        return condition

    def _grpc_match(self, at: JsonPath, match: dict[str, Any]) -> dict[str, Any] | None:
        condition: dict[str, Any] = {}
        for key in match:
            if key not in ("method", "headers"):
                self.refuse([*at, key], f"match field {key} cannot be imported", key=True)
        method = match.get("method")
        if isinstance(method, dict):
            service, name = method.get("service"), method.get("method")
            for key in method:
                if key not in ("type", "service", "method"):
                    self.refuse([*at, "method", key], f"method field {key} cannot be imported")
            if method.get("type", "Exact") != "Exact" or not isinstance(service, str):
                self.refuse(
                    [*at, "method"],
                    "a release matches a gRPC method exactly, by its service (and method): "
                    "the renderer writes type Exact with a service",
                )
                return None
            condition["uri"] = (
                {"exact": f"/{service}/{name}"}
                if isinstance(name, str)
                else {"prefix": f"/{service}/"}
            )
        if not self._headers(at, match, condition):
            return None
        return condition

    def _headers(self, at: JsonPath, match: dict[str, Any], condition: dict[str, Any]) -> bool:
        """An HTTP or gRPC match's headers into `condition`, the cookie header's pins as
        `cookies`; False, with a refusal, when one cannot be carried over."""
        headers = self._named([*at, "headers"], match.get("headers"), header=True)
        if headers is None:
            return False
        cookies = self._cookies(headers)
        if headers:
            condition["headers"] = headers
        if cookies:
            condition["cookies"] = cookies
        return True

    def _named(self, at: JsonPath, entries: Any, *, header: bool) -> dict[str, Any] | None:
        """Header or query parameter matches by name; None, with a refusal, when one cannot be
        carried over."""
        found: dict[str, Any] = {}
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            where: JsonPath = [*at, index]
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                self.refuse(where, "a match without a name cannot be imported")
                return None
            for key in entry:
                if key not in ("name", "type", "value"):
                    self.refuse([*where, key], f"match field {key} cannot be imported", key=True)
            name, value, kind = entry["name"], entry.get("value"), entry.get("type", "Exact")
            if header:
                name = name.lower()  # header names are case-insensitive
            if not isinstance(value, str) or kind not in ("Exact", "RegularExpression"):
                self.refuse(where, f"match type {kind} with value {value!r} cannot be imported")
                return None
            if name in found:
                # The spec: "only the first entry with an equivalent name MUST be considered".
                self.normalize(where, f"a second match on {name}: only the first one counts")
                continue
            if kind == "Exact":
                found[name] = {"exact": value}
            elif header and value.startswith("^") and _unescaped(value[1:]) is not None:
                # Headers only: a release matches no query parameter by prefix.
                found[name] = {"prefix": _unescaped(value[1:])}
            else:
                found[name] = {"regex": value}
        return found

    @staticmethod
    def _cookies(headers: dict[str, Any]) -> dict[str, str]:
        """The release's `cookies:` from a Cookie header regex the renderer wrote for them."""
        regex = (headers.get("cookie") or {}).get("regex")
        written = _COOKIE.fullmatch(regex) if isinstance(regex, str) else None
        pair = _unescaped(written.group("pair")) if written else None
        if pair is None or "=" not in pair:
            return {}
        name, _, value = pair.partition("=")
        del headers["cookie"]
        return {name: value}

    # Filters and timeouts ------------------------------------------------------------------

    def _filters(self, path: JsonPath, filters: Any, rule: Rule) -> None:
        allowed = _FILTERS[self.route.kind]
        for index, entry in enumerate(filters if isinstance(filters, list) else []):
            at: JsonPath = [*path, "filters", index]
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind not in allowed:
                self.refuse(
                    at,
                    f"filter {kind}: a release's routes have no such filter (it renders "
                    f"{', '.join(allowed)})",
                )
                continue
            assert isinstance(entry, dict)  # noqa: S101 - its type was read above
            if kind == "RequestMirror" and index > 0:
                # "Implementations SHOULD implement filters in the order they are specified":
                # a mirror after a header modifier copies the modified request.
                self.normalize(
                    at,
                    "the renderer writes RequestMirror first, before the filters listed ahead "
                    "of it here: the mirrored copy is taken before they change the request",
                )
            field_name = _FILTER_FIELDS[kind]
            for key in entry:
                if key not in ("type", field_name):
                    self.refuse([*at, key], f"{key} does not belong in a {kind} filter", key=True)
            value = entry.get(field_name)
            if not isinstance(value, dict):
                self.refuse(at, f"a {kind} filter without its {field_name}")
                continue
            at = [*at, field_name]
            if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
                key = "requestHeaders" if kind.startswith("Request") else "responseHeaders"
                self._option(at, rule, key, self._header_operations(at, value))
            elif kind == "URLRewrite":
                self._option(at, rule, "rewrite", self._rewrite(at, value, rule))
            elif kind == "CORS":
                self._option(at, rule, "corsPolicy", self._cors(at, value))
            else:
                self._mirror(at, value, rule)

    def _option(self, at: JsonPath, rule: Rule, key: str, value: Any) -> None:
        if value is None:
            return
        if key in rule.options:
            self.refuse(at, f"a second filter for {key}: a release has one")
            return
        rule.options[key] = value

    def _header_operations(self, at: JsonPath, modifier: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        for key, value in modifier.items():
            if key in ("set", "add") and isinstance(value, list):
                pairs = {
                    str(e["name"]): str(e.get("value", ""))
                    for e in value
                    if isinstance(e, dict) and "name" in e
                }
                if pairs:
                    found[key] = pairs
            elif key == "remove" and isinstance(value, list):
                if value:
                    found["remove"] = [str(n) for n in value]
            else:
                self.refuse([*at, key], f"header modifier field {key} cannot be imported", key=True)
        return found or None

    def _rewrite(self, at: JsonPath, rewrite: dict[str, Any], rule: Rule) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        for key in rewrite:
            if key not in ("hostname", "path"):
                self.refuse([*at, key], f"URLRewrite field {key} cannot be imported", key=True)
        if isinstance(rewrite.get("hostname"), str):
            found["authority"] = rewrite["hostname"]
        path = rewrite.get("path")
        if isinstance(path, dict):
            kind = path.get("type")
            prefixes = [c for c, _ in rule.conditions if "prefix" in (c.get("uri") or {})]
            one_prefix = len(rule.conditions) == 1 and bool(prefixes)
            # The renderer replaces the matched prefix of a rule of one prefix match, and the
            # whole path otherwise (render/gateway_api.py `_filters`).
            if kind == "ReplacePrefixMatch" and one_prefix:
                found["uri"] = path.get("replacePrefixMatch")
            elif kind == "ReplaceFullPath" and not one_prefix:
                found["uri"] = path.get("replaceFullPath")
            else:
                self.refuse(
                    [*at, "path"],
                    f"path rewrite {kind} on a rule of {len(rule.conditions)} match(es), "
                    f"{len(prefixes)} by prefix: a release rewrites the matched prefix of a "
                    "rule of one prefix match, and the whole path otherwise",
                )
        return found or None

    def _cors(self, at: JsonPath, cors: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        for key, value in cors.items():
            if key not in _CORS_KEYS:
                self.refuse([*at, key], f"CORS field {key} cannot be imported", key=True)
            elif key == "allowOrigins":
                found[key] = [{"exact": origin} for origin in value]
            elif key == "maxAge":
                found[key] = f"{value}s"
            else:
                found[key] = value
        return found or None

    def _mirror(self, at: JsonPath, mirror: dict[str, Any], rule: Rule) -> None:
        for key in mirror:
            if key not in ("backendRef", "percent", "fraction"):
                self.refuse([*at, key], f"RequestMirror field {key} cannot be imported", key=True)
        version = self.backend([*at, "backendRef"], mirror.get("backendRef"))
        if version is None:
            return
        percent: Fraction = Fraction(100)
        if isinstance(mirror.get("percent"), int):
            percent = Fraction(mirror["percent"])
        elif isinstance(mirror.get("fraction"), dict):
            given = mirror["fraction"]
            percent = Fraction(given.get("numerator", 0) * 100, given.get("denominator", 100))
        written: int | float = int(percent) if percent.denominator == 1 else float(percent)
        if Fraction(str(written)) != percent:
            self.refuse(
                at,
                f"mirroring {float(percent):.6g}% of requests: a release's mirror percent is "
                "a decimal number",
            )
            return
        if rule.mirror is not None:
            self.refuse(at, "a second RequestMirror: a release mirrors to one version")
            return
        rule.mirror = {"version": version, "percent": written}
        port = (mirror.get("backendRef") or {}).get("port")
        rule.ports.append((port, [*at, "backendRef", "port"]))

    def _timeouts(self, at: JsonPath, timeouts: Any, rule: Rule) -> None:
        if not isinstance(timeouts, dict):
            return
        for key, value in timeouts.items():
            if key == "request" and isinstance(value, str):
                rule.options["timeout"] = value
            else:
                self.refuse(
                    [*at, key],
                    f"timeouts.{key}: a release's timeout is the whole request's "
                    "(timeouts.request)",
                    key=True,
                )


def pin_entries(ctx: Context, route: Resource, rule: Rule, index: int) -> list[dict[str, Any]]:
    """The release's `match:` entries of a pin rule (before the pin's own options): one per
    match, but for a match that only narrows the first one, which the renderer adds itself
    when a later condition would otherwise come first."""
    found: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    for number, (condition, at) in enumerate(rule.conditions):
        if not condition:
            # `{}` or PathPrefix "/": every request, before the weighted rule.
            ctx.refuse(
                route,
                at,
                f"match {number} of this rule takes every request, before the weighted rule: a "
                "release's pins take the requests that meet their conditions",
            )
            return []
        if first is not None and _narrows(condition, first):
            ctx.normalize(
                route,
                at,
                "this match narrows the rule's first one, to the same version: the pin's first "
                "condition says it, and the renderer adds such a match where a later condition "
                "would come first",
            )
            continue
        first = first or condition
        entry: dict[str, Any] = {}
        label = str(rule.name) if number == 0 else f"{rule.name}-{number}"
        default = f"pin-{rule.version}-{index + len(found)}"
        if rule.name is not None and label != default:
            if is_dns_label(label):
                entry["name"] = label
            else:
                ctx.normalize(
                    route,
                    [*rule.path, "name"],
                    f"rule name {label!r} is not a DNS-1123 label; it only labels the rule",
                )
        entry["version"] = rule.version
        entry.update(condition)
        found.append(entry)
    return found


def _narrows(condition: dict[str, Any], first: dict[str, Any]) -> bool:
    """Whether every request meeting `condition` meets `first` (each of its fields is there)."""
    for key, value in first.items():
        mine = condition.get(key)
        if isinstance(value, dict) and isinstance(mine, dict) and key != "uri":
            if any(mine.get(k) != v for k, v in value.items()):
                return False
        elif mine != value:
            return False
    return condition != first
