"""`canary.analysis` in release and environment files: the model it builds, the defaults, and
what the schema and the loader refuse, at which line."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.errors import InputError
from meshcanary.release.load import load
from meshcanary.release.model import DEFAULT_ANALYSIS, Analysis, Check, Release

RELEASE = "environments/staging/micro-api.yaml"
ENVIRONMENT = "environments/staging/environment.yaml"


def _with(repo: Path, tail: str) -> str:
    text = (repo / RELEASE).read_text(encoding="utf-8") + tail
    (repo / RELEASE).write_text(text, encoding="utf-8")
    return text


def _load(repo: Path) -> Release:
    (loaded,) = load(repo, ["staging"], {"staging": {"micro-api"}})
    return next(r for r in loaded.releases if r.service == "micro-api")


def _refused(repo: Path) -> list[tuple[str, int, int, str]]:
    with pytest.raises(InputError) as raised:
        load(repo, ["staging"], {"staging": {"micro-api"}})
    return [
        (p.location.file, p.location.line, p.location.column, p.message)
        for p in raised.value.problems
    ]


def _line(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


def test_every_field_reaches_the_model(example_repo: Path) -> None:
    _with(
        example_repo,
        "canary:\n"
        "  steps: [5, 50, 100]\n"
        "  analysis:\n"
        "    interval: 1h\n"
        "    window: 90s\n"
        "    failureLimit: 2\n"
        "    minRequests: 40\n"
        "    checks:\n"
        "      - successRate: {min: 99.5, maxBelowStable: 0.5}\n"
        "      - latency: {percentile: 99.9, maxAboveStable: 50}\n"
        "      - name: saturation\n"
        '        query: max by (destination_workload) (x{ns="{{ namespace }}"}[{{window}}])\n'
        "        workloadLabel: pod_owner\n"
        "        min: 0\n"
        "        max: 0.8\n",
    )
    assert _load(example_repo).analysis == Analysis(
        interval=3600.0,
        window=90.0,
        failure_limit=2,
        min_requests=40,
        checks=(
            Check("success-rate", "success-rate", min=99.5, below_stable=0.5),
            Check("latency-p99-9", "latency", above_stable=50, percentile=99.9),
            Check(
                "saturation",
                "query",
                min=0,
                max=0.8,
                query='max by (destination_workload) (x{ns="{{ namespace }}"}[{{window}}])',
                workload_label="pod_owner",
            ),
        ),
    )


def test_a_plan_without_analysis_gets_the_defaults(example_repo: Path) -> None:
    release = _load(example_repo)
    assert release.steps and release.analysis == DEFAULT_ANALYSIS


def test_the_environments_analysis_is_every_releases_default(example_repo: Path) -> None:
    path = example_repo / ENVIRONMENT
    text = path.read_text(encoding="utf-8")
    old = "  canary: {steps: [10, 25, 50, 75, 100]}\n"
    assert old in text
    path.write_text(
        text.replace(
            old,
            "  canary:\n    steps: [10, 25, 50, 75, 100]\n    analysis: {minRequests: 7}\n",
        ),
        encoding="utf-8",
    )
    analysis = _load(example_repo).analysis
    assert analysis is not None and analysis.min_requests == 7
    assert analysis.checks == DEFAULT_ANALYSIS.checks


def test_an_unknown_placeholder_is_refused_at_the_query(example_repo: Path) -> None:
    text = _with(
        example_repo,
        "canary:\n"
        "  analysis:\n"
        "    checks:\n"
        "      - name: odd\n"
        '        query: sum(x{pod="{{ pod }}"})\n'
        "        max: 1\n",
    )
    assert _refused(example_repo) == [
        (RELEASE, _line(text, "query:"), 16, "unknown placeholder {{ pod }} in the query")
    ]


def test_two_checks_of_one_name_are_refused_at_the_second(example_repo: Path) -> None:
    text = _with(
        example_repo,
        "canary:\n"
        "  analysis:\n"
        "    checks:\n"
        "      - successRate: {min: 99}\n"
        "      - successRate: {min: 95}\n",
    )
    assert _refused(example_repo) == [
        (RELEASE, _line(text, "{min: 95}"), 9, 'two checks are named "success-rate"')
    ]


def test_a_window_longer_than_the_interval_is_refused(example_repo: Path) -> None:
    text = _with(example_repo, "canary:\n  analysis:\n    interval: 5m\n    window: 10m\n")
    ((_, line, _, message),) = _refused(example_repo)
    assert line == _line(text, "window: 10m")
    assert message.startswith("the window (600s) is longer than the interval (300s)")


def test_an_analysis_without_steps_is_refused(example_repo: Path) -> None:
    path = example_repo / ENVIRONMENT
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  canary: {steps: [10, 25, 50, 75, 100]}\n", ""), "utf-8")
    release = _with(example_repo, "canary:\n  analysis: {minRequests: 5}\n")
    assert _refused(example_repo) == [
        (
            RELEASE,
            _line(release, "analysis:"),
            13,
            "an analysis without canary steps: nothing would advance on its verdicts",
        )
    ]


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        ("{successRate: {min: 99}, latency: {max: 5}}", "successRate"),  # two kinds
        ("{name: q, query: up}", "name: q"),  # a query without a threshold
        ("{query: up, max: 1}", "query: up"),  # a query without a name
        ("{latency: {percentile: 99}}", "latency"),  # a latency without a bound
        ("{successRate: {min: 99}, max: 1}", "successRate"),  # a query's bound on another kind
    ],
)
def test_the_schema_refuses_a_check_that_is_not_one_thing(
    example_repo: Path, check: str, needle: str
) -> None:
    text = _with(example_repo, f"canary:\n  analysis:\n    checks:\n      - {check}\n")
    found = _refused(example_repo)
    assert found, "refused"
    assert {line for _, line, _, _ in found} == {_line(text, needle)}
    # Named as a choice, not with another kind's field's message.
    assert any(
        "must be exactly one of: successRate, latency, query with name" in message
        or "needs one of: max, maxAboveStable" in message
        for _, _, _, message in found
    ), found


def test_a_window_of_no_time_is_refused(example_repo: Path) -> None:
    text = _with(example_repo, "canary:\n  analysis:\n    window: 0s\n")
    ((_, line, _, message),) = _refused(example_repo)
    assert (line, message) == (_line(text, "window: 0s"), "the window must be at least 1s, not 0s")


def test_requests_is_no_check_name(example_repo: Path) -> None:
    text = _with(
        example_repo,
        "canary:\n  analysis:\n    checks:\n      - name: requests\n        successRate: {min: 9}\n",
    )
    ((_, line, _, message),) = _refused(example_repo)
    assert line == _line(text, "name: requests")
    assert message == 'the check name "requests" is the request count\'s own row'


def test_an_environments_analysis_serves_releases_with_plans_of_their_own(
    example_repo: Path,
) -> None:
    path = example_repo / ENVIRONMENT
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "  canary: {steps: [10, 25, 50, 75, 100]}\n",
            "  canary:\n    analysis: {minRequests: 9, reporter: waypoint, labels: {cluster: eu}}\n",
        ),
        encoding="utf-8",
    )
    _with(example_repo, "canary:\n  steps: [20, 100]\n")
    analysis = _load(example_repo).analysis
    assert analysis is not None
    assert (analysis.min_requests, analysis.reporter, analysis.labels) == (
        9,
        "waypoint",
        (("cluster", "eu"),),
    )
