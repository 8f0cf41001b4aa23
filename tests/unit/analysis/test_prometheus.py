"""The Prometheus client against real servers: Prometheus itself (the `prometheus` fixture, and
two more started here with tight limits), and small `http.server`s that stand for what can sit
between meshcanary and Prometheus (a misconfigured proxy, a redirect, a silent socket). No mock
of the HTTP API: every answer crosses a real socket.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshcanary.analysis import prometheus as client_module
from meshcanary.analysis.prometheus import Prometheus, PrometheusError, Sample
from meshcanary.errors import InputError
from tests.support import prometheus as prometheus_server
from tests.support.metrics import requests
from tests.support.scenarios import BY_NAME, START, step_start

TOKEN = "s3cret-token-value"  # noqa: S105 (a test token; the tests look for it in messages)
HEALTHY = BY_NAME["healthy"]
V2 = 'reporter="destination",destination_workload_namespace="healthy",destination_workload="micro-api-v2"'
VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


def _limited(tmp: Path, *flags: str) -> Iterator[prometheus_server.Server]:
    """A second prometheus over two hours of `healthy`, started with `flags`."""
    prometheus_server.require_tools()
    prometheus_server.backfill_workloads(HEALTHY.workloads, START, START + 7200, tmp / "tsdb")
    server = prometheus_server.start(tmp / "tsdb", tmp / "work", *flags)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prometheus_server.Server]:
    """A prometheus that gives every query 1 ms."""
    yield from _limited(tmp_path_factory.mktemp("impatient"), "--query.timeout=1ms")


@pytest.fixture(scope="module")
def frugal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prometheus_server.Server]:
    """A prometheus that loads at most 100 samples for a query."""
    yield from _limited(tmp_path_factory.mktemp("frugal"), "--query.max-samples=100")


# --- Prometheus itself ------------------------------------------------------------------------


def test_a_query_gives_the_generated_values(prometheus: prometheus_server.Server) -> None:
    at = step_start(2) + 30 * 60
    found = Prometheus(prometheus.url).query(
        f"sum by (destination_version) (increase(istio_requests_total{{{V2}}}[10m]))", at
    )
    [sample] = found
    assert sample.labels == {"destination_version": "v2"}
    assert sample.value == pytest.approx(requests(HEALTHY.workloads[1], at - 600, at), rel=0.01)


def test_a_range_query_gives_the_generated_values(prometheus: prometheus_server.Server) -> None:
    start, end = step_start(1) + 600, step_start(3) + 600
    [series] = Prometheus(prometheus.url).query_range(
        f"sum(increase(istio_requests_total{{{V2}}}[10m]))", start, end, 300
    )
    assert series.labels == {}
    assert [t for t, _ in series.points] == list(range(start, end + 1, 300))
    for t, value in series.points:
        assert value == pytest.approx(requests(HEALTHY.workloads[1], t - 600, t), rel=0.01), t


def test_a_scalar_is_one_sample_without_labels_and_nan_and_inf_come_through(
    prometheus: prometheus_server.Server,
) -> None:
    client = Prometheus(prometheus.url)
    assert client.query("1 + 1", START) == [Sample({}, 2.0)]
    [nan] = client.query("0 / 0", START)
    assert math.isnan(nan.value)
    assert client.query("-1 / 0", START) == [Sample({}, -math.inf)]
    assert client.query(f"sum(istio_requests_total{{{V2}}})", START) == []


def test_a_result_of_another_type_is_a_bad_response(prometheus: prometheus_server.Server) -> None:
    with pytest.raises(PrometheusError) as raised:
        Prometheus(prometheus.url).query('"a string"', START)
    assert raised.value.kind == "bad-response"
    assert "a string result where a vector was expected" in raised.value.message


def test_bad_promql_is_a_bad_query_with_prometheus_words(
    prometheus: prometheus_server.Server,
) -> None:
    with pytest.raises(PrometheusError) as raised:
        Prometheus(prometheus.url).query("sum(rate(istio_requests_total[5m])", START)
    assert raised.value.kind == "bad-query"
    message = raised.value.message
    assert message.startswith(f"Prometheus at {prometheus.url}/api/v1/query refused the query: ")
    assert "parse error" in message and "\n" not in message


def test_a_query_prometheus_gives_up_on_is_a_timeout(
    impatient: prometheus_server.Server,
) -> None:
    with pytest.raises(PrometheusError) as raised:
        Prometheus(impatient.url, timeout=30).query_range(
            "sum by (le) (rate(istio_request_duration_milliseconds_bucket[1h]))",
            START,
            START + 7200,
            1,
        )
    assert raised.value.kind == "timeout"
    assert raised.value.message.startswith(f"Prometheus at {impatient.url}/api/v1/query_range")
    # Prometheus' own words: which depends on where the 1 ms ran out (evaluating the
    # expression, or still reading the series: then an HTTP 422 of errorType execution).
    said = raised.value.message
    assert "query timed out" in said or "context deadline exceeded" in said


def test_too_many_samples_is_an_http_error_422(frugal: prometheus_server.Server) -> None:
    with pytest.raises(PrometheusError) as raised:
        Prometheus(frugal.url).query("istio_requests_total[1h]", START + 7000)
    assert raised.value.kind == "http-error"
    assert "HTTP 422" in raised.value.message
    assert "too many samples" in raised.value.message


# --- What is not Prometheus -------------------------------------------------------------------


def test_a_port_nobody_listens_on_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PrometheusError) as raised:
        Prometheus(f"http://127.0.0.1:{port}", token=TOKEN).query("up", START)
    assert raised.value.kind == "unreachable"
    assert raised.value.message == (
        f"cannot reach Prometheus at http://127.0.0.1:{port}/api/v1/query: Connection refused"
    )


def test_a_socket_that_never_answers_times_out_within_the_clients_timeout() -> None:
    # A real listening socket: the kernel accepts the connection, nobody ever reads or answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(PrometheusError) as raised:
            Prometheus(url, timeout=0.5).query("up", START)
        took = time.monotonic() - began
    assert raised.value.kind == "timeout"
    assert raised.value.message == f"Prometheus at {url}/api/v1/query did not answer within 0.5 s"
    assert 0.4 < took < 3


@pytest.mark.parametrize(
    ("says", "kind", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "bad-response", "answered not HTTP (BadStatusLine)"),
        (b"", "unreachable", "closed the connection without answering"),
    ],
)
def test_a_socket_that_does_not_speak_http(says: bytes, kind: str, message: str) -> None:
    # A real socket on the other end: it reads the request, says `says` and hangs up.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"

        def answer() -> None:
            connection, _ = listening.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(says)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        error = _failure(url)
        thread.join(timeout=10)
    assert error.kind == kind
    assert error.message.startswith(f"Prometheus at {url}/api/v1/query {message}")


def test_a_socket_that_resets_the_connection_is_a_hang_up() -> None:
    # A real socket closed with SO_LINGER 0: the kernel answers the request with a reset, as it
    # does when a server closes with the request unread. The same hang-up as an end of file.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"

        def reset() -> None:
            connection, _ = listening.accept()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

        thread = threading.Thread(target=reset, daemon=True)
        thread.start()
        error = _failure(url)
        thread.join(timeout=10)
    assert error.kind == "unreachable"
    assert (
        error.message == f"Prometheus at {url}/api/v1/query closed the connection without answering"
    )


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fake:
    """A small real HTTP server: answers each path as told and records what it was sent."""

    url: str
    answers: dict[str, Answer]
    seen: list[tuple[str, dict[str, str]]]


@pytest.fixture
def fake() -> Iterator[Fake]:
    yield from _serve()


@pytest.fixture
def other() -> Iterator[Fake]:
    yield from _serve()


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Fake]:
    answers: dict[str, Answer] = {}
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, dict(self.headers)))
            answer = answers.get(self.path, Answer(404, b"not found"))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # A short poll: shutdown() waits for it, at every test's end.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield Fake(f"{scheme}://127.0.0.1:{server.server_address[1]}", answers, seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Fake, Path]]:
    """An HTTPS server with a self-signed certificate for 127.0.0.1, and that certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for fake in _serve(context):
        fake.answers["/api/v1/query"] = Answer(body=json.dumps(VECTOR).encode())
        yield fake, cert


