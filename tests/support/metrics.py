"""Istio's standard metrics, generated from a description of each workload, as OpenMetrics text.

The text is what `promtool tsdb create-blocks-from openmetrics` backfills (`prometheus.py`).
Nothing is random: the same workloads give the same bytes.

A `Workload` is one Deployment (`<service>-<version>`, as meshcanary renders it) described by
functions of time (Unix seconds):

- `rps(t)`: requests per second, for example `weighted(20, schedule)`: a version's share of 20
  requests/s under a canary's weight schedule;
- `errors(t)`: the fraction of requests answered 503 (5xx). Besides those, `NOT_FOUND` (1 %) of
  all requests are answered 404, which is not a failure; the rest are 200;
- `latency_ms(t)`: the median latency. Latencies are log-normal around it with `SPREAD` (sigma
  of ln(latency)) = 0.5, so the true p99 is median * e^(0.5 * 2.326), about 3.2 * median
  (`percentile`). `histogram_quantile` does not see the true p99: it interpolates linearly
  inside the bucket the quantile falls in, and `histogram_percentile` gives that value, the
  one a test should expect from Prometheus;
- `gaps`: half-open spans [a, b) with no samples at all (a failed scrape; the pod still served
  requests, so the counters have grown when the samples come back);
- `resets`: times at which the counters restart from 0 (a restarted pod). The first scrape at
  or after the reset reports only the requests served since it.

The series (`openmetrics`), for each workload and each response code, as Istio labels them:
`istio_requests_total` and the histogram `istio_request_duration_milliseconds` (`_bucket` with
Istio's default buckets, `_sum`, `_count`) reported by the destination
(`reporter="destination"`), and `istio_requests_total` once more with `reporter="source"`: the
same requests seen by the ingress gateway (`source_workload="istio-ingressgateway"`), so a query
that forgets `reporter="destination"` counts every request twice. The histogram is written only
by the destination: a quantile cannot show the double counting, and the copy would double the
size of the backfill.

Scrapes are every `SCRAPE` (30) seconds from `start`. The sample at t counts the requests of
(t - scrape, t] at the rates of the interval's midpoint (t - scrape/2): the functions may step
at scrape times without ambiguity. Counters are whole numbers (the requests served so far,
rounded down), as Istio's are; a series appears at the first scrape where it has counted one
request (since its last reset), as Istio creates it on the first request with its labels.
`requests` gives the truth a test compares Prometheus' answers with.

`openmetrics(workloads, start, end)` is the whole text; `openmetrics_blocks` the same samples
cut at every 2 h, which promtool reads once instead of once per block (`prometheus.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist

START = 1795392000  # 2026-11-23T00:00:00Z: the backfilled day starts here
DAY = 86400
SCRAPE = 30.0
# Istio's default buckets for istio_request_duration_milliseconds (+Inf besides).
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
BUCKETS += (300000, 600000, 1800000, 3600000)
SPREAD = 0.5  # sigma of ln(latency): p99 = median * e^(SPREAD * 2.326)
NOT_FOUND = 0.01  # the fraction of requests answered 404, in every workload
CODES = ("200", "404", "503")
INGRESS = "istio-ingressgateway"

Function = Callable[[float], float]


def constant(value: float) -> Function:
    """A function of time that is always `value`."""
    return lambda _t: value


def stepping(before: float, at: float, after: float) -> Function:
    """`before` until time `at`, `after` from it on."""
    return lambda t: before if t < at else after


NO_ERRORS, FIFTY_MS = constant(0.0), constant(50.0)


@dataclass(frozen=True)
class Workload:
    """One version of a service: a Deployment `<service>-<version>` in `namespace`."""

    namespace: str
    service: str
    version: str
    rps: Function
    errors: Function = NO_ERRORS
    latency_ms: Function = FIFTY_MS
    gaps: tuple[tuple[float, float], ...] = ()
    resets: tuple[float, ...] = ()

    @property
    def workload(self) -> str:
        return f"{self.service}-{self.version}"

    def in_gap(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.gaps)


def weighted(total_rps: float, schedule: Sequence[tuple[float, int]]) -> Function:
    """A version's requests per second when it gets `weight` % of `total_rps` from each time of
    `schedule` ([(from t, weight %)], in time order) on; none before the schedule's first time."""

    def rps(t: float) -> float:
        weight = 0
        for since, percent in schedule:
            if since <= t:
                weight = percent
        return total_rps * weight / 100

    return rps


