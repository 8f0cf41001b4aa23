"""Prometheus' HTTP API as the analysis reads it: instant and range queries.

Standard library only. Every failure is a `PrometheusError` whose `kind` says what went wrong
(`unreachable`, `timeout`, `http-error`, `bad-query`, `bad-response`) and whose `message` is one
line for a person: what failed, the endpoint (never a credential), and Prometheus' own error
text when it gave one. The bearer token goes only to the URL given: redirects are refused,
since a proxy that redirects (to a login page, to https) would otherwise receive it or hand
back a page that is not the API; the message names where the redirect pointed. Queries are
POSTed form-encoded, as Prometheus' API allows, so a long PromQL meets no URL length limit.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal, NoReturn

from meshcanary import __version__
from meshcanary.errors import InputError
from meshcanary.problem import printable

Kind = Literal["unreachable", "timeout", "http-error", "bad-query", "bad-response"]

MAX_BODY = 64 * 1024 * 1024  # a larger answer is refused, not read into memory
_ERROR_BODY = 64 * 1024  # enough for Prometheus' error JSON; a proxy's page is cut short
_MAX_TEXT = 300  # the longest quote of Prometheus' error in a message


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and value (NaN and ±Inf as Prometheus
    gives them)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (Unix seconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class PrometheusError(Exception):
    """A query that gave no answer; `kind` says why, `message` says it for a person."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Hands a redirect back as the HTTP error it is, so it is never followed."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


