"""The PromQL of the built-in checks, and the times `--at` and `--replay` take."""

from __future__ import annotations

import pytest

from meshcanary.analysis import queries
from meshcanary.analysis.run import parse_time
from meshcanary.errors import InputError


def test_a_scope_selects_its_reporter_namespace_deployments_and_labels() -> None:
    scope = queries.Scope("shop", ("api-v2", "api-v1"), 300, "waypoint", (("cluster", "eu-1"),))
    assert queries.requests(scope).promql == (
        'sum by (destination_workload) (increase(istio_requests_total{reporter="waypoint",'
        'destination_workload_namespace="shop",destination_workload=~"api-v1|api-v2",'
        'cluster="eu-1"}[300s]))'
    )


@pytest.mark.parametrize(
    ("percentile", "quantile"), [(99, "0.99"), (99.999, "0.99999"), (50, "0.5")]
)
def test_a_percentile_keeps_its_digits(percentile: float, quantile: str) -> None:
    promql = queries.latency(queries.Scope("shop", ("a-v1",), 60), percentile).promql
    assert promql.startswith(f"histogram_quantile({quantile}, ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-11-23T01:50:00Z", 1795398600.0),
        ("2026-11-23t01:50:00z", 1795398600.0),  # RFC 3339 allows lower case
        ("2026-11-23T02:50:00+01:00", 1795398600.0),
        ("2026-11-23T01:50:00", 1795398600.0),  # no zone: UTC
        ("1795398600", 1795398600.0),
        ("20261123", 1795392000.0),  # a date, not Unix seconds
    ],
)
def test_a_time_is_rfc_3339_or_unix_seconds(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


def test_a_time_that_is_neither_is_refused() -> None:
    with pytest.raises(InputError, match="is not a time"):
        parse_time("yesterday")


def test_a_replay_steps_by_any_go_duration_and_refuses_what_is_none() -> None:
    from meshcanary.analysis.run import parse_replay

    replay = parse_replay("1795392000..1795392180", "1m30s")
    assert replay.times == [1795392000.0, 1795392090.0, 1795392180.0]
    with pytest.raises(InputError, match='--every "10 minutes" is not a duration'):
        parse_replay("1795392000..1795392180", "10 minutes")
