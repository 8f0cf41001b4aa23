"""Repositories for the metric tests: a scenario's release (tests/support/scenarios.py) with
its steps committed when the scenario's series say they began, as merged pull requests are."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import GIT_EMAIL, GIT_NAME, ROOT, git
from tests.support.scenarios import START, STEPS, Scenario, step_start


def unix(seconds: float) -> str:
    """Unix seconds as `--at` takes them."""
    return str(int(seconds))


def commit_at(repo: Path, when: float, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    stamp = f"{int(when)} +0000"
    env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for args in (["add", "-A"], ["commit", "-qm", message]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", f"user.name={GIT_NAME}", "-c", f"user.email={GIT_EMAIL}",
             "-c", "commit.gpgsign=false", *args],
            check=True, capture_output=True, env=env,
        )  # fmt: skip


def release_text(scenario: Scenario, canary: int, analysis: str = "") -> str:
    return (
        f"service: {scenario.service}\n"
        f"base: deploy/base/{scenario.service}\n"
        "versions:\n"
        f"  {scenario.stable}: {{image: r/api:1, replicas: 2, weight: {100 - canary}}}\n"
        f"  {scenario.canary}: {{image: r/api:2, replicas: 2, weight: {canary}}}\n" + analysis
    )


def scenario_repo(tmp_path: Path, scenario: Scenario, analysis: str = "", until: int = 5) -> Path:
    """The scenario's repository, its history holding steps 1 to `until`."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "deploy/base/micro-api", repo / "deploy/base/micro-api")
    folder = repo / "environments" / scenario.name
    folder.mkdir(parents=True)
    (folder / "environment.yaml").write_text(
        f"namespace: {scenario.namespace}\n"
        "defaults:\n"
        f"  canary: {{steps: [{', '.join(map(str, STEPS))}]}}\n"
    )
    release = folder / f"{scenario.service}.yaml"
    git(repo, "init", "-q")
    release.write_text(release_text(scenario, 0, analysis))
    commit_at(repo, START, "start v2 at 0%")
    for step, weight in list(enumerate(STEPS, 1))[:until]:
        release.write_text(release_text(scenario, weight, analysis))
        commit_at(repo, step_start(step), f"v2 to {weight}%")
    return repo