def _shown(url: str) -> str:
    """`url` without user information, query or fragment, printable: what a message may show."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return printable(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _quote(text: str) -> str:
    """Prometheus' (or a proxy's) text, on one line and not too long."""
    line = printable(" ".join(text.split()))
    return line if len(line) <= _MAX_TEXT else f"{line[:_MAX_TEXT]}..."


def _number(value: object) -> float:
    if not isinstance(value, str):
        raise TypeError(f"a value is {type(value).__name__}, not a string")
    return float(value)  # Prometheus writes "NaN", "+Inf" and "-Inf", which float() reads


class Prometheus:
    """A Prometheus server's HTTP API at `url` (a path prefix such as /prometheus is kept).

    `timeout` bounds each wait on the network, in seconds; Prometheus is asked to stop a query
    sooner, so a slow query is reported with its own words rather than as silence."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        verify: bool = True,
        ca_file: str | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        try:
            parts.port  # noqa: B018 (read to check it)
        except ValueError:
            host = printable(parts.hostname or "")
            raise InputError(
                f"error: Prometheus URL {parts.scheme}://{host}: its port is not a number "
                "from 0 to 65535"
            ) from None
        shown = _shown(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"error: Prometheus URL {shown}: only http:// and https:// URLs of a host are "
                "supported"
            )
        if parts.username is not None or parts.password is not None:
            raise InputError(
                f"error: Prometheus URL {shown}: holds credentials, which would be printed "
                "with it\n  hint: give a bearer token instead (from an environment variable)"
            )
        if parts.query or parts.fragment:
            raise InputError(f"error: Prometheus URL {shown}: a base URL has no query or fragment")
        if not timeout > 0:
            raise InputError(f"error: Prometheus timeout {timeout}: must be above 0 seconds")
        self.url = urllib.parse.urlunsplit(
            (parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", "")
        )
        self._token = token
        self.timeout = timeout
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise InputError(f"error: CA file {ca_file}: {error}") from error
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _RefuseRedirects()
        )

    def __repr__(self) -> str:
        return f"Prometheus({_shown(self.url)!r})"  # never the token

    def query(self, promql: str, at: float) -> list[Sample]:
        """The instant query `promql` evaluated at `at` (Unix seconds)."""
        endpoint = f"{self.url}/api/v1/query"
        data = self._call(endpoint, {"query": promql, "time": f"{at:.3f}"})
        kind, result = data["resultType"], data["result"]
        try:
            if kind == "scalar":
                return [Sample({}, _number(result[1]))]
            if kind != "vector":
                self._bad_response(endpoint, f"a {kind} result where a vector was expected")
            return [Sample(_labels(item["metric"]), _number(item["value"][1])) for item in result]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            self._bad_response(endpoint, f"a vector result that is not one ({error})")

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """The range query `promql` from `start` to `end` (Unix seconds) every `step` seconds."""
        endpoint = f"{self.url}/api/v1/query_range"
        form = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        data = self._call(endpoint, {**form, "step": f"{step:.3f}"})
        kind, result = data["resultType"], data["result"]
        if kind != "matrix":
            self._bad_response(endpoint, f"a {kind} result where a matrix was expected")
        try:
            return [
                Series(
                    _labels(item["metric"]),
                    tuple((float(t), _number(v)) for t, v in item["values"]),
                )
                for item in result
            ]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            self._bad_response(endpoint, f"a matrix result that is not one ({error})")

    def _call(self, endpoint: str, form: dict[str, str]) -> dict[str, Any]:
        """POST `form` to `endpoint`; the `data` of Prometheus' success answer."""
        # Prometheus gives up a little before we do, so its own timeout error reaches us.
        form["timeout"] = f"{max(self.timeout / 2, self.timeout - 5):.3f}"
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked: http or https)
            endpoint, data=urllib.parse.urlencode(form).encode(), method="POST"
        )
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"meshcanary/{__version__}")
        if self._token is not None:
            # Unredirected: never copied onto a redirect, should one ever be followed.
            request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        shown = _shown(endpoint)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_BODY + 1)
        except urllib.error.HTTPError as error:
            self._http_error(shown, error)
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, OSError):
                self._network_error(shown, reason)
            message = f"cannot reach Prometheus at {shown}: {_quote(str(reason))}"
            raise PrometheusError("unreachable", message) from error
        except (OSError, http.client.HTTPException) as error:
            self._network_error(shown, error)
        if len(body) > MAX_BODY:
            self._bad_response(shown, f"an answer over {MAX_BODY // (1024 * 1024)} MiB")
        document = self._document(shown, body)
        if document.get("status") != "success":
            self._api_error(shown, None, document)
        data = document.get("data")
        if not isinstance(data, dict) or "result" not in data:
            self._bad_response(shown, "success with no result")
        if not isinstance(data.get("resultType"), str):
            self._bad_response(shown, "a result of no type")
        return data

    def _document(self, shown: str, body: bytes) -> dict[str, Any]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            start = body[:60].decode("utf-8", "replace")
            self._bad_response(shown, f"not JSON (it begins {_quote(start)!r})")
        if not isinstance(document, dict) or document.get("status") not in ("success", "error"):
            self._bad_response(shown, "JSON that is not Prometheus' API answer (no status)")
        return document

    def _http_error(self, shown: str, error: urllib.error.HTTPError) -> NoReturn:
        try:
            body = error.read(_ERROR_BODY)
        except (OSError, http.client.HTTPException):
            body = b""
        if 300 <= error.code < 400:
            where = error.headers.get("Location", "")
            target = _shown(urllib.parse.urljoin(shown, where)) if where else "nowhere"
            raise PrometheusError(
                "http-error",
                f"Prometheus at {shown} answered HTTP {error.code}, a redirect to {target}, "
                "which is not followed: give that URL if it is the API",
            )
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            document = None
        self._api_error(shown, error.code, document if isinstance(document, dict) else None)

    def _api_error(self, shown: str, code: int | None, document: dict[str, Any] | None) -> NoReturn:
        """Prometheus' error answer (`document`, when the body was JSON) as a `PrometheusError`."""
        said = document.get("error") if document else None
        error_type = document.get("errorType") if document else None
        text = f": {_quote(said)}" if isinstance(said, str) else ""
        # A deadline met while the series are still being read comes as an `execution` error
        # (HTTP 422, "expanding series: context deadline exceeded"): a timeout all the same.
        deadline = isinstance(said, str) and "context deadline exceeded" in said
        if error_type == "timeout" or deadline:
            raise PrometheusError("timeout", f"Prometheus at {shown} gave up on the query{text}")
        if error_type == "bad_data" and code in (400, None):
            raise PrometheusError("bad-query", f"Prometheus at {shown} refused the query{text}")
        if code is None:
            self._bad_response(shown, f"status {document and document.get('status')!r}{text}")
        reason = http.client.responses.get(code, "")
        raise PrometheusError(
            "http-error", f"Prometheus at {shown} answered HTTP {code} {reason}{text}"
        )

    def _network_error(self, shown: str, error: BaseException) -> NoReturn:
        if isinstance(error, TimeoutError | socket.timeout):
            raise PrometheusError(
                "timeout", f"Prometheus at {shown} did not answer within {self.timeout:g} s"
            )
        # A close with the request still unread arrives as a reset rather than an end of file:
        # the same hang-up, told apart by the timing of the packets only.
        if isinstance(error, http.client.RemoteDisconnected | ConnectionResetError):
            raise PrometheusError(
                "unreachable", f"Prometheus at {shown} closed the connection without answering"
            )
        if isinstance(error, http.client.IncompleteRead):
            self._bad_response(shown, "an answer cut short")
        if isinstance(error, http.client.HTTPException):
            self._bad_response(shown, f"not HTTP ({type(error).__name__})")
        if isinstance(error, ssl.SSLCertVerificationError):
            raise PrometheusError(
                "unreachable",
                f"cannot reach Prometheus at {shown}: its TLS certificate is not trusted "
                f"({_quote(error.verify_message or str(error))}); give its CA file",
            )
        if isinstance(error, socket.gaierror):
            raise PrometheusError(
                "unreachable",
                f"cannot reach Prometheus at {shown}: unknown host ({error.strerror})",
            )
        what = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise PrometheusError("unreachable", f"cannot reach Prometheus at {shown}: {_quote(what)}")

    def _bad_response(self, shown: str, what: str) -> NoReturn:
        raise PrometheusError(
            "bad-response", f"Prometheus at {shown} answered {what}: is the URL its API?"
        )


def _labels(metric: object) -> dict[str, str]:
    if not isinstance(metric, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metric.items()
    ):
        raise TypeError("labels that are not strings")
    return dict(metric)
