"""The canary releases the analysis is tested on, each in its own namespace, on the day that
begins at `START`, as metrics (`metrics.py`) a test backfills into a real Prometheus.

Every scenario is a release of `micro-api` with a stable `v1` and a canary `v2` following the
steps 10, 25, 50, 75, 100 (the canary's weight %), each step beginning one hour after the
previous, the first at START + 1 h (`step_start`): before it the canary has no traffic, from
START + 5 h it has it all. 20 requests/s in total unless the scenario says otherwise. Each
scenario's docstring says what a correct analysis decides; the defaults meant are Flagger's
(success rate ≥ 99 %, p99 latency ≤ 500 ms, at least 100 requests in a 10 minute window).

The same service name in every namespace, on purpose: a query that forgets
`destination_workload_namespace` mixes scenarios, and a test sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.metrics import START, Function, Workload, constant, stepping, weighted

SERVICE = "micro-api"
STABLE, CANARY = "v1", "v2"
STEPS = (10, 25, 50, 75, 100)
HOUR = 3600
TOTAL_RPS = 20.0
# The backfilled hours: [START, END). The rollout is over at START + 5 h; three more hours show
# what comes after the last step. The whole day would be three times the samples: 16 s of
# generating and backfilling for every test process instead of 5, and nothing more to decide.
END = START + 8 * HOUR


def step_start(step: int) -> int:
    """When step `step` (1 for 10 %, ..., 5 for 100 %) begins."""
    return START + step * HOUR


# The canary's weight from each time on: 0 until the first step.
SCHEDULE: tuple[tuple[float, int], ...] = (
    (START, 0),
    *((step_start(n), weight) for n, weight in enumerate(STEPS, 1)),
)


def stable_schedule(schedule: tuple[tuple[float, int], ...]) -> tuple[tuple[float, int], ...]:
    return tuple((t, 100 - weight) for t, weight in schedule)


@dataclass(frozen=True)
class Scenario:
    """A release in `namespace`: `stable` and `canary` versions of `service`, with the canary's
    weight following `schedule`; `workloads` are (stable, canary)."""

    name: str
    namespace: str
    service: str
    stable: str
    canary: str
    schedule: tuple[tuple[float, int], ...]
    workloads: tuple[Workload, Workload]
    expected: str  # what a correct analysis decides (the docstring of the scenario's function)


def _scenario(
    function_doc: str | None,
    name: str,
    *,
    total_rps: float = TOTAL_RPS,
    stable_errors: float = 0.001,
    canary_errors: Function | None = None,
    stable_ms: float = 40.0,
    canary_ms: float = 40.0,
    canary_gaps: tuple[tuple[float, float], ...] = (),
    canary_resets: tuple[float, ...] = (),
) -> Scenario:
    stable = Workload(
        name,
        SERVICE,
        STABLE,
        rps=weighted(total_rps, stable_schedule(SCHEDULE)),
        errors=constant(stable_errors),
        latency_ms=constant(stable_ms),
    )
    canary = Workload(
        name,
        SERVICE,
        CANARY,
        rps=weighted(total_rps, SCHEDULE),
        errors=canary_errors or constant(stable_errors),
        latency_ms=constant(canary_ms),
        gaps=canary_gaps,
        resets=canary_resets,
    )
    return Scenario(
        name, name, SERVICE, STABLE, CANARY, SCHEDULE, (stable, canary), function_doc or ""
    )


def healthy() -> Scenario:
    """Both versions at 0.1 % errors and a 40 ms median (p99 ≈ 128 ms). A correct analysis
    advances at every step once its interval is over, and promotes at 100 %."""
    return _scenario(healthy.__doc__, "healthy")


def errors_at_step_3() -> Scenario:
    """The canary's 5xx fraction goes from 0.1 % to 10 % when step 3 (50 %) begins. A correct
    analysis advances through steps 1 and 2, then fails the success rate at step 3 (90 % <
    99 %) and rolls back once the failures reach the failure limit."""
    return _scenario(
        errors_at_step_3.__doc__,
        "errors-at-step-3",
        canary_errors=stepping(0.001, step_start(3), 0.10),
    )


def slow() -> Scenario:
    """The canary's median latency is 400 ms (true p99 ≈ 1280 ms, about 2050 ms as
    `histogram_quantile` interpolates Istio's buckets), the stable's 40 ms; both at 0.1 %
    errors. A correct analysis fails the p99 ≤ 500 ms check from step 1 and rolls back."""
    return _scenario(slow.__doc__, "slow", canary_ms=400.0)


def low_traffic() -> Scenario:
    """0.02 requests/s in total (12 requests in a 10 minute window at 100 %), healthy. A
    correct analysis never calls it healthy: it holds, "not enough traffic", at every step."""
    return _scenario(low_traffic.__doc__, "low-traffic", total_rps=0.02)


def gaps() -> Scenario:
    """The canary has no samples for 20 minutes inside step 2 (from 20 to 40 minutes into it:
    failed scrapes), otherwise healthy. A correct analysis reports missing data (no result) in
    the gap, never "healthy", and changes nothing there; before and after it, it advances."""
    gap = (step_start(2) + 20 * 60, step_start(2) + 40 * 60)
    return _scenario(gaps.__doc__, "gaps", canary_gaps=(gap,))


def unhealthy_stable() -> Scenario:
    """The stable version at 5 % errors all day, the canary at 5.5 %. A relative check
    ("canary error rate ≤ stable + 1 point") passes; the absolute success rate ≥ 99 % fails
    (94.5 %), so with the defaults a correct analysis rolls back."""
    return _scenario(
        unhealthy_stable.__doc__,
        "unhealthy-stable",
        stable_errors=0.05,
        canary_errors=constant(0.055),
    )


def counter_resets() -> Scenario:
    """The canary's counters reset three times during step 2 (15, 30 and 45 minutes into it:
    restarted pods), traffic otherwise healthy. A correct analysis sees no negative rate and no
    drop in the success rate: it advances as for `healthy`."""
    resets = tuple(step_start(2) + minutes * 60 for minutes in (15, 30, 45))
    return _scenario(counter_resets.__doc__, "counter-resets", canary_resets=resets)


SCENARIOS: tuple[Scenario, ...] = (
    healthy(),
    errors_at_step_3(),
    slow(),
    low_traffic(),
    gaps(),
    unhealthy_stable(),
    counter_resets(),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def all_workloads() -> list[Workload]:
    return [workload for scenario in SCENARIOS for workload in scenario.workloads]
