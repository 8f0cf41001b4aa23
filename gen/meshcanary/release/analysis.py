"""`canary.analysis` of a release or environment file → the typed `Analysis`.

The schema has checked the shapes; what it cannot say is refused here at its line: a query's
unknown `{{ placeholder }}`, two checks of one name, a window longer than the interval.
"""

from __future__ import annotations

import re
from typing import Any

from meshcanary.problem import Problem
from meshcanary.release import durations
from meshcanary.release.model import (
    DEFAULT_ANALYSIS,
    LATENCY,
    QUERY,
    SUCCESS_RATE,
    Analysis,
    Check,
)
from meshcanary.source import SourceDoc

# What a custom query may name; each is filled in from the release, never from the metrics.
PLACEHOLDERS = ("namespace", "workloads", "window")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\}\}")


def seconds(duration: str) -> float:
    """A duration ("5m", "1.5h", "250ms", "1m30s") in seconds; ValueError when it is none."""
    return float(durations.seconds(duration))


def promql_duration(value: float) -> str:
    """Seconds as a PromQL range: whole seconds, or milliseconds when it has a fraction."""
    if value == int(value):
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"


def _check(item: dict[str, Any]) -> Check:
    if "successRate" in item:
        rate = item["successRate"]
        return Check(
            item.get("name", SUCCESS_RATE),
            SUCCESS_RATE,
            min=rate.get("min"),
            below_stable=rate.get("maxBelowStable"),
        )
    if "latency" in item:
        latency = item["latency"]
        percentile = float(latency.get("percentile", 99))
        shown = f"{percentile:g}".replace(".", "-")
        return Check(
            item.get("name", f"latency-p{shown}"),
            LATENCY,
            max=latency.get("max"),
            above_stable=latency.get("maxAboveStable"),
            percentile=percentile,
        )
    return Check(
        item["name"],
        QUERY,
        min=item.get("min"),
        max=item.get("max"),
        below_stable=item.get("maxBelowStable"),
        above_stable=item.get("maxAboveStable"),
        query=item["query"],
        workload_label=item.get("workloadLabel", "destination_workload"),
    )


def analysis(
    doc: SourceDoc,
    path: list[str | int],
    problems: list[Problem],
    steps: tuple[int, ...] | None,
) -> Analysis | None:
    """The analysis at `path` of `doc` (schema-checked), or None when it has none.

    `steps`: the plan it judges; an analysis without a plan is refused, since nothing would
    ever read it. None: not known here (an environment's, for releases with plans of their
    own).
    """
    node: Any = doc.data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return None
    before = len(problems)
    if steps is not None and not steps:
        problems.append(
            Problem(
                doc.location(path),
                "an analysis without canary steps: nothing would advance on its verdicts",
                "add steps beside it, such as steps: [10, 25, 50, 100]",
            )
        )
    interval = seconds(node["interval"]) if "interval" in node else DEFAULT_ANALYSIS.interval
    window = seconds(node["window"]) if "window" in node else DEFAULT_ANALYSIS.window
    for key, value in (("interval", interval), ("window", window)):
        if key in node and value < 1:
            problems.append(
                Problem(
                    doc.location([*path, key]),
                    f"the {key} must be at least 1s, not {node[key]}",
                    "Prometheus reads no range shorter than a millisecond, and a step of no "
                    "time would never hold",
                )
            )
    if window > interval:
        problems.append(
            Problem(
                doc.location([*path, "window" if "window" in node else "interval"]),
                f"the window ({promql_duration(window)}) is longer than the interval "
                f"({promql_duration(interval)}): a step's first verdict would read traffic "
                "from before the step began",
                "make the window at most the interval",
            )
        )
    checks = tuple(_check(item) for item in node.get("checks", ()))
    seen: set[str] = set()
    for index, check in enumerate(checks):
        if check.name == "requests":
            problems.append(
                Problem(
                    doc.location([*path, "checks", index, "name"]),
                    'the check name "requests" is the request count\'s own row',
                    "give the check another name",
                )
            )
        if check.name in seen:
            problems.append(
                Problem(
                    doc.location([*path, "checks", index]),
                    f'two checks are named "{check.name}"',
                    "give each check its own name",
                )
            )
        seen.add(check.name)
        if check.query is not None:
            for found in PLACEHOLDER.finditer(check.query):
                if found.group(1) not in PLACEHOLDERS:
                    problems.append(
                        Problem(
                            doc.location([*path, "checks", index, "query"]),
                            f"unknown placeholder {found.group(0)} in the query",
                            "the query may use {{ namespace }}, {{ workloads }} and {{ window }}",
                        )
                    )
    if len(problems) > before:
        return None
    return Analysis(
        interval=interval,
        window=window,
        failure_limit=node.get("failureLimit", DEFAULT_ANALYSIS.failure_limit),
        min_requests=node.get("minRequests", DEFAULT_ANALYSIS.min_requests),
        checks=checks or DEFAULT_ANALYSIS.checks,
        reporter=node.get("reporter", DEFAULT_ANALYSIS.reporter),
        labels=tuple(sorted((node.get("labels") or {}).items())),
    )
