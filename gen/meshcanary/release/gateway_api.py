"""What a release file may not say when its routes are Gateway API routes (`routing:
gateway-api`): the fields the Gateway API's standard channel (v1.6) has no place for, each
refused at its line rather than dropped from the render."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from meshcanary.problem import Problem
from meshcanary.source import SourceDoc

HINT = "remove it, or keep this release on Istio's API with routing: istio"
# HTTPRoute's `method` enum.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
# The fields of Istio's CorsPolicy the Gateway API's CORS filter has, and a duration it reads
# as whole seconds.
_CORS_KEYS = (
    "allowOrigins",
    "allowMethods",
    "allowHeaders",
    "exposeHeaders",
    "maxAge",
    "allowCredentials",
)
_WHOLE_SECONDS = re.compile(r"^((\d+)h)?((\d+)m)?((\d+)s)?$")


def problems(doc: SourceDoc) -> list[Problem]:
    """Each field of the release that the Gateway API cannot render, at its place."""
    data = doc.data
    grpc = any(p.get("protocol") == "grpc" for p in data.get("ports", []))
    found = list(_options(doc, data, [], grpc))
    for index, written in enumerate(data.get("requests", [])):
        found += _condition(doc, written, ["requests", index], grpc)
    for index, rule in enumerate(data.get("match", [])):
        found += _condition(doc, rule, ["match", index], grpc)
        found += _options(doc, rule, ["match", index], grpc)
    prefixes = [r for r in data.get("requests", []) if "prefix" in (r.get("uri") or {})]
    rewrite = data.get("rewrite") or {}
    if "uri" in rewrite and len(data.get("requests", [])) > 1 and prefixes:
        found.append(
            Problem(
                doc.location(["rewrite", "uri"]),
                "rewrite.uri with several requests: the Gateway API replaces a matched prefix "
                "only in a rule of one match",
                HINT,
            )
        )
    return found


def _options(
    doc: SourceDoc, written: Mapping[str, Any], at: list[str | int], grpc: bool
) -> Iterator[Problem]:
    if grpc:
        for key in ("timeout", "rewrite", "corsPolicy"):
            if key in written:
                yield Problem(
                    doc.location([*at, key], key=True),
                    f"{key}: a GRPCRoute has no {key} (this release has a grpc port)",
                    "remove it, or route that port as protocol: http",
                )
    if "retries" in written:
        yield Problem(
            doc.location([*at, "retries"], key=True),
            "retries: the Gateway API's standard channel has no retries (HTTPRoute's retry "
            "field is experimental)",
            HINT,
        )
    rewrite = written.get("rewrite") or {}
    if "uriRegexRewrite" in rewrite:
        yield Problem(
            doc.location([*at, "rewrite", "uriRegexRewrite"], key=True),
            "uriRegexRewrite: the Gateway API rewrites a whole path or a matched prefix, not "
            "by a regular expression",
            HINT,
        )
    cors = written.get("corsPolicy")
    if isinstance(cors, dict):
        yield from _cors(doc, cors, [*at, "corsPolicy"])


def _cors(doc: SourceDoc, cors: Mapping[str, Any], at: list[str | int]) -> Iterator[Problem]:
    for key in cors:
        if key not in _CORS_KEYS:
            yield Problem(
                doc.location([*at, key], key=True),
                f"corsPolicy.{key}: the Gateway API's CORS filter has no such field",
                HINT,
            )
    for index, origin in enumerate(cors.get("allowOrigins", [])):
        if not (isinstance(origin, dict) and set(origin) == {"exact"}):
            yield Problem(
                doc.location([*at, "allowOrigins", index]),
                "an origin of the Gateway API's CORS filter is written out whole ({exact: ...})",
                "write each origin as {exact: https://...}",
            )
    max_age = cors.get("maxAge")
    if max_age is not None and not _WHOLE_SECONDS.match(str(max_age)):
        yield Problem(
            doc.location([*at, "maxAge"]),
            f"maxAge {max_age}: the Gateway API's CORS filter takes whole seconds",
            "write it in h, m and s, such as 24h or 90s",
        )


# A gRPC method as a path: /package.Service/Method, or /package.Service/ for all its methods.
_GRPC_PATH = re.compile(
    r"^/\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*/([A-Za-z_][A-Za-z_0-9]*)?$"
)


def _condition(
    doc: SourceDoc, written: Mapping[str, Any], at: list[str | int], grpc: bool
) -> Iterator[Problem]:
    if grpc:
        for key in ("method", "queryParams"):
            if key in written:
                yield Problem(
                    doc.location([*at, key], key=True),
                    f"{key}: a GRPCRoute matches the gRPC method (by uri) and headers only "
                    "(this release has a grpc port)",
                    "remove it, or route that port as protocol: http",
                )
        uri = written.get("uri")
        if isinstance(uri, dict):
            ((kind, value),) = uri.items()
            exact = kind == "exact" and _GRPC_PATH.match(value) and not value.endswith("/")
            service = kind == "prefix" and _GRPC_PATH.match(value) and value.endswith("/")
            if not (exact or service):
                yield Problem(
                    doc.location([*at, "uri"]),
                    f"uri {{{kind}: {value}}}: a GRPCRoute matches a gRPC method, "
                    "{exact: /package.Service/Method} or {prefix: /package.Service/}",
                    "write the method as its path, or route that port as protocol: http",
                )
    if "authority" in written:
        yield Problem(
            doc.location([*at, "authority"], key=True),
            "authority: a Gateway API route matches hosts by its hostnames, not per rule",
            "route that host in the release's hosts, or keep it on routing: istio",
        )
    if written.get("ignoreUriCase"):
        yield Problem(
            doc.location([*at, "ignoreUriCase"], key=True),
            "ignoreUriCase: the Gateway API matches paths as written",
            HINT,
        )
    method = written.get("method")
    if isinstance(method, dict):
        ((kind, value),) = method.items()
        if kind != "exact" or value not in METHODS:
            yield Problem(
                doc.location([*at, "method"]),
                f"method {{{kind}: {value}}}: a Gateway API route matches one method exactly, "
                f"one of {', '.join(METHODS)}",
                HINT,
            )