def cdf(ms: float, median: float) -> float:
    """The fraction of requests faster than `ms` when the median latency is `median`."""
    return 0.5 * (1 + math.erf(math.log(ms / median) / (SPREAD * math.sqrt(2))))


def percentile(q: float, median: float) -> float:
    """The true `q` quantile (0.99 for p99) of the latency, in ms, for a median."""
    return median * math.exp(SPREAD * NormalDist().inv_cdf(q))


def histogram_percentile(q: float, median: float) -> float:
    """What `histogram_quantile(q, ...)` computes from the generated buckets, in ms: linear
    interpolation inside the bucket the quantile falls in (from 0 in the first bucket; the last
    finite bound when it falls in +Inf)."""
    lower, below = 0.0, 0.0
    for bound in BUCKETS:
        upto = cdf(bound, median)
        if upto >= q:
            return lower + (bound - lower) * (q - below) / (upto - below)
        lower, below = bound, upto
    return float(BUCKETS[-1])


def scrapes(start: float, end: float, scrape: float = SCRAPE) -> Iterator[float]:
    """The scrape times in [start, end)."""
    k = 0
    while start + k * scrape < end:
        yield start + k * scrape
        k += 1


def requests(
    workload: Workload,
    start: float,
    end: float,
    code: str | None = None,
    scrape: float = SCRAPE,
    origin: float = START,
) -> float:
    """The requests (of one response `code`, or all) `workload` served in the scrapes of
    (start, end] (scrapes counted from `origin`): what `increase(...[end - start])` at `end`
    should find, before Prometheus' rounding and extrapolation."""
    total = 0.0
    for t in scrapes(origin, end + scrape / 2, scrape):
        if start < t <= end:
            total += _shares(workload, t - scrape / 2, scrape)[code or "all"]
    return total


def _shares(workload: Workload, mid: float, scrape: float) -> dict[str, float]:
    """The requests of the scrape interval around `mid`, in total and by response code."""
    served = workload.rps(mid) * scrape
    failed = served * workload.errors(mid)
    return {
        "all": served,
        "200": served - failed - served * NOT_FOUND,
        "404": served * NOT_FOUND,
        "503": failed,
    }


def _labels(workload: Workload, reporter: str, code: str) -> str:
    pairs = {
        "reporter": reporter,
        "source_workload": INGRESS,
        "destination_workload": workload.workload,
        "destination_workload_namespace": workload.namespace,
        "destination_version": workload.version,
        "destination_service_name": workload.service,
        "destination_service_namespace": workload.namespace,
        "response_code": code,
        "request_protocol": "http",
    }
    return ",".join(f'{name}="{value}"' for name, value in pairs.items())


@dataclass
class _Counts:
    """One workload's counters for one response code since its last reset, as they grow."""

    requests: float = 0.0
    buckets: tuple[float, ...] = (0.0,) * len(BUCKETS)
    latency_sum: float = 0.0

    def sample(self) -> _Sample | None:
        """What a scrape reads: None before the first whole request (no series yet)."""
        if self.requests < 1:
            return None
        count = math.floor(self.requests)
        # Rounded down bucket by bucket, so they still grow with `le` and end at the count.
        buckets = tuple(min(math.floor(value), count) for value in self.buckets)
        return _Sample(count, buckets, self.latency_sum)


@dataclass(frozen=True)
class _Sample:
    """One response code's counters at one scrape."""

    requests: int
    buckets: tuple[int, ...]
    latency_sum: float


