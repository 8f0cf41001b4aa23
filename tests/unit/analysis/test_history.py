"""When a step began, from real git history: weights and images begin steps, nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from meshcanary.analysis.history import history
from tests.support import GIT_EMAIL, GIT_NAME

RELEASE = "environments/e/api.yaml"
T = 1_795_392_000  # git reads a date of fewer digits as something other than Unix seconds


def _commit(repo: Path, when: int, text: str) -> None:
    (repo / RELEASE).parent.mkdir(parents=True, exist_ok=True)
    (repo / RELEASE).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    stamp = f"{T + when} +0000"
    env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for args in (["add", "-A"], ["commit", "-qm", str(when)]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", f"user.name={GIT_NAME}", "-c",
             f"user.email={GIT_EMAIL}", "-c", "commit.gpgsign=false", *args],
            check=True, capture_output=True, env=env,
        )  # fmt: skip


def _release(v2: int, image: str = "r/a:2", replicas: int = 1) -> str:
    return (
        "versions:\n"
        f"  v1: {{image: r/a:1, replicas: {replicas}, weight: {100 - v2}}}\n"
        f"  v2: {{image: {image}, replicas: {replicas}, weight: {v2}}}\n"
    )


def test_weights_and_images_begin_steps_and_nothing_else_does(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _commit(tmp_path, 1000, _release(10))
    _commit(tmp_path, 2000, _release(10, replicas=3))  # replicas only: the same step
    _commit(tmp_path, 3000, _release(25))  # weights
    _commit(tmp_path, 4000, _release(25, image="r/a:2.1"))  # a new build of the canary
    _commit(tmp_path, 5000, "# a comment\n" + _release(25, image="r/a:2.1"))
    _commit(tmp_path, 6000, _release(10, image="r/a:2.1"))  # weights set back
    found = history(tmp_path, RELEASE)
    assert [(c.time - T, c.weights) for c in found.changes] == [
        (1000.0, {"v1": 90, "v2": 10}),
        (3000.0, {"v1": 75, "v2": 25}),
        (4000.0, {"v1": 75, "v2": 25}),
        (6000.0, {"v1": 90, "v2": 10}),
    ]
    assert found.at(T + 4999) == found.changes[2] and found.at(T + 999) is None


def test_a_merge_begins_the_step_when_it_lands(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    _commit(tmp_path, 1000, _release(10))
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "-b", "step"], check=True)
    _commit(tmp_path, 2000, _release(25))  # on the pull request's branch
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "main"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_AUTHOR_DATE": f"{T + 5000} +0000", "GIT_COMMITTER_DATE": f"{T + 5000} +0000"}
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", f"user.name={GIT_NAME}", "-c",
         f"user.email={GIT_EMAIL}", "merge", "-q", "--no-ff", "-m", "merge", "step"],
        check=True, env=env,
    )  # fmt: skip
    assert [c.time - T for c in history(tmp_path, RELEASE).changes] == [1000.0, 5000.0]
