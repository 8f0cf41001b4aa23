"""Kubernetes' URL library: `url(s)`, `isURL(s)` and, on a URL, `getScheme()`, `getHost()`,
`getHostname()`, `getPort()`, `getEscapedPath()` and `getQuery()`.

A string is a URL when Go's url.ParseRequestURI accepts it (an absolute URI, or an absolute
path): this module reads URLs as Go's net/url does, which `urllib.parse` does not (it accepts
nearly anything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from cel_expr_python import cel

from meshcanary.validate.cel import opaque
from meshcanary.validate.cel.opaque import BOOL, STRING, TYPE, function, member

KIND = "kubernetes.URL"
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# What Go leaves unescaped: in a host (besides non-ASCII), in userinfo, and in a path.
_HOST_CHARACTERS = frozenset(_ALPHANUMERIC + "!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_CHARACTERS = frozenset(_ALPHANUMERIC + "-._:~!$&'()*+,;=%@")
_PATH_SAFE = "-_.~$&+,/:;=@"
_ENCODED_PATH_CHARACTERS = frozenset(_ALPHANUMERIC + _PATH_SAFE + "!'()*[]%")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Url:
    scheme: str = ""
    host: str = ""
    path: str = ""
    raw_path: str = ""
    raw_query: str = ""


def _unescape(text: str, host: bool = False) -> str:
    """Go's unescape: every % starts a valid escape; a host escapes only non-ASCII bytes."""
    bad = _BAD_ESCAPE.search(text)
    if bad:
        raise ValueError(f'invalid URL escape "{text[bad.start() : bad.start() + 3]}"')
    if host:
        for index, char in enumerate(text):
            if char == "%":
                if text[index : index + 3] != "%25" and int(text[index + 1], 16) < 8:
                    raise ValueError(f'invalid URL escape "{text[index : index + 3]}"')
            elif char < "\x80" and char not in _HOST_CHARACTERS:
                raise ValueError(f'invalid character "{char}" in host name')
    return unquote_to_bytes(text).decode("utf-8", "replace")


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _host(authority: str) -> str:
    """The host[:port] of an authority, checked and unescaped as Go's parseAuthority does."""
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1 :])
    if at >= 0:
        userinfo = authority[:at]
        if not set(userinfo) <= _USERINFO_CHARACTERS:
            raise ValueError("net/url: invalid userinfo")
        for part in userinfo.split(":", 1):
            _unescape(part)
    return host


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise ValueError("missing ']' in host")
        if not _valid_port(host[close + 1 :]):
            raise ValueError(f'invalid port "{host[close + 1 :]}" after host')
        zone = host.find("%25", 0, close)
        if zone >= 0:  # an IPv6 zone (RFC 6874) may escape what a host may not
            head, tail = _unescape(host[:zone], host=True), _unescape(host[close:], host=True)
            return head + _unescape(host[zone:close]) + tail
    elif ":" in host and not _valid_port(host[host.rfind(":") :]):
        raise ValueError(f'invalid port "{host[host.rfind(":") :]}" after host')
    return _unescape(host, host=True)


def _split_scheme(raw: str) -> tuple[str, str]:
    for index, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if "0" <= char <= "9" or char in "+-.":
            if index == 0:
                return "", raw
            continue
        if char == ":":
            if index == 0:
                raise ValueError("missing protocol scheme")
            return raw[:index], raw[index + 1 :]
        return "", raw
    return "", raw


def parse(raw: str, request: bool = True) -> Url:
    """`raw` read as Go's url.ParseRequestURI (`request`) or url.Parse reads it."""
    if any(c < " " or c == "\x7f" for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    if not request:
        raw, _, fragment = raw.partition("#")
        _unescape(fragment)
    elif not raw:
        raise ValueError("empty url")
    if raw == "*":
        return Url(path="*")
    scheme, rest = _split_scheme(raw)
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return Url(scheme=scheme, raw_query=query)  # opaque: mailto:someone
        if request:
            raise ValueError("invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        host, rest = _host(authority), slash + path
    path = _unescape(rest)
    return Url(scheme, host, path, "" if _escape_path(path) == rest else rest, query)


def _escape_path(path: str) -> str:
    return quote(path.encode("utf-8"), safe=_PATH_SAFE)


def escaped_path(url: Url) -> str:
    """Go's URL.EscapedPath: the path as written when that is a valid form of it."""
    if url.raw_path and set(url.raw_path) <= _ENCODED_PATH_CHARACTERS:
        try:
            if _unescape(url.raw_path) == url.path:
                return url.raw_path
        except ValueError:
            pass
    return "*" if url.path == "*" else _escape_path(url.path)


def _split_host_port(host: str) -> tuple[str, str]:
    colon = host.rfind(":")
    port = ""
    if colon >= 0 and _valid_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def query(url: Url) -> dict[str, list[str]]:
    """Go's URL.Query: values by key, pairs that do not unescape (or hold `;`) left out."""
    values: dict[str, list[str]] = {}
    for pair in url.raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key, value = (_unescape(part.replace("+", " ")) for part in (key, value))
        except ValueError:
            continue
        values.setdefault(key, []).append(value)
    return values


def _is_url(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def library() -> Any:
    def url(text: str) -> dict[str, str]:
        try:
            parse(text)
            parse(text, request=False)
        except ValueError as exc:
            raise ValueError(f"URL parse error during conversion from string: {exc}") from None
        return opaque.wrap(KIND, text)

    def read(value: Any) -> Url:
        return parse(opaque.unwrap(KIND, value), request=False)

    getters = {
        "getScheme": lambda u: read(u).scheme,
        "getHost": lambda u: read(u).host,
        "getHostname": lambda u: _split_host_port(read(u).host)[0],
        "getPort": lambda u: _split_host_port(read(u).host)[1],
        "getEscapedPath": lambda u: escaped_path(read(u)),
    }
    return cel.CelExtension(
        "kubernetes.urls",
        [
            cel.FunctionDecl("url", [function("url", TYPE, [STRING], url)]),
            cel.FunctionDecl("isURL", [function("isURL", BOOL, [STRING], _is_url)]),
            *(
                cel.FunctionDecl(name, [member(name, STRING, [TYPE], getter)])
                for name, getter in getters.items()
            ),
            cel.FunctionDecl(
                "getQuery",
                [
                    member(
                        "getQuery",
                        cel.Type.Map(STRING, cel.Type.List(STRING)),
                        [TYPE],
                        lambda u: query(read(u)),
                    )
                ],
            ),
        ],
    )