Scrape = tuple[int, dict[str, _Sample | None]]  # a scrape's time and each code's counters


def _scrapes(workload: Workload, start: float, end: float, scrape: float) -> list[Scrape]:
    """Every scrape of `workload` in [start, end) but those in its gaps."""
    counts = {code: _Counts() for code in CODES}
    resets = sorted(workload.resets)
    shapes: dict[float, tuple[float, ...]] = {}  # the buckets' fractions, by median
    taken = []
    for t in scrapes(start, end, scrape):
        if resets and resets[0] <= t:
            while resets and resets[0] <= t:
                resets.pop(0)
            counts = {code: _Counts() for code in CODES}
        mid = t - scrape / 2
        median = workload.latency_ms(mid)
        if median not in shapes:
            shapes[median] = tuple(cdf(bound, median) for bound in BUCKETS)
        shape = shapes[median]
        mean = median * math.exp(SPREAD**2 / 2)
        for code, served in _shares(workload, mid, scrape).items():
            if code in counts and served:
                kept = counts[code]
                kept.requests += served
                kept.buckets = tuple(
                    b + served * f for b, f in zip(kept.buckets, shape, strict=True)
                )
                kept.latency_sum += served * mean
        if not workload.in_gap(t):
            taken.append((int(t), {code: kept.sample() for code, kept in counts.items()}))
    return taken


def openmetrics(
    workloads: Sequence[Workload], start: float, end: float, scrape: float = SCRAPE
) -> str:
    """The OpenMetrics text of `workloads`' series, scraped every `scrape` s in [start, end)."""
    taken = [_scrapes(workload, start, end, scrape) for workload in workloads]
    return _text(workloads, taken, start, end)


def openmetrics_blocks(
    workloads: Sequence[Workload],
    start: float,
    end: float,
    scrape: float = SCRAPE,
    block: float = 2 * 3600,
) -> Iterator[str]:
    """The same series as `openmetrics`, one text per `block` seconds (aligned on multiples of
    it, as the TSDB aligns its blocks).

    promtool reads its whole input once for every 2 h block it writes: a day in one text is
    read twelve times, a day in twelve texts once."""
    taken = [_scrapes(workload, start, end, scrape) for workload in workloads]
    since = start
    while since < end:
        until = min(end, (since // block + 1) * block)
        yield _text(workloads, taken, since, until)
        since = until


def _text(
    workloads: Sequence[Workload], taken: list[list[Scrape]], since: float, until: float
) -> str:
    """The samples of [since, until): families one after the other, each series' samples in
    time order (promtool refuses a sample older than the one before it in its series)."""
    taken = [[(t, codes) for t, codes in points if since <= t < until] for points in taken]
    lines = ["# HELP istio_requests Requests served.", "# TYPE istio_requests counter"]
    for workload, points in zip(workloads, taken, strict=True):
        for reporter in ("destination", "source"):
            for code in CODES:
                series = f"istio_requests_total{{{_labels(workload, reporter, code)}}} "
                for t, codes in points:
                    sample = codes[code]
                    if sample is not None:
                        lines.append(f"{series}{sample.requests} {t}")
    name = "istio_request_duration_milliseconds"
    lines.append(f"# HELP {name} Request duration.")
    lines.append(f"# TYPE {name} histogram")
    for workload, points in zip(workloads, taken, strict=True):
        for code in CODES:
            labels = _labels(workload, "destination", code)
            buckets = [f'{name}_bucket{{{labels},le="{bound}"}} ' for bound in BUCKETS]
            buckets.append(f'{name}_bucket{{{labels},le="+Inf"}} ')
            for t, codes in points:
                sample = codes[code]
                if sample is None:
                    continue
                values = (*sample.buckets, sample.requests)
                lines += [f"{b}{v} {t}" for b, v in zip(buckets, values, strict=True)]
                lines.append(f"{name}_count{{{labels}}} {sample.requests} {t}")
                lines.append(f"{name}_sum{{{labels}}} {sample.latency_sum:.3f} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
