"""Decisions as text for a person, as JSON for a program, and as a pull request's evidence.

The JSON is a stable contract: `{"decisions": [{"environment", "service", "canary", "stable",
"weight", "decision", "reason", "checks": [{"name", "version", "value", "threshold",
"verdict"}]}]}`; each decision also says `at` (RFC 3339) and `target` (the canary's weight
after an advance or promote, else null). Values are rounded to 6 decimals, so the same
series give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from meshcanary.analysis.decide import Decision, Reading, number
from meshcanary.analysis.run import shown_time


def _value(value: float | None) -> float | str | None:
    if value is None:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)  # JSON has no NaN or infinity
    return round(value, 6)


def _check(reading: Reading) -> dict[str, object]:
    return {
        "name": reading.name,
        "version": reading.version,
        "value": _value(reading.value),
        "threshold": reading.threshold,
        "verdict": reading.verdict,
    }


def as_dict(decision: Decision) -> dict[str, object]:
    return {
        "environment": decision.environment,
        "service": decision.service,
        "canary": decision.canary,
        "stable": decision.stable,
        "weight": decision.weight,
        "decision": decision.decision,
        "reason": decision.reason,
        "at": shown_time(decision.at),
        "target": decision.target,
        "checks": [_check(r) for r in decision.checks],
    }


def as_json(decisions: Sequence[Decision]) -> str:
    return json.dumps({"decisions": [as_dict(d) for d in decisions]}, indent=2) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else number(value)


def as_text(decisions: Sequence[Decision], replay: bool = False) -> str:
    """One block per decision: the decision line, then the newest window's checks."""
    if not decisions:
        return "no canary to analyze: every release has one version, or its newest at 0% or 100%\n"
    lines: list[str] = []
    for decision in decisions:
        when = f"{shown_time(decision.at)} " if replay else ""
        target = f" to {decision.target}%" if decision.target is not None else ""
        lines.append(
            f"{when}{decision.environment}/{decision.service}: {decision.canary} at "
            f"{decision.weight}% (stable {decision.stable}): {decision.decision}{target}: "
            f"{decision.reason}"
        )
        if replay:
            continue
        rows = [("check", "version", "value", "threshold", "verdict")] + [
            (r.name, r.version, _cell(r.value), r.threshold or "", r.verdict)
            for r in decision.checks
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            lines.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
    return "\n".join(lines) + "\n"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """Values as a line of bars between their least and most (a gap where one is missing)."""
    known = [v for v in values if v is not None and v == v]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(
        " "
        if v is None or v != v
        else _BARS[0 if span == 0 else min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))]
        for v in values
    )


def evidence(decision: Decision) -> str:
    """The pull request's section on why: the decision, the checks, each window of the step."""
    lines = [
        "### Analysis",
        "",
        f"`meshcanary analyze` at {shown_time(decision.at)}: **{decision.decision}** — "
        f"{decision.reason}.",
        "",
        "| check | version | value | threshold | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.name} | {r.version} | {_cell(r.value)} | {r.threshold or ''} | {r.verdict} |"
        for r in decision.checks
    ]
    windows = list(reversed(decision.windows))  # oldest first, as a chart reads
    if windows:
        names = []
        for reading in windows[-1].readings:
            if (reading.name, reading.version) not in names:
                names.append((reading.name, reading.version))
        lines += [
            "",
            f"Windows of the step, oldest first ({len(windows)}, to "
            f"{shown_time(windows[-1].end)}):",
            "",
            "| check | version | over the step | least | most |",
            "|---|---|---|---|---|",
        ]
        for name, version in names:
            values = [
                next((r.value for r in w.readings if r.name == name and r.version == version), None)
                for w in windows
            ]
            known = [v for v in values if v is not None and v == v]
            least = number(min(known)) if known else "-"
            most = number(max(known)) if known else "-"
            lines.append(f"| {name} | {version} | `{sparkline(values)}` | {least} | {most} |")
    return "\n".join(lines) + "\n"