def _failure(url: str, **options: object) -> PrometheusError:
    with pytest.raises(PrometheusError) as raised:
        Prometheus(url, token=TOKEN, **options).query("up", START)  # type: ignore[arg-type]
    assert TOKEN not in raised.value.message and TOKEN not in str(raised.value)
    return raised.value


def test_a_proxy_answering_other_json_or_html_is_a_bad_response(fake: Fake) -> None:
    # Stands for a misconfigured proxy in front of Prometheus: a 200 that is not the API.
    fake.answers["/json/api/v1/query"] = Answer(body=b'{"hello": "world"}')
    fake.answers["/html/api/v1/query"] = Answer(body=b"<html><body>Sign in</body></html>")
    fake.answers["/empty/api/v1/query"] = Answer(body=b'{"status": "success"}')
    fake.answers["/values/api/v1/query"] = Answer(
        body=b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
        b'"value":[1,2]}]}}'
    )
    json_error = _failure(f"{fake.url}/json")
    assert json_error.kind == "bad-response"
    assert json_error.message == (
        f"Prometheus at {fake.url}/json/api/v1/query answered JSON that is not Prometheus' API "
        "answer (no status): is the URL its API?"
    )
    html_error = _failure(f"{fake.url}/html")
    assert html_error.kind == "bad-response"
    assert "not JSON (it begins '<html><body>Sign in</body></html>')" in html_error.message
    assert _failure(f"{fake.url}/empty").kind == "bad-response"
    assert "not a string" in _failure(f"{fake.url}/values").message


