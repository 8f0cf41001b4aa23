"""`analyze` and `advance` against a real Prometheus over generated series (tests/support/
scenarios.py), with the steps in real git history: each scenario's decisions over a replay of
its day, what `--at` decides, and `advance` carrying decisions out as commits pushed to a bare
remote, the evidence in the pull request's body.

Each scenario's repository holds one environment named after it (its namespace), whose
micro-api release went through the steps at the times the series were generated for: a commit
per step, dated when the step began, as a merged pull request would be.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, git
from tests.support.canaries import commit_at, scenario_repo, unix
from tests.support.prometheus import Server
from tests.support.scenarios import BY_NAME, START, STEPS, Scenario, step_start

MINUTE = 60


def _replay(
    cli: Any, repo: Path, server: Server, env: str, start: float, end: float
) -> list[tuple[int, int, str]]:
    """(minutes since START, the canary's weight, decision) at every 10 minutes."""
    done = cli(
        "--repo", repo, "analyze", env, "--prometheus", server.url,
        "--replay", f"{unix(start)}..{unix(end)}", "--every", "10m", "--format", "json",
    )  # fmt: skip
    assert done.code == 0, done.err
    decisions = json.loads(done.out)["decisions"]
    return [
        (
            int((_seconds(d["at"]) - START) // MINUTE),
            d["weight"],
            d["decision"],
        )
        for d in decisions
    ]


def _seconds(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339).timestamp()


@pytest.fixture
def server(prometheus: Server) -> Server:
    return prometheus


def test_a_healthy_canary_advances_at_each_interval_and_promotes_from_75(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    scenario = BY_NAME["healthy"]
    repo = scenario_repo(tmp_path, scenario)
    found = _replay(cli, repo, server, "healthy", step_start(1), step_start(5) - 1)
    expected = []
    for step, weight in enumerate(STEPS[:4], 1):
        began = (step_start(step) - START) // MINUTE
        expected += [(began, weight, "hold")]  # younger than a window
        verdict = "promote" if weight == 75 else "advance"
        expected += [(began + m, weight, verdict) for m in (10, 20, 30, 40, 50)]
    assert found == expected


def test_errors_at_step_3_roll_back_once_three_windows_failed(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["errors-at-step-3"], until=3)
    found = _replay(cli, repo, server, "errors-at-step-3", step_start(2), step_start(4) - 1)
    step2, step3 = (step_start(2) - START) // MINUTE, (step_start(3) - START) // MINUTE
    assert found == [
        (step2, 25, "hold"),
        *((step2 + m, 25, "advance") for m in (10, 20, 30, 40, 50)),
        (step3, 50, "hold"),  # younger than a window
        (step3 + 10, 50, "hold"),  # two failed windows of three
        *((step3 + m, 50, "rollback") for m in (20, 30, 40, 50)),
    ]


def test_the_json_says_why_with_every_check(tmp_path: Path, cli: Any, server: Server) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["errors-at-step-3"], until=3)
    done = cli(
        "--repo", repo, "analyze", "errors-at-step-3", "micro-api", "--prometheus", server.url,
        "--at", "2026-11-23T03:20:00Z", "--format", "json",
    )  # fmt: skip
    assert done.code == 0, done.err
    (decision,) = json.loads(done.out)["decisions"]
    assert {k: v for k, v in decision.items() if k != "checks"} == {
        "environment": "errors-at-step-3",
        "service": "micro-api",
        "canary": "v2",
        "stable": "v1",
        "weight": 50,
        "decision": "rollback",
        "reason": decision["reason"],
        "at": "2026-11-23T03:20:00Z",
        "target": None,
    }
    assert decision["reason"].endswith("failed in 4 windows in a row (failureLimit 3)")
    rows = [(c["name"], c["version"], c["verdict"]) for c in decision["checks"]]
    assert rows == [
        ("requests", "v1", "baseline"),
        ("requests", "v2", "pass"),
        ("success-rate", "v1", "baseline"),
        ("success-rate", "v2", "fail"),
        ("latency-p99", "v1", "baseline"),
        ("latency-p99", "v2", "pass"),
    ]
    stable, canary = (c for c in decision["checks"] if c["name"] == "success-rate")
    assert (stable["threshold"], canary["threshold"]) == (None, ">= 99")
    assert 89 < canary["value"] < 91  # 10% of the canary's requests are 503s
    assert 99.8 < stable["value"] < 100  # the stable's 0.1%


def test_a_slow_canary_rolls_back_at_its_first_step(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["slow"], until=1)
    found = _replay(cli, repo, server, "slow", step_start(1), step_start(1) + 30 * MINUTE)
    began = (step_start(1) - START) // MINUTE
    assert found == [
        (began, 10, "hold"),
        (began + 10, 10, "hold"),
        (began + 20, 10, "rollback"),
        (began + 30, 10, "rollback"),
    ]


def test_low_traffic_is_never_healthy(tmp_path: Path, cli: Any, server: Server) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["low-traffic"])
    found = _replay(cli, repo, server, "low-traffic", step_start(1), step_start(5) - 1)
    assert {decision for _, _, decision in found} == {"hold"}
    done = cli(
        "--repo", repo, "analyze", "low-traffic", "--prometheus", server.url,
        "--at", unix(step_start(4) + 30 * MINUTE),
    )  # fmt: skip
    assert "hold: not enough traffic: v2 served" in done.out
    assert "fewer than 100" in done.out


def test_a_gap_in_the_canarys_series_holds_and_is_not_healthy(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["gaps"], until=2)
    found = _replay(cli, repo, server, "gaps", step_start(2), step_start(3) - 1)
    step2 = (step_start(2) - START) // MINUTE
    # The gap is from 20 to 40 minutes into step 2: windows ending in it, or reading into it,
    # have no requests of the canary's.
    assert found == [
        (step2, 25, "hold"),
        (step2 + 10, 25, "advance"),
        (step2 + 20, 25, "advance"),
        (step2 + 30, 25, "hold"),
        (step2 + 40, 25, "hold"),
        (step2 + 50, 25, "advance"),
    ]
    done = cli("--repo", repo, "analyze", "gaps", "--prometheus", server.url,
               "--at", unix(step_start(2) + 30 * MINUTE))  # fmt: skip
    assert (
        "gaps/micro-api: v2 at 25% (stable v1): hold: no data: v2 has no request series in "
        "the last 5m (failed scrapes, or no pods)\n" in done.out
    )
    assert "  requests      v2       -        >= 100     no-data\n" in done.out


def test_an_unhealthy_stable_fails_the_absolute_check_and_passes_a_relative_one(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    scenario = BY_NAME["unhealthy-stable"]
    at = unix(step_start(2) + 30 * MINUTE)
    absolute = scenario_repo(tmp_path / "absolute", scenario, until=2)
    done = cli("--repo", absolute, "analyze", "unhealthy-stable", "--prometheus", server.url,
               "--at", at, "--format", "json")  # fmt: skip
    assert json.loads(done.out)["decisions"][0]["decision"] == "rollback"
    relative = scenario_repo(
        tmp_path / "relative",
        scenario,
        "canary:\n  analysis:\n    checks:\n"
        "      - name: errors-vs-stable\n        successRate: {maxBelowStable: 1}\n",
        until=2,
    )
    done = cli("--repo", relative, "analyze", "unhealthy-stable", "--prometheus", server.url,
               "--at", at, "--format", "json")  # fmt: skip
    decision = json.loads(done.out)["decisions"][0]
    assert decision["decision"] == "advance"
    stable, canary = (c for c in decision["checks"] if c["name"] == "errors-vs-stable")
    assert (stable["version"], stable["verdict"]) == ("v1", "baseline")
    assert 94.9 < stable["value"] < 95.1
    assert (canary["version"], canary["verdict"]) == ("v2", "pass")
    assert 94.4 < canary["value"] < 94.6


def test_counter_resets_do_not_read_as_failures(tmp_path: Path, cli: Any, server: Server) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["counter-resets"], until=2)
    found = _replay(cli, repo, server, "counter-resets", step_start(2), step_start(3) - 1)
    step2 = (step_start(2) - START) // MINUTE
    assert found == [
        (step2, 25, "hold"),
        *((step2 + m, 25, "advance") for m in (10, 20, 30, 40, 50)),
    ]


def test_an_unreachable_prometheus_holds_everything_and_exits_1(tmp_path: Path, cli: Any) -> None:
    repo = scenario_repo(tmp_path, BY_NAME["healthy"], until=2)
    done = cli("--repo", repo, "analyze", "healthy", "--prometheus", "http://127.0.0.1:9",
               "--at", unix(step_start(2) + 30 * MINUTE), "--format", "json")  # fmt: skip
    assert done.code == 1
    (decision,) = json.loads(done.out)["decisions"]
    assert decision["decision"] == "hold"
    assert decision["reason"].startswith("Prometheus unreachable: ")
    assert {c["verdict"] for c in decision["checks"]} == {"unreachable"}


# advance ---------------------------------------------------------------------------------


def _rendered_repo(tmp_path: Path, cli: Any, scenario: Scenario, until: int) -> Path:
    """The scenario's repository with its overlays rendered, on main, pushed to origin."""
    repo = scenario_repo(tmp_path, scenario, until=until)
    assert cli("--repo", repo, "-q", "render", scenario.name).code == 0
    commit_at(repo, step_start(until), "render")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "branch", "-M", "main")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo


