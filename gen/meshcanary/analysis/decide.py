"""From each window's numbers to a verdict per check, and from the verdicts to a decision.

Windows are read newest first, back to the step's start (only whole windows inside the step
count: a window reaching into the previous step would judge weights that are gone). The
decision, in the order it is taken:

- a Prometheus failure on any query: `hold` (no verdict is "healthy" by default);
- `failureLimit` failed windows in a row, newest back: `rollback`, even before the interval
  is over (an incident should not wait);
- the newest window without enough of the canary's requests, without data, or with a check
  failing fewer times than the limit: `hold`;
- the step younger than `interval`: `hold`;
- otherwise `advance` to the plan's next step, or `promote` when the next step is 100% or the
  plan has none left.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from meshcanary.release import traffic
from meshcanary.release.model import SUCCESS_RATE, Analysis, Check, Release
from meshcanary.release.splice import EditRefused

PASS = "pass"  # noqa: S105 - a verdict, not a password
FAIL = "fail"
NOT_ENOUGH_TRAFFIC = "not-enough-traffic"
NO_DATA = "no-data"
NAN = "nan"
BASELINE = "baseline"  # the stable version's value a relative check compares with

ADVANCE = "advance"
PROMOTE = "promote"
HOLD = "hold"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Reading:
    """One check's value for one version in one window, with its bound and verdict."""

    name: str
    version: str
    value: float | None
    threshold: str | None
    verdict: str


@dataclass(frozen=True)
class Numbers:
    """What Prometheus said about one window, per version: None where a series was absent.

    `values[check][version]`: a success rate's 5xx count, a latency, or a query's value.
    `error`: the kind and message of a failed query, which voids the window.
    """

    end: float
    requests: Mapping[str, float | None]
    values: Mapping[str, Mapping[str, float | None]]
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class Window:
    end: float
    readings: tuple[Reading, ...]
    error: tuple[str, str] | None = None

    @property
    def failed(self) -> list[Reading]:
        return [r for r in self.readings if r.verdict == FAIL]

    @property
    def unsure(self) -> list[Reading]:
        return [r for r in self.readings if r.verdict in (NOT_ENOUGH_TRAFFIC, NO_DATA, NAN)]


def number(value: float, decimals: int = 3) -> str:
    """A value as the output shows it: up to 3 decimals, no trailing zeros."""
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _value(check: Check, numbers: Numbers, version: str) -> float | None:
    raw = numbers.values.get(check.name, {}).get(version)
    if check.kind != SUCCESS_RATE:
        return raw
    requests = numbers.requests.get(version)
    if not requests:
        return None
    # No 5xx series in the window is no 5xx response, not missing data.
    return 100.0 * (requests - (raw or 0.0)) / requests


def _bounds(check: Check, stable: float | None) -> tuple[float | None, float | None, str]:
    """(least, most, how it reads) for the canary; relative bounds from the stable's value."""
    least, most, said = check.min, check.max, []
    if check.min is not None:
        said.append(f">= {number(check.min)}")
    if check.max is not None:
        said.append(f"<= {number(check.max)}")
    if check.below_stable is not None and stable is not None:
        bound = stable - check.below_stable
        least = bound if least is None else max(least, bound)
        said.append(f">= stable - {number(check.below_stable)} = {number(bound)}")
    if check.above_stable is not None and stable is not None:
        bound = stable + check.above_stable
        most = bound if most is None else min(most, bound)
        said.append(f"<= stable + {number(check.above_stable)} = {number(bound)}")
    return least, most, ", ".join(said)


def readings(analysis: Analysis, numbers: Numbers, stable: str, canary: str) -> tuple[Reading, ...]:
    """Each check's reading for the stable version, then the canary.

    The stable's values are `baseline`: shown beside the canary's, and judged only where a
    relative check compares with them (too few requests, no data or NaN there leave the
    canary's check without a verdict).
    """
    if numbers.error is not None:
        kind = numbers.error[0]
        return tuple(Reading(c.name, canary, None, None, kind) for c in analysis.checks)
    served = numbers.requests.get(canary)
    stable_served = numbers.requests.get(stable)
    # No series at all (a gap: scrapes failed, or the pods are gone) is not zero requests.
    enough = served is not None and served >= analysis.min_requests
    counted = NO_DATA if served is None else PASS if enough else NOT_ENOUGH_TRAFFIC
    found = [
        Reading("requests", stable, stable_served, None, BASELINE),
        Reading("requests", canary, served, f">= {analysis.min_requests}", counted),
    ]
    for check in analysis.checks:
        base = _value(check, numbers, stable)
        verdict = BASELINE
        if check.relative:
            if (stable_served or 0.0) < analysis.min_requests:
                verdict = NOT_ENOUGH_TRAFFIC
            elif base is None:
                verdict = NO_DATA
            elif math.isnan(base):
                verdict = NAN
        found.append(Reading(check.name, stable, base, None, verdict))
        compared = base if check.relative and verdict == BASELINE else None
        least, most, said = _bounds(check, compared)
        value = _value(check, numbers, canary)
        if not enough:
            verdict = counted
        elif value is None:
            verdict = NO_DATA
        elif math.isnan(value):
            verdict = NAN
        elif check.relative and compared is None:
            verdict = found[-1].verdict  # the stable's: nothing to compare with
        elif (least is not None and value < least) or (most is not None and value > most):
            verdict = FAIL
        else:
            verdict = PASS
        found.append(Reading(check.name, canary, value, said or None, verdict))
    return tuple(found)