def test_a_proxys_error_page_is_an_http_error_with_its_status(fake: Fake) -> None:
    fake.answers["/api/v1/query"] = Answer(502, b"<html>Bad Gateway</html>")
    error = _failure(fake.url)
    assert error.kind == "http-error"
    assert error.message == f"Prometheus at {fake.url}/api/v1/query answered HTTP 502 Bad Gateway"


def test_an_answer_over_the_cap_is_a_bad_response_and_is_not_read_whole(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_BODY", 1024)  # 64 MiB is the real cap
    result = [{"metric": {"n": str(n)}, "value": [1, "1"]} for n in range(100)]
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
    fake.answers["/api/v1/query"] = Answer(body=body.encode())
    error = _failure(fake.url)
    assert error.kind == "bad-response" and "an answer over" in error.message


def test_the_token_reaches_the_server_under_a_path_prefix(fake: Fake) -> None:
    fake.answers["/prometheus/api/v1/query"] = Answer(body=json.dumps(VECTOR).encode())
    client = Prometheus(f"{fake.url}/prometheus/", token=TOKEN)
    assert client.query("up", START) == []
    [(path, headers)] = fake.seen
    assert path == "/prometheus/api/v1/query"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client)


def test_a_redirect_to_another_port_is_not_followed_and_the_token_stays(
    fake: Fake, other: Fake
) -> None:
    other.answers["/api/v1/query"] = Answer(body=json.dumps(VECTOR).encode())
    target = f"{other.url}/api/v1/query"
    fake.answers["/api/v1/query"] = Answer(302, headers={"Location": target})
    error = _failure(fake.url)
    assert error.kind == "http-error"
    assert error.message == (
        f"Prometheus at {fake.url}/api/v1/query answered HTTP 302, a redirect to {target}, "
        "which is not followed: give that URL if it is the API"
    )
    assert [path for path, _ in fake.seen] == ["/api/v1/query"]
    assert other.seen == []  # neither the token nor the query went there


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("file:///etc/passwd", "only http:// and https:// URLs of a host are supported"),
        ("ftp://prometheus.example", "only http:// and https:// URLs of a host are supported"),
        ("prometheus.example:9090", "only http:// and https:// URLs of a host are supported"),
        ("http://", "only http:// and https:// URLs of a host are supported"),
        ("http://admin:hunter2@prometheus.example", "holds credentials"),
        ("http://prometheus.example/?x=1", "a base URL has no query or fragment"),
        ("https://prometheus.example:99999", "its port is not a number from 0 to 65535"),
    ],
)
def test_a_url_prometheus_cannot_be_at_is_refused_at_construction(url: str, said: str) -> None:
    with pytest.raises(InputError) as raised:
        Prometheus(url, token=TOKEN)
    assert said in str(raised.value)
    assert "hunter2" not in str(raised.value) and TOKEN not in str(raised.value)


def test_tls_is_verified_unless_told_otherwise(tls_server: tuple[Fake, Path]) -> None:
    fake, cert = tls_server
    error = _failure(fake.url)
    assert error.kind == "unreachable"
    assert error.message.startswith(
        f"cannot reach Prometheus at {fake.url}/api/v1/query: its TLS certificate is not trusted"
    )
    assert fake.seen == []  # nothing was sent, the token least of all
    assert Prometheus(fake.url, token=TOKEN, ca_file=str(cert)).query("up", START) == []
    assert Prometheus(fake.url, verify=False).query("up", START) == []
    assert fake.seen[0][1]["Authorization"] == f"Bearer {TOKEN}"


def test_https_to_a_plain_http_server_is_unreachable(fake: Fake) -> None:
    error = _failure(fake.url.replace("http://", "https://"))
    assert error.kind == "unreachable"
    assert error.message.startswith(
        f"cannot reach Prometheus at {fake.url.replace('http://', 'https://')}/api/v1/query: "
    )
