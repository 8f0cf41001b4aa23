"""The routing parts of a release file, read into the model: request conditions, route
options, pins and ports, and the checks on them the schema cannot say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshcanary.problem import Problem
from meshcanary.release.model import (
    ROUTE_OPTIONS,
    Condition,
    HeaderMatch,
    HeaderOperations,
    Match,
    Port,
    QueryMatch,
    Retries,
    Rewrite,
    RouteOptions,
    StringMatch,
)
from meshcanary.source import SourceDoc

# Keys only an HTTP route has a place for: a release whose ports are all tcp or tls has none.
HTTP_ONLY = ("match", "mirror", "requests", *ROUTE_OPTIONS)


def _string_match(value: Mapping[str, str] | None) -> StringMatch | None:
    if not value:
        return None
    ((kind, text),) = value.items()
    return StringMatch(kind, text)


def re2_escape(text: str) -> str:
    """`text` as an RE2 regular expression that matches it alone: only RE2's metacharacters
    escaped, so the value still reads as written (re.escape would also escape spaces and
    dashes, for Python's verbose mode)."""
    return "".join(f"\\{c}" if c in r".^$*+?()[]{}|\/" else c for c in text)


def condition(written: Mapping[str, Any]) -> Condition:
    """A `requests:` entry or a pin's conditions (a pin's cookies become a cookie header)."""
    headers = [
        HeaderMatch(header, kind, value)
        for header, match in written.get("headers", {}).items()
        for kind, value in match.items()
    ]
    for name, value in written.get("cookies", {}).items():
        # Istio matches cookies through the Cookie header, with RE2 (no lookahead): the pair
        # may stand first, last or between others.
        pair = f"{re2_escape(name)}={re2_escape(value)}"
        headers.append(HeaderMatch("cookie", "regex", f"^(.*;\\s*)?{pair}(\\s*;.*)?$"))
    return Condition(
        uri=_string_match(written.get("uri")),
        method=_string_match(written.get("method")),
        authority=_string_match(written.get("authority")),
        headers=tuple(headers),
        query_params=tuple(
            QueryMatch(param, kind, value)
            for param, match in written.get("queryParams", {}).items()
            for kind, value in match.items()
        ),
        ignore_uri_case=bool(written.get("ignoreUriCase", False)),
    )


def _operations(written: Mapping[str, Any] | None) -> HeaderOperations | None:
    if written is None:
        return None
    return HeaderOperations(
        set=tuple((str(k), str(v)) for k, v in written.get("set", {}).items()),
        add=tuple((str(k), str(v)) for k, v in written.get("add", {}).items()),
        remove=tuple(str(name) for name in written.get("remove", ())),
    )


def options(written: Mapping[str, Any]) -> RouteOptions:
    """The route options written at one place: the top level or a pin."""
    retries = written.get("retries")
    rewrite = written.get("rewrite")
    regex = rewrite.get("uriRegexRewrite") if rewrite else None
    cors = written.get("corsPolicy")
    return RouteOptions(
        timeout=written.get("timeout"),
        retries=Retries(retries["attempts"], retries.get("perTryTimeout"), retries.get("retryOn"))
        if retries
        else None,
        rewrite=Rewrite(
            uri=rewrite.get("uri"),
            uri_regex=(regex["match"], regex["rewrite"]) if regex else None,
            authority=rewrite.get("authority"),
        )
        if rewrite
        else None,
        cors=_plain(cors) if cors is not None else None,
        request_headers=_operations(written.get("requestHeaders")),
        response_headers=_operations(written.get("responseHeaders")),
    )


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for output as written."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def pins(written: list[Mapping[str, Any]]) -> tuple[Match, ...]:
    found = []
    for index, rule in enumerate(written):
        pinned = condition(rule)
        found.append(
            Match(
                name=rule.get("name", f"pin-{rule['version']}-{index}"),
                version=rule["version"],
                headers=pinned.headers,
                condition=pinned,
                options=options(rule),
            )
        )
    return tuple(found)


def ports(written: list[Mapping[str, Any]]) -> tuple[Port, ...]:
    return tuple(
        Port(
            p["port"],
            p.get("protocol", "http"),
            p.get("destinationPort"),
            tuple(p.get("sniHosts", ())),
        )
        for p in written
    )


def problems(doc: SourceDoc) -> list[Problem]:
    """What the schema cannot say about the release's routes."""
    data = doc.data
    found: list[Problem] = []
    listed = data.get("ports", [])
    for index, port in enumerate(listed):
        if "sniHosts" in port and port.get("protocol", "http") != "tls":
            found.append(
                Problem(
                    doc.location(["ports", index, "sniHosts"], key=True),
                    f"sniHosts is for protocol: tls; port {port['port']} is "
                    f"{port.get('protocol', 'http')}",
                    "remove sniHosts, or set protocol: tls",
                )
            )
    if listed and all(p.get("protocol", "http") not in ("http", "grpc") for p in listed):
        # Without an HTTP route these would be rendered nowhere: refused, never dropped.
        for key in HTTP_ONLY:
            if key in data:
                found.append(
                    Problem(
                        doc.location([key], key=True),
                        f'"{key}" applies to HTTP routes, and every port of this release is '
                        "tcp or tls",
                        "remove it, or add a port with protocol: http",
                    )
                )
    return found
