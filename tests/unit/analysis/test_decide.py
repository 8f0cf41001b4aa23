"""The decision from a canary's windows: each branch of `decide`, on numbers written here.

The same decisions on a real Prometheus, over generated series, are in test_analyze.py; here
each rule of the order (failure first, then traffic, data, failing checks, the interval) gets
a case that only it decides.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from meshcanary.analysis import decide
from meshcanary.analysis.decide import Numbers, Window
from meshcanary.release import load
from meshcanary.release.model import Analysis, Check, Release
from tests.support import ROOT

T0 = 1_795_392_000.0  # the step began here
W = 300.0  # the default window


def _release(tmp_path: Path, weights: tuple[int, int] = (75, 25), extra: str = "") -> Release:
    shutil.copytree(ROOT / "deploy/base/micro-api", tmp_path / "deploy/base/micro-api")
    folder = tmp_path / "environments/e"
    folder.mkdir(parents=True)
    (folder / "environment.yaml").write_text(
        "namespace: shop\ndefaults:\n  canary:\n    steps: [10, 25, 50, 75, 100]\n"
    )
    (folder / "micro-api.yaml").write_text(
        "service: micro-api\n"
        "base: deploy/base/micro-api\n"
        "versions:\n"
        f"  v1: {{image: r/a:1, replicas: 1, weight: {weights[0]}}}\n"
        f"  v2: {{image: r/a:2, replicas: 1, weight: {weights[1]}}}\n" + extra
    )
    return load.load(tmp_path, ["e"])[0].releases[0]


def _window(
    analysis: Analysis,
    end: float,
    *,
    requests: float = 1000.0,
    errors: float = 0.0,
    p99: float | None = 120.0,
    stable_errors: float = 0.0,
    error: tuple[str, str] | None = None,
) -> Window:
    # A success rate's value is its 5xx count; a latency's, the percentile in ms.
    values = {
        check.name: {"v1": stable_errors, "v2": errors}
        if check.kind == "success-rate"
        else {"v1": 100.0, "v2": p99}
        for check in analysis.checks
    }
    numbers = Numbers(end, {"v1": requests * 3, "v2": requests}, values, error)
    return Window(end, decide.readings(analysis, numbers, "v1", "v2"), error)


def _decide(release: Release, windows: list[Window], at: float) -> decide.Decision:
    assert release.analysis is not None
    return decide.decide(release, release.analysis, windows, at, T0)


def _healthy(release: Release, at: float, count: int = 3) -> list[Window]:
    assert release.analysis is not None
    return [_window(release.analysis, at - k * W) for k in range(count)]


def test_a_healthy_step_past_its_interval_advances_to_the_next_step(tmp_path: Path) -> None:
    release = _release(tmp_path)
    at = T0 + 700
    found = _decide(release, _healthy(release, at), at)
    assert (found.decision, found.target) == ("advance", 50)
    assert found.reason == "healthy for 11.667m: next step 50%"


def test_the_step_before_100_promotes(tmp_path: Path) -> None:
    release = _release(tmp_path, (25, 75))
    at = T0 + 700
    found = _decide(release, _healthy(release, at), at)
    assert (found.decision, found.target) == ("promote", 100)


def test_a_plan_whose_last_step_is_below_100_promotes_from_it(tmp_path: Path) -> None:
    release = _release(tmp_path, (50, 50), "canary:\n  steps: [10, 25, 50]\n")
    at = T0 + 700
    assert _decide(release, _healthy(release, at), at).decision == "promote"


def test_a_healthy_step_within_its_interval_holds(tmp_path: Path) -> None:
    release = _release(tmp_path)
    at = T0 + 400
    found = _decide(release, _healthy(release, at), at)
    assert found.decision == "hold"
    assert found.reason == "healthy; the step has run 6.667m of its 10m"


def test_a_step_younger_than_a_window_holds_whatever_the_numbers(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 200
    windows = [_window(release.analysis, at - k * W, errors=500) for k in range(3)]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason == "the step began 3.333m ago, less than a window (5m)"


def test_failures_up_to_the_limit_roll_back_before_the_interval_is_over(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [_window(release.analysis, at - k * W, errors=50) for k in range(3)]
    found = _decide(release, windows, at)
    assert found.decision == "rollback"
    assert found.reason == (
        "success-rate 95, not >= 99: failed in 3 windows in a row (failureLimit 3)"
    )


def test_fewer_failures_than_the_limit_hold_and_say_how_many(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [
        _window(release.analysis, at, p99=900.0),
        _window(release.analysis, at - W, p99=900.0),
        _window(release.analysis, at - 2 * W),
    ]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason == "latency-p99 900, not <= 500 (2 of 3 failed windows before a rollback)"


def test_windows_from_before_the_step_do_not_count_towards_a_rollback(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 2 * W  # two whole windows in the step; the third began before it
    windows = [_window(release.analysis, at - k * W, errors=50) for k in range(3)]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert "(2 of 3 failed windows before a rollback)" in found.reason


def test_too_few_requests_hold_and_are_never_healthy(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [_window(release.analysis, at - k * W, requests=40) for k in range(3)]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason == "not enough traffic: v2 served 40 requests in 5m, fewer than 100"
    assert {r.verdict for r in found.checks if r.version == "v2"} == {"not-enough-traffic"}


def test_too_few_requests_with_errors_do_not_roll_back(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [_window(release.analysis, at - k * W, requests=40, errors=40) for k in range(3)]
    assert _decide(release, windows, at).decision == "hold"


@pytest.mark.parametrize(("p99", "verdict"), [(None, "no-data"), (math.nan, "nan")])
def test_a_missing_or_nan_value_holds_with_its_verdict(
    tmp_path: Path, p99: float | None, verdict: str
) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [_window(release.analysis, at - k * W, p99=p99) for k in range(3)]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason == f"no verdict from latency-p99 ({verdict})"


def test_a_prometheus_failure_holds_and_is_marked_as_one(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    failure = ("unreachable", "cannot reach http://127.0.0.1:9/")
    windows = [_window(release.analysis, at - k * W, error=failure) for k in range(3)]
    found = _decide(release, windows, at)
    assert (found.decision, found.error) == ("hold", "unreachable")
    assert found.reason == "Prometheus unreachable: cannot reach http://127.0.0.1:9/"
    assert {r.verdict for r in found.checks} == {"unreachable"}


def test_weights_not_committed_hold(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    found = decide.decide(release, release.analysis, _healthy(release, at), at, None)
    assert found.decision == "hold"
    assert found.reason == "the weights or images now in the release file are not committed yet"


def _relative(tmp_path: Path) -> Release:
    return _release(
        tmp_path,
        extra=(
            "canary:\n"
            "  steps: [10, 25, 50, 75, 100]\n"
            "  analysis:\n"
            "    checks:\n"
            "      - name: errors-vs-stable\n"
            "        successRate: {maxBelowStable: 1}\n"
        ),
    )


def test_a_relative_check_compares_the_canary_with_the_stable(tmp_path: Path) -> None:
    release = _relative(tmp_path)
    assert release.analysis is not None
    at = T0 + 700
    # The stable serves 3000 requests with 5% errors (95%); the canary 1000 with 5.5% (94.5%).
    windows = [
        _window(release.analysis, at - k * W, errors=55, stable_errors=150) for k in range(3)
    ]
    found = _decide(release, windows, at)
    assert found.decision == "advance"
    rows = [(r.name, r.version, r.value, r.threshold, r.verdict) for r in found.checks]
    assert rows[2:] == [
        ("errors-vs-stable", "v1", 95.0, None, "baseline"),
        ("errors-vs-stable", "v2", 94.5, ">= stable - 1 = 94", "pass"),
    ]


def test_a_relative_check_fails_when_the_canary_falls_further_behind(tmp_path: Path) -> None:
    release = _relative(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    windows = [
        _window(release.analysis, at - k * W, errors=70, stable_errors=150) for k in range(3)
    ]
    found = _decide(release, windows, at)
    assert found.decision == "rollback"
    assert found.reason.startswith("errors-vs-stable 93, not >= stable - 1 = 94")


def test_the_defaults_are_flaggers(tmp_path: Path) -> None:
    analysis = _release(tmp_path).analysis
    assert analysis is not None and not analysis.written
    assert (analysis.min_requests, analysis.failure_limit) == (100, 3)
    assert analysis.checks == (
        Check("success-rate", "success-rate", min=99.0),
        Check("latency-p99", "latency", max=500.0),
    )


@pytest.mark.parametrize(
    ("ran", "said"),
    [(700, "11.667m"), (3600, "1h"), (8000, "2h 13m"), (479_130, "5d 13h"), (2 * 86400, "2d")],
)
def test_a_long_step_says_its_age_in_hours_and_days(tmp_path: Path, ran: float, said: str) -> None:
    release = _release(tmp_path)
    at = T0 + ran
    assert (
        _decide(release, _healthy(release, at), at).reason == f"healthy for {said}: next step 50%"
    )


def test_healthy_now_but_not_through_the_interval_holds(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 700
    windows = [
        _window(release.analysis, at),
        _window(release.analysis, at - W, errors=50),  # failed, inside the last 10 minutes
        _window(release.analysis, at - 2 * W),
    ]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason == "healthy now, but not in 1 of the 2 windows of the last 10m"


def test_a_decision_the_edit_would_refuse_holds_and_says_why(tmp_path: Path) -> None:
    release = _release(tmp_path)
    # v1 10, v2 60, v3 30 (the canary): the next step, 50, would leave v1 and v2 with 50%.
    text = (tmp_path / "environments/e/micro-api.yaml").read_text()
    text = text.replace("weight: 75}", "weight: 10}").replace("weight: 25}", "weight: 60}")
    text += "  v3: {image: r/a:3, replicas: 1, weight: 30}\n"
    (tmp_path / "environments/e/micro-api.yaml").write_text(text)
    release = load.load(tmp_path, ["e"])[0].releases[0]
    assert release.analysis is not None
    at = T0 + 700
    windows = [
        Window(at - k * W, decide.readings(release.analysis, _numbers(at - k * W), "v1", "v3"))
        for k in range(3)
    ]
    found = _decide(release, windows, at)
    assert found.decision == "hold"
    assert found.reason.startswith("healthy for 11.667m: next step 50%, but advance is refused: ")
    assert "v2 already takes 60%" in found.reason


def _numbers(end: float) -> Numbers:
    return Numbers(
        end,
        {"v1": 1000.0, "v3": 1000.0},
        {"success-rate": {"v1": 0.0, "v3": 0.0}, "latency-p99": {"v1": 90.0, "v3": 90.0}},
    )


def test_a_starved_stable_is_named_with_its_request_count(tmp_path: Path) -> None:
    release = _relative(tmp_path)
    assert release.analysis is not None
    at = T0 + 700
    numbers = Numbers(at, {"v1": 40.0, "v2": 500.0}, {"errors-vs-stable": {"v1": 1.0, "v2": 0.0}})
    window = Window(at, decide.readings(release.analysis, numbers, "v1", "v2"))
    found = _decide(release, [window, window, window], at)
    assert found.reason == "not enough traffic: v1 served 40 requests in 5m, fewer than 100"


def test_a_failure_shows_the_decimals_that_failed_it(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.analysis is not None
    at = T0 + 3 * W
    # 99.0004% would read as 99 with three decimals: not >= 99 would make no sense.
    windows = [_window(release.analysis, at - k * W, requests=2500, errors=25.01) for k in range(3)]
    assert _decide(release, windows, at).reason.startswith("success-rate 98.9996, not >= 99")
