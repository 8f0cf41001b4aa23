"""Ask Prometheus for every canary's windows at once, and decide each canary.

Canaries of one environment (one namespace) that read the same window share their queries:
one range query per distinct check, over every version's Deployment, with one point per window
(`step` = the window, newest at `at`), so a canary's failed windows in a row come from the
same query as its newest one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from meshcanary.analysis import decide as judge
from meshcanary.analysis import queries
from meshcanary.analysis.history import Change, History, Weights
from meshcanary.analysis.prometheus import Prometheus, PrometheusError, Series
from meshcanary.release.model import Analysis, Check, Release, Version


@dataclass(frozen=True)
class Target:
    """A canary to judge: its release with the weights in force at the time, and when those
    weights were committed (None: not committed)."""

    release: Release
    analysis: Analysis
    step_began: float | None

    @property
    def workloads(self) -> tuple[str, str]:
        service = self.release.service
        return (f"{service}-{self.release.stable.name}", f"{service}-{self.release.canary.name}")


def _with_weights(release: Release, weights: Weights) -> Release:
    """`release` as it was when it had `weights` (a version gone since keeps only its name)."""
    known = {v.name: v for v in release.versions}
    versions = tuple(
        replace(known[name], weight=weight) if name in known else Version(name, "", weight, None)
        for name, weight in weights.items()
    )
    return replace(release, versions=versions)


def target(release: Release, history: History, at: float | None) -> Target | None:
    """The canary of `release` to judge at `at` (None: now, with the work tree's weights), or
    None when it has no canary then: one version, or the newest at 0% or 100%."""
    analysis = release.analysis
    if analysis is None:
        return None
    if at is None:
        now = Change(
            "",
            0.0,
            {v.name: v.weight for v in release.versions},
            {v.name: v.image for v in release.versions},
        )
        last = history.changes[-1] if history.changes else None
        began = last.time if last is not None and last.same_step(now) else None
    else:
        change = history.at(at)
        if change is None or change.weights is None:
            return None
        release = _with_weights(release, change.weights)
        began = change.time
    if len(release.versions) < 2 or release.canary.weight in (0, 100):
        return None
    return Target(release, analysis, began)


# The most windows read back for a pull request's chart of the step.
CHART_WINDOWS = 24


def _depth(t: Target, at: float) -> int:
    """How many windows back to read: enough for a rollback, and the step's for its chart."""
    whole = 0 if t.step_began is None else int((at - t.step_began) // t.analysis.window)
    return max(t.analysis.failure_limit, min(CHART_WINDOWS, whole))


Points = dict[str, dict[int, float]]  # Deployment → window end (ms) → value


class _Ambiguous(Exception):
    """A query gave a Deployment more than one series: which one is its value?"""


def _points(found: Iterable[Series], label: str) -> Points:
    points: Points = defaultdict(dict)
    for series in found:
        workload = series.labels.get(label)
        if workload is None:
            continue
        if workload in points:
            raise _Ambiguous(workload)
        for time, value in series.points:
            points[workload][round(time * 1000)] = value
    return points


Batch = tuple[str, float, str, tuple[tuple[str, str], ...]]  # namespace, window, reporter, labels


def _group(
    prometheus: Prometheus, batch: Batch, group: Sequence[Target], at: float
) -> list[judge.Decision]:
    namespace, window, reporter, labels = batch
    workloads = tuple(sorted({w for t in group for w in t.workloads}))
    scope = queries.Scope(namespace, workloads, window, reporter, labels)
    depth = max(_depth(t, at) for t in group)
    ends = [at - k * window for k in range(depth)]
    wanted: dict[str, str] = {}  # PromQL → the label naming the Deployment
    requests = queries.requests(scope)
    wanted[requests.promql] = requests.label
    # Checks are equal when written alike: the defaults, shared by most releases, build once.
    of_check: dict[Check, str] = {}
    for t in group:
        for check in t.analysis.checks:
            if check not in of_check:
                query = queries.of_check(check, scope)
                of_check[check] = query.promql
                wanted[query.promql] = query.label
    answers: dict[str, Points] = {}
    failures: dict[str, tuple[str, str]] = {}
    for promql, label in sorted(wanted.items()):
        try:
            answers[promql] = _points(prometheus.query_range(promql, ends[-1], at, window), label)
        except PrometheusError as exc:
            failures[promql] = (exc.kind, exc.message)
        except _Ambiguous as exc:
            failures[promql] = (
                "bad-query",
                f"the query gives {exc} more than one series, so which is its value is not "
                f"known; aggregate it by {label} (sum by ({label}) (...)): {promql}",
            )
    decisions = []
    for t in group:
        needed = [requests.promql] + [of_check[c] for c in t.analysis.checks]
        error = next((failures[q] for q in needed if q in failures), None)
        windows = []
        for end in ends[: _depth(t, at)]:
            key = round(end * 1000)
            versions = {
                t.release.stable.name: t.workloads[0],
                t.release.canary.name: t.workloads[1],
            }

            def value(promql: str, workload: str, key: int = key) -> float | None:
                return answers.get(promql, {}).get(workload, {}).get(key)

            served = {version: value(requests.promql, w) for version, w in versions.items()}
            values = {
                c.name: {version: value(of_check[c], w) for version, w in versions.items()}
                for c in t.analysis.checks
            }
            numbers = judge.Numbers(end, served, values, error)
            stable, canary = t.release.stable.name, t.release.canary.name
            windows.append(
                judge.Window(end, judge.readings(t.analysis, numbers, stable, canary), error)
            )
        decisions.append(judge.decide(t.release, t.analysis, windows, at, t.step_began))
    return decisions


def evaluate(prometheus: Prometheus, targets: Sequence[Target], at: float) -> list[judge.Decision]:
    """Every target's decision at `at`, in the order given. Canaries that read the same
    reports of the same namespace over the same window share their queries."""
    groups: dict[Batch, list[Target]] = defaultdict(list)
    for t in targets:
        analysis = t.analysis
        batch = (
            t.release.environment.namespace,
            analysis.window,
            analysis.reporter,
            analysis.labels,
        )
        groups[batch].append(t)
    decided: dict[int, judge.Decision] = {}
    for batch, group in groups.items():
        for t, decision in zip(group, _group(prometheus, batch, group, at), strict=True):
            decided[id(t)] = decision
    return [decided[id(t)] for t in targets]
