"""The PromQL of each check, for every canary of an environment at once.

One query per check reads every version's Deployment of an environment (a regex of their
names), grouped by the Deployment, so the number of queries does not grow with the number of
canaries. Series are read as Istio labels them: `reporter="destination"` (the server's sidecar,
which every request reaches once; the client's would count a request twice when both ends are
in the mesh), `destination_workload_namespace` and `destination_workload`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcanary.release.analysis import PLACEHOLDER, promql_duration
from meshcanary.release.model import LATENCY, QUERY, SUCCESS_RATE, Check
from meshcanary.release.routing import re2_escape

WORKLOAD = "destination_workload"
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds_bucket"


def string(text: str) -> str:
    """`text` as a PromQL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def workloads_regex(workloads: Sequence[str]) -> str:
    """A regex (RE2, anchored by PromQL) matching exactly these Deployments."""
    return "|".join(re2_escape(name) for name in sorted(set(workloads)))


def _selector(namespace: str, workloads: Sequence[str], *more: str) -> str:
    labels = [
        'reporter="destination"',
        f"destination_workload_namespace={string(namespace)}",
        f"{WORKLOAD}=~{string(workloads_regex(workloads))}",
        *more,
    ]
    return "{" + ",".join(labels) + "}"


@dataclass(frozen=True)
class Query:
    """One PromQL expression, and the label of its result that names the Deployment."""

    promql: str
    label: str = WORKLOAD


def requests(namespace: str, workloads: Sequence[str], window: float) -> Query:
    """Each Deployment's requests in the window (increase() counts across counter resets)."""
    selector = _selector(namespace, workloads)
    return Query(f"sum by ({WORKLOAD}) (increase({REQUESTS}{selector}[{promql_duration(window)}]))")


def errors(namespace: str, workloads: Sequence[str], window: float) -> Query:
    """Each Deployment's 5xx responses in the window; absent where it had none."""
    selector = _selector(namespace, workloads, 'response_code=~"5.."')
    return Query(f"sum by ({WORKLOAD}) (increase({REQUESTS}{selector}[{promql_duration(window)}]))")


def latency(namespace: str, workloads: Sequence[str], window: float, percentile: float) -> Query:
    """Each Deployment's request duration at the percentile, in ms, over the window."""
    selector = _selector(namespace, workloads)
    quantile = f"{percentile / 100:g}"
    return Query(
        f"histogram_quantile({quantile}, sum by ({WORKLOAD}, le) "
        f"(rate({DURATION}{selector}[{promql_duration(window)}])))"
    )


def custom(check: Check, namespace: str, workloads: Sequence[str], window: float) -> Query:
    """A check's own query with its placeholders filled in (load refused any other name)."""
    assert check.query is not None  # noqa: S101 - the kind QUERY has one
    values = {
        "namespace": namespace,
        "workloads": workloads_regex(workloads),
        "window": promql_duration(window),
    }
    promql = PLACEHOLDER.sub(lambda found: values[found.group(1)], check.query)
    return Query(promql, check.workload_label)


def of_check(check: Check, namespace: str, workloads: Sequence[str], window: float) -> Query:
    """The query that gives a check's value (a success rate needs `errors` and `requests`)."""
    if check.kind == SUCCESS_RATE:
        return errors(namespace, workloads, window)
    if check.kind == LATENCY:
        return latency(namespace, workloads, window, check.percentile)
    if check.kind == QUERY:
        return custom(check, namespace, workloads, window)
    raise ValueError(f"unknown check kind {check.kind}")
