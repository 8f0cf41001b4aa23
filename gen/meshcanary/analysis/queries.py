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


@dataclass(frozen=True)
class Scope:
    """What every query of one batch reads: the environment's namespace, its versions'
    Deployments, the window, and whose reports (`reporter`, more `labels`)."""

    namespace: str
    workloads: tuple[str, ...]
    window: float
    reporter: str = "destination"
    labels: tuple[tuple[str, str], ...] = ()

    def selector(self, *more: str) -> str:
        labels = [
            f"reporter={string(self.reporter)}",
            f"destination_workload_namespace={string(self.namespace)}",
            f"{WORKLOAD}=~{string(workloads_regex(self.workloads))}",
            *(f"{name}={string(value)}" for name, value in self.labels),
            *more,
        ]
        return "{" + ",".join(labels) + "}"

    @property
    def range(self) -> str:
        return promql_duration(self.window)


@dataclass(frozen=True)
class Query:
    """One PromQL expression, and the label of its result that names the Deployment."""

    promql: str
    label: str = WORKLOAD


def requests(scope: Scope) -> Query:
    """Each Deployment's requests in the window (increase() counts across counter resets)."""
    return Query(f"sum by ({WORKLOAD}) (increase({REQUESTS}{scope.selector()}[{scope.range}]))")


def errors(scope: Scope) -> Query:
    """Each Deployment's 5xx responses in the window; absent where it had none."""
    selector = scope.selector('response_code=~"5.."')
    return Query(f"sum by ({WORKLOAD}) (increase({REQUESTS}{selector}[{scope.range}]))")


def latency(scope: Scope, percentile: float) -> Query:
    """Each Deployment's request duration at the percentile, in ms, over the window."""
    # Enough digits that 99.999 stays below 1 (`:g` would round it to 1, the largest bucket).
    quantile = f"{percentile / 100:.10g}"
    return Query(
        f"histogram_quantile({quantile}, sum by ({WORKLOAD}, le) "
        f"(rate({DURATION}{scope.selector()}[{scope.range}])))"
    )


def custom(check: Check, scope: Scope) -> Query:
    """A check's own query with its placeholders filled in (load refused any other name)."""
    assert check.query is not None  # noqa: S101 - the kind QUERY has one
    values = {
        "namespace": scope.namespace,
        "workloads": workloads_regex(scope.workloads),
        "window": scope.range,
    }
    promql = PLACEHOLDER.sub(lambda found: values[found.group(1)], check.query)
    return Query(promql, check.workload_label)


def of_check(check: Check, scope: Scope) -> Query:
    """The query that gives a check's value (a success rate needs `errors` and `requests`)."""
    if check.kind == SUCCESS_RATE:
        return errors(scope)
    if check.kind == LATENCY:
        return latency(scope, check.percentile)
    if check.kind == QUERY:
        return custom(check, scope)
    raise ValueError(f"unknown check kind {check.kind}")