@dataclass(frozen=True)
class Decision:
    environment: str
    service: str
    canary: str
    stable: str
    weight: int  # the canary's, now
    decision: str
    reason: str
    checks: tuple[Reading, ...]  # the newest window's
    target: int | None = None  # the canary's weight after an advance
    at: float = 0.0
    step_began: float | None = None
    windows: tuple[Window, ...] = ()  # newest first
    error: str | None = None  # the kind of a failed query: no verdict could be reached


def _minutes(seconds: float) -> str:
    """A duration as a person reads it: 40s, 6.667m, 1h, 2h 13m, 5d 13h."""
    if seconds < 60:
        return f"{number(seconds)}s"
    if seconds < 3600:
        return f"{number(seconds / 60)}m"
    whole = int(seconds // 60)
    days, minutes = divmod(whole, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def _next_step(release: Release) -> int | None:
    later = [step for step in release.steps if step > release.canary.weight]
    return later[0] if later else None


def _failures(reading: Reading) -> str:
    # Six decimals where three would round a failing 98.9996 to the bound it missed.
    value = "no value" if reading.value is None else number(reading.value, 6)
    return f"{reading.name} {value}, not {reading.threshold}"


def _carried(
    said: Callable[[str, str, int | None], Decision],
    release: Release,
    decision: str,
    reason: str,
    target: int | None = None,
) -> Decision:
    """The decision, or a hold when the edit that carries it out would be refused (a version
    between the stable and the canary holding too much for the next step, say): a decision
    `advance` cannot make is not one to print."""
    plans = {
        ADVANCE: lambda: traffic.plan_step(release, to=target),
        PROMOTE: lambda: traffic.plan_promote(release),
        ROLLBACK: lambda: traffic.plan_rollback(release),
    }
    try:
        plans[decision]()
    except EditRefused as exc:
        return said(HOLD, f"{reason}, but {decision} is refused: {exc.message}", None)
    return said(decision, reason, target)


def decide(
    release: Release,
    analysis: Analysis,
    windows: Sequence[Window],
    at: float,
    step_began: float | None,
) -> Decision:
    """The decision for `release`'s canary at `at`, from its windows (newest first)."""
    stable, canary = release.stable, release.canary

    whole = [w for w in windows if step_began is not None and w.end - analysis.window >= step_began]

    def said(
        decision: str, reason: str, target: int | None = None, error: str | None = None
    ) -> Decision:
        newest = windows[0].readings if windows else ()
        return Decision(
            release.environment.name,
            release.service,
            canary.name,
            stable.name,
            canary.weight,
            decision,
            reason,
            newest,
            target,
            at,
            step_began,
            tuple(whole),  # the chart's: only what the step itself served
            error,
        )

    if windows and windows[0].error is not None:
        kind, message = windows[0].error
        return said(HOLD, f"Prometheus {kind}: {message}", error=kind)
    run = 0
    for window in whole:
        if window.error is not None or not window.failed:
            break
        run += 1
    if run >= analysis.failure_limit:
        failed = "; ".join(_failures(r) for r in whole[0].failed)
        return _carried(
            said,
            release,
            ROLLBACK,
            f"{failed}: failed in {run} windows in a row (failureLimit {analysis.failure_limit})",
        )
    if step_began is None:
        return said(HOLD, "the weights or images now in the release file are not committed yet")
    if not whole:
        return said(
            HOLD,
            f"the step began {_minutes(at - step_began)} ago, "
            f"less than a window ({_minutes(analysis.window)})",
        )
    newest = whole[0]
    if any(r.name == "requests" and r.verdict == NO_DATA for r in newest.readings):
        return said(
            HOLD,
            f"no data: {canary.name} has no request series in the last "
            f"{_minutes(analysis.window)} (failed scrapes, or no pods)",
        )
    starved = [r.version for r in newest.readings if r.verdict == NOT_ENOUGH_TRAFFIC]
    if starved:
        # The canary's count, or the stable's when a relative check has too little to compare.
        served = next(
            (r.value for r in newest.readings if r.name == "requests" and r.version == starved[0]),
            None,
        )
        shown = "no" if served is None else number(served)
        return said(
            HOLD,
            f"not enough traffic: {starved[0]} served {shown} requests in "
            f"{_minutes(analysis.window)}, fewer than {analysis.min_requests}",
        )
    if newest.unsure:
        names = ", ".join(f"{r.name} ({r.verdict})" for r in newest.unsure)
        return said(HOLD, f"no verdict from {names}")
    if newest.failed:
        failed = "; ".join(_failures(r) for r in newest.failed)
        return said(
            HOLD,
            f"{failed} ({run} of {analysis.failure_limit} failed windows before a rollback)",
        )
    ran = at - step_began
    if ran < analysis.interval:
        return said(
            HOLD,
            f"healthy; the step has run {_minutes(ran)} of its {_minutes(analysis.interval)}",
        )
    # Healthy through the interval, not only now: a canary failing every other window never
    # fails "in a row", and must not advance either.
    recent = [w for w in whole if w.end > at - analysis.interval]
    lapses = [w for w in recent if w.failed or w.unsure or w.error is not None]
    if lapses:
        return said(
            HOLD,
            f"healthy now, but not in {len(lapses)} of the {len(recent)} windows of the last "
            f"{_minutes(analysis.interval)}",
        )
    target = _next_step(release)
    if target is None or target == 100:
        return _carried(
            said, release, PROMOTE, f"healthy for {_minutes(ran)} at the plan's last step", 100
        )
    return _carried(
        said, release, ADVANCE, f"healthy for {_minutes(ran)}: next step {target}%", target
    )
