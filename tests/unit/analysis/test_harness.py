"""The test harness tells the truth: what the generator says it wrote is what a real Prometheus
answers over the backfilled scenarios, so an analysis tested on them can be trusted.

Tolerances: counters are whole numbers (rounded down), and Prometheus extrapolates `increase`
to the window's edges; 1 % on a count of thousands covers both, and is far below the
differences the scenarios are made of (0.1 % against 10 % errors, 205 ms against 2060 ms).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from meshcanary.analysis.prometheus import Prometheus
from tests.support import metrics
from tests.support.metrics import CODES, histogram_percentile, requests
from tests.support.prometheus import Server, require_tools
from tests.support.scenarios import BY_NAME, SCENARIOS, Scenario, step_start

WINDOW = 600  # 10 minutes


@pytest.fixture(scope="module")
def client(prometheus: Server) -> Prometheus:
    return Prometheus(prometheus.url, timeout=30)


def _selector(scenario: Scenario, version: str, extra: str = "") -> str:
    return (
        f'reporter="destination",destination_workload_namespace="{scenario.namespace}",'
        f'destination_workload="{scenario.service}-{version}"{extra}'
    )


def _increase(client: Prometheus, selector: str, at: float) -> float | None:
    found = client.query(f"sum(increase(istio_requests_total{{{selector}}}[10m]))", at)
    return found[0].value if found else None


def test_a_count_over_a_window_is_what_the_generator_served(client: Prometheus) -> None:
    healthy = BY_NAME["healthy"]
    at = step_start(2) + 30 * 60  # the canary has 25 % of 20 requests/s
    for workload in healthy.workloads:
        served = requests(workload, at - WINDOW, at)
        assert served == pytest.approx(20 * WINDOW * (25 if workload.version == "v2" else 75) / 100)
        found = _increase(client, _selector(healthy, workload.version), at)
        assert found == pytest.approx(served, rel=0.01)


def test_a_query_that_forgets_the_reporter_counts_every_request_twice(client: Prometheus) -> None:
    healthy = BY_NAME["healthy"]
    at = step_start(2) + 30 * 60
    destination = _increase(client, _selector(healthy, "v2"), at)
    both = _increase(client, _selector(healthy, "v2").removeprefix('reporter="destination",'), at)
    assert destination is not None and both == pytest.approx(2 * destination)


def test_a_query_that_forgets_the_namespace_mixes_scenarios(client: Prometheus) -> None:
    at = step_start(2) + 55 * 60  # past the gap of `gaps` (from 20 to 40 minutes into step 2)
    every = 'reporter="destination",destination_workload="micro-api-v2"'
    found = _increase(client, every, at)
    truth = sum(requests(s.workloads[1], at - WINDOW, at) for s in SCENARIOS)
    assert found == pytest.approx(truth, rel=0.01)
    assert found > 2 * requests(BY_NAME["healthy"].workloads[1], at - WINDOW, at)


def _error_ratio(client: Prometheus, scenario: Scenario, version: str, at: float) -> float:
    failed = _increase(client, _selector(scenario, version, ',response_code=~"5.."'), at)
    total = _increase(client, _selector(scenario, version), at)
    assert failed is not None and total
    return failed / total


def test_the_canary_fails_one_request_in_ten_from_step_3_on(client: Prometheus) -> None:
    scenario = BY_NAME["errors-at-step-3"]
    canary = scenario.workloads[1]
    before, after = step_start(3) - 5 * 60, step_start(3) + 30 * 60
    assert _error_ratio(client, scenario, "v2", after) == pytest.approx(0.10, abs=0.002)
    truth = requests(canary, after - WINDOW, after, "503") / requests(canary, after - WINDOW, after)
    assert truth == pytest.approx(0.10)
    assert _error_ratio(client, scenario, "v2", before) == pytest.approx(0.001, abs=0.001)
    assert _error_ratio(client, scenario, "v1", after) == pytest.approx(0.001, abs=0.001)


def test_404s_are_there_and_are_not_5xx(client: Prometheus) -> None:
    healthy = BY_NAME["healthy"]
    at = step_start(4) + 30 * 60
    not_found = _increase(client, _selector(healthy, "v1", ',response_code="404"'), at)
    total = _increase(client, _selector(healthy, "v1"), at)
    assert not_found is not None and total is not None
    assert not_found / total == pytest.approx(metrics.NOT_FOUND, rel=0.05)
    codes = client.query(
        f"count by (response_code) (istio_requests_total{{{_selector(healthy, 'v1')}}})", at
    )
    assert sorted(sample.labels["response_code"] for sample in codes) == sorted(CODES)


def test_an_unhealthy_stable_fails_5_percent_and_its_canary_5_5(client: Prometheus) -> None:
    scenario = BY_NAME["unhealthy-stable"]
    at = step_start(3) + 30 * 60
    assert _error_ratio(client, scenario, "v1", at) == pytest.approx(0.05, abs=0.002)
    assert _error_ratio(client, scenario, "v2", at) == pytest.approx(0.055, abs=0.002)


def _p99(client: Prometheus, scenario: Scenario, version: str, at: float) -> float:
    [found] = client.query(
        "histogram_quantile(0.99, sum by (le) (rate("
        f"istio_request_duration_milliseconds_bucket{{{_selector(scenario, version)}}}[10m])))",
        at,
    )
    return found.value


def test_p99_is_what_the_buckets_give_for_the_median(client: Prometheus) -> None:
    slow = BY_NAME["slow"]
    # At 75 %, 9000 requests a window: rounding each bucket down moves p99 by a few ms only.
    at = step_start(4) + 30 * 60
    assert histogram_percentile(0.99, 400) == pytest.approx(2060, rel=0.01)
    assert _p99(client, slow, "v2", at) == pytest.approx(histogram_percentile(0.99, 400), rel=0.01)
    assert _p99(client, slow, "v1", at) == pytest.approx(histogram_percentile(0.99, 40), rel=0.01)
    # The true p99 lies between the median and what the buckets show: both far from 500 ms.
    assert 400 < metrics.percentile(0.99, 400) < 500 * 3 < _p99(client, slow, "v2", at)
    assert metrics.percentile(0.99, 40) == pytest.approx(40 * 3.2, rel=0.01)


def test_counter_resets_never_make_a_count_negative_or_wrong(client: Prometheus) -> None:
    scenario = BY_NAME["counter-resets"]
    canary = scenario.workloads[1]
    selector = _selector(scenario, "v2")
    start, end = step_start(2) + 5 * 60, step_start(3) - 60
    [series] = client.query_range(
        f"sum(increase(istio_requests_total{{{selector}}}[10m]))", start, end, 60
    )
    assert len(series.points) == (end - start) // 60 + 1
    for t, value in series.points:
        assert value == pytest.approx(requests(canary, t - WINDOW, t), rel=0.01), t
    # The raw counter did drop three times: the resets are in the data.
    [raw] = client.query_range(f"sum(istio_requests_total{{{selector}}})", start, end, 30)
    drops = [a for (_, a), (_, b) in itertools.pairwise(raw.points) if b < a]
    assert len(drops) == 3


def test_a_gap_gives_no_result_and_the_data_comes_back_after_it(client: Prometheus) -> None:
    scenario = BY_NAME["gaps"]
    [(gap_start, gap_end)] = scenario.workloads[1].gaps
    inside = gap_start + 15 * 60  # the whole 10 minute window without a sample
    assert _increase(client, _selector(scenario, "v2"), inside) is None
    assert _increase(client, _selector(scenario, "v1"), inside) is not None
    after = gap_end + WINDOW
    canary = scenario.workloads[1]
    found = _increase(client, _selector(scenario, "v2"), after)
    assert found == pytest.approx(requests(canary, after - WINDOW, after), rel=0.01)


def test_low_traffic_stays_under_100_requests_a_window(client: Prometheus) -> None:
    scenario = BY_NAME["low-traffic"]
    at = step_start(5) + 30 * 60  # the canary has it all
    found = _increase(client, _selector(scenario, "v2"), at)
    assert found is not None and 0 < found < 100
    assert requests(scenario.workloads[1], at - WINDOW, at) == pytest.approx(12)


def test_the_generator_writes_counters_that_only_grow_but_at_resets() -> None:
    canary = BY_NAME["counter-resets"].workloads[1]
    text = metrics.openmetrics([canary], step_start(2), step_start(3))
    seen: dict[str, list[float]] = {}
    for line in text.splitlines():
        if line.startswith("istio_requests_total{"):
            series, value, _t = line.rsplit(" ", 2)
            seen.setdefault(series, []).append(float(value))
    assert len(seen) == 2 * len(CODES)
    for values in seen.values():
        drops = [a for a, b in itertools.pairwise(values) if b < a]
        assert len(drops) == 3
    assert text.endswith("# EOF\n")
    assert text == metrics.openmetrics([canary], step_start(2), step_start(3))  # deterministic


@pytest.mark.parametrize("ci", ["true", None])
def test_without_prometheus_the_tests_skip_locally_and_fail_in_ci(
    ci: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither prometheus nor promtool on it
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(outcome) as raised:
        require_tools()
    assert str(raised.value) == (
        "prometheus and promtool not on PATH: the metric tests need a real Prometheus "
        "(`apt-get install prometheus` brings both, or put a release's binaries on PATH)"
    )