def _merge(repo: Path, branch: str) -> None:
    """What merging the pull request does: main fast-forwarded to the branch."""
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", branch)


def test_four_advance_runs_take_a_healthy_canary_from_10_to_100(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    weights = []
    at = step_start(1)
    for run in range(4):
        at += 15 * MINUTE
        body = tmp_path / f"body-{run}.md"
        done = cli(
            "--repo", repo, "advance", "healthy", "micro-api", "--prometheus", server.url,
            "--at", unix(at), "--commit", "--push", "origin", "--pr-body", body,
        )  # fmt: skip
        assert done.code == 0, done.err
        branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
        assert git(repo, "ls-remote", "origin", branch).strip()
        # The commit is dated when the analysis said so: the next step's interval counts from it.
        assert git(repo, "log", "-1", "--format=%ct").strip() == unix(at)
        text = body.read_text(encoding="utf-8")
        assert "### Analysis" in text and "| success-rate | v2 |" in text
        _merge(repo, branch)
        weights.append(done.out.splitlines()[0])
    assert weights == [
        "healthy/micro-api: v2 at 10% (stable v1): advance to 25%: healthy for 15m: next step 25%",
        "healthy/micro-api: v2 at 25% (stable v1): advance to 50%: healthy for 15m: next step 50%",
        "healthy/micro-api: v2 at 50% (stable v1): advance to 75%: healthy for 15m: next step 75%",
        "healthy/micro-api: v2 at 75% (stable v1): promote to 100%: healthy for 15m at the "
        "plan's last step",
    ]
    release = (repo / "environments/healthy/micro-api.yaml").read_text(encoding="utf-8")
    assert "weight: 100}" in release and "weight: 0}" in release
    assert cli("--repo", repo, "render", "--check").code == 0
    assert git(repo, "status", "--porcelain") == ""


def test_advance_within_the_interval_changes_nothing(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    head = git(repo, "rev-parse", "HEAD")
    done = cli(
        "--repo", repo, "advance", "healthy", "--prometheus", server.url,
        "--at", unix(step_start(1) + 7 * MINUTE), "--commit", "--push", "origin",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "hold: healthy; the step has run 7m of its 10m" in done.out
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


def test_a_rollback_is_a_pull_request_with_the_failing_metrics(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["errors-at-step-3"], until=3)
    main = git(repo, "rev-parse", "main").strip()
    body = tmp_path / "body.md"
    done = cli(
        "--repo", repo, "advance", "errors-at-step-3", "--prometheus", server.url,
        "--at", unix(step_start(3) + 20 * MINUTE), "--commit", "--push", "origin",
        "--pr-body", body, "--format", "json",
    )  # fmt: skip
    assert done.code == 0, done.err
    (decision,) = json.loads(done.out)["decisions"]
    assert decision["decision"] == "rollback"
    change = decision["change"]
    assert change["branch"] == "meshcanary/errors-at-step-3/micro-api/v2-0"
    assert change["base"] == "main"
    # Several services may be carried out in one run: each body has its own file.
    assert change["bodyFile"] == str(tmp_path / "body-micro-api.md")
    text = Path(change["bodyFile"]).read_text(encoding="utf-8")
    assert "**rollback** — success-rate 90, not >= 99: failed in 4 windows" in text
    assert "| success-rate | v2 | 90 | >= 99 | fail |" in text
    # The windows of the step as a line of bars, oldest first.
    assert "| success-rate | v2 | `" in text.split("Windows of the step")[1]
    assert git(repo, "ls-remote", "origin", change["branch"]).strip()
    # Without --rollback-direct the base branch waits for the review, here and on the remote.
    assert git(repo, "ls-remote", "origin", "main").split()[0] == main


def test_rollback_direct_commits_on_the_base_branch_and_pushes_it(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["slow"], until=1)
    before = git(repo, "rev-parse", "HEAD").strip()
    done = cli(
        "--repo", repo, "advance", "slow", "--prometheus", server.url,
        "--at", unix(step_start(1) + 20 * MINUTE), "--commit", "--push", "origin",
        "--rollback-direct",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(repo, "rev-parse", "HEAD~1").strip() == before
    assert (
        git(repo, "ls-remote", "origin", "main").split()[0]
        == git(repo, "rev-parse", "HEAD").strip()
    )
    assert "v2: {image: r/api:2, replicas: 2, weight: 0}" in (
        repo / "environments/slow/micro-api.yaml"
    ).read_text(encoding="utf-8")


def test_a_prometheus_failure_changes_nothing(tmp_path: Path, cli: Any) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    head = git(repo, "rev-parse", "HEAD")
    done = cli(
        "--repo", repo, "advance", "healthy", "--prometheus", "http://127.0.0.1:9",
        "--at", unix(step_start(1) + 30 * MINUTE), "--commit", "--push", "origin",
    )  # fmt: skip
    assert done.code == 1
    assert "hold: Prometheus unreachable" in done.out
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


def test_a_change_whose_branch_waits_for_review_is_not_committed_again(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    args = ("--repo", repo, "advance", "healthy", "--prometheus", server.url, "--commit",
            "--push", "origin", "--pr-body", tmp_path / "pr.md", "--format", "json")  # fmt: skip
    first = cli(*args, "--at", unix(step_start(1) + 15 * MINUTE))
    assert first.code == 0, first.err
    branch = json.loads(first.out)["decisions"][0]["change"]["branch"]
    pushed = git(repo, "ls-remote", "origin", branch).split()[0]
    git(repo, "checkout", "-q", "main")  # the pull request is not merged
    again = cli(*args, "--at", unix(step_start(1) + 25 * MINUTE))
    assert again.code == 0, again.err
    change = json.loads(again.out)["decisions"][0]["change"]
    assert (change["branch"], change["waiting"]) == (branch, True)
    # Titled, so the workflow opens the pull request if none is open (closed, or never made).
    assert change["title"] == "healthy/micro-api: v2 10% -> 25%"
    assert "is on the remote already" in again.err
    assert git(repo, "ls-remote", "origin", branch).split()[0] == pushed
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(repo, "status", "--porcelain") == ""
    # The body is written afresh with the newer analysis, for the pull request to be updated.
    text = (tmp_path / "pr-micro-api.md").read_text(encoding="utf-8")
    assert "`meshcanary analyze` at 2026-11-23T01:25:00Z: **advance**" in text


# Failures a custom query meets on the real server --------------------------------------------


def _custom(tmp_path: Path, query: str) -> Path:
    analysis = (
        "canary:\n  analysis:\n    checks:\n"
        f"      - name: custom\n        query: '{query}'\n        max: 1\n"
    )
    return scenario_repo(tmp_path, BY_NAME["healthy"], analysis, until=2)


@pytest.mark.parametrize(
    ("query", "verdict", "code", "reason"),
    [
        # PromQL Prometheus refuses: the query's fault, said in Prometheus's words.
        ("sum(rate(", "bad-query", 1, "Prometheus bad-query: "),
        # A query of a series nobody has: no value for the canary.
        (
            'sum by (destination_workload) (absent_series{namespace="{{ namespace }}"})',
            "no-data",
            0,
            "no verdict from custom (no-data)",
        ),
        # Not summed by Deployment: a series per response code, so no one value for each.
        (
            'increase(istio_requests_total{reporter="destination",'
            'destination_workload=~"{{ workloads }}"}[{{ window }}])',
            "bad-query",
            1,
            "Prometheus bad-query: the query gives micro-api-v",
        ),
        # 0/0 for each Deployment.
        (
            'sum by (destination_workload) (istio_requests_total{reporter="destination",'
            'destination_workload=~"{{ workloads }}"}) * 0 / 0',
            "nan",
            0,
            "no verdict from custom (nan)",
        ),
    ],
)
def test_a_custom_query_that_gives_no_verdict_holds(
    tmp_path: Path, cli: Any, server: Server, query: str, verdict: str, code: int, reason: str
) -> None:
    repo = _custom(tmp_path, query)
    done = cli("--repo", repo, "analyze", "healthy", "--prometheus", server.url,
               "--at", unix(step_start(2) + 30 * MINUTE), "--format", "json")  # fmt: skip
    assert done.code == code, done.err
    (decision,) = json.loads(done.out)["decisions"]
    assert decision["decision"] == "hold"
    assert decision["reason"].startswith(reason)
    canary = [c for c in decision["checks"] if c["name"] == "custom" and c["version"] == "v2"]
    assert [c["verdict"] for c in canary] == [verdict]
    if verdict == "bad-query" and "series" in decision["reason"]:
        assert "more than one series" in decision["reason"]
        assert "aggregate it by destination_workload" in decision["reason"]


def test_the_workflows_jq_reads_what_advance_writes(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    """canary-advance.yml's filter, run by the real jq on advance's JSON: the branches to open
    pull requests for, and none for a rollback pushed to the base branch."""
    import shutil

    import yaml

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    workflow = yaml.safe_load((ROOT / ".github/workflows/canary-advance.yml").read_text())
    script = next(
        step["run"] for step in workflow["jobs"]["advance"]["steps"]
        if step.get("name") == "Open or update the pull requests"
    )  # fmt: skip
    program = script.split("jq -c '", 1)[1].split("'", 1)[0]
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    done = cli("--repo", repo, "advance", "healthy", "--prometheus", server.url, "--commit",
               "--push", "origin", "--pr-body", tmp_path / "pr.md", "--format", "json",
               "--at", unix(step_start(1) + 15 * MINUTE))  # fmt: skip
    assert done.code == 0, done.err
    report = tmp_path / "advance-healthy.json"
    report.write_text(done.out)
    picked = subprocess.run(
        [jq, "-c", program, str(report)], env={**os.environ, "BASE": "main"},
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert [json.loads(line)["branch"] for line in picked] == ["meshcanary/healthy/micro-api/v2-25"]
    change = json.loads(picked[0])
    assert change["title"] and Path(change["bodyFile"]).is_file()


def test_a_merged_branch_kept_on_the_remote_does_not_wait(
    tmp_path: Path, cli: Any, server: Server
) -> None:
    """The same change again (the canary set back by hand, then advanced again): its old branch
    is merged, so the new commit goes on it as a fast-forward and a pull request opens."""
    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    args = ("--repo", repo, "advance", "healthy", "--prometheus", server.url, "--commit",
            "--push", "origin", "--format", "json")  # fmt: skip
    first = cli(*args, "--at", unix(step_start(1) + 15 * MINUTE))
    branch = json.loads(first.out)["decisions"][0]["change"]["branch"]
    _merge(repo, branch)
    git(repo, "push", "-q", "origin", "main")
    assert (
        cli("--repo", repo, "-q", "set-weights", "healthy", "micro-api", "v1=90", "v2=10").code == 0
    )
    commit_at(repo, step_start(1) + 20 * MINUTE, "back to 10%")
    again = cli(*args, "--at", unix(step_start(1) + 35 * MINUTE))
    assert again.code == 0, again.err
    change = json.loads(again.out)["decisions"][0]["change"]
    assert (change["branch"], change["waiting"], change["written"]) == (branch, False, True)
    assert (
        git(repo, "ls-remote", "origin", branch).split()[0]
        == git(repo, "rev-parse", "HEAD").strip()
    )


def test_one_services_failed_edit_does_not_stop_the_others(tmp_path: Path, cli: Any) -> None:
    """Decisions as analyze would give them, the first stale (the release moved since): it is
    refused and reported, and the second is carried out."""
    from meshcanary.analysis.decide import Decision
    from meshcanary.commands import EditOptions
    from meshcanary.commands.edit import advance

    repo = _rendered_repo(tmp_path, cli, BY_NAME["healthy"], until=1)
    stale = Decision("healthy", "micro-api", "v2", "v1", 30, "advance", "healthy", (), 50)
    fresh = Decision("healthy", "micro-api", "v2", "v1", 10, "advance", "healthy", (), 25)
    done = advance(repo, [stale, fresh], EditOptions(commit=True, push="origin"))
    assert done[0].error is not None and "the analysis read v2 at 30%" in done[0].error
    assert done[1].error is None and done[1].result is not None and done[1].result.written
    assert git(repo, "ls-remote", "origin", "meshcanary/healthy/micro-api/v2-25").strip()
