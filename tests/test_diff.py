"""`meshcanary diff`: rendered, per-resource differences between a git ref and the working tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _git(repo: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    identity = [
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run(
        ["git", "-C", str(repo), *identity, *args], check=True, capture_output=True, env=env
    )


@pytest.fixture
def repo(example_repo: Path) -> Path:
    _git(example_repo, "init", "-q")
    _git(example_repo, "add", "-A")
    _git(example_repo, "commit", "-qm", "start")
    return example_repo


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_no_change_says_so(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert outcome.code == 0
    assert outcome.out == "No change to the rendered resources since `HEAD`.\n"


def test_weight_change_shows_only_the_virtual_service(repo: Path, cli) -> None:
    release = repo / "environments/prod/micro-api.yaml"
    _edit(release, "weight: 70}", "weight: 60}")
    _edit(release, "weight: 30}", "weight: 40}")
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert outcome.code == 0
    assert outcome.out.startswith("Rendered resources changed since `HEAD`: 1\n")
    assert "#### changed: VirtualService default/micro-api" in outcome.out
    changed = [
        line for line in outcome.out.splitlines() if line.startswith(("+ ", "- ", "+  ", "-  "))
    ]
    assert changed == [
        "-      weight: 70",
        "+      weight: 60",
        "-      weight: 30",
        "+      weight: 40",
    ]


def test_image_change_and_new_version_show_their_deployments(repo: Path, cli) -> None:
    release = repo / "environments/staging/micro-api.yaml"
    _edit(
        release,
        "micro-api:1.3, replicas: 2, weight: 50}",
        "micro-api:1.4, replicas: 2, weight: 50}",
    )
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff")
    assert outcome.code == 0
    assert "working tree: Deployment micro-staging/micro-api-v2" in outcome.out
    changed = [
        line.split(": ", 1)[-1]
        for line in outcome.out.splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.3",
        "registry.cn-hangzhou.aliyuncs.com/wudimanong/micro-api:1.4",
    ]
    assert "1 resource(s) differ from HEAD" in outcome.err


def test_removed_service_is_reported_as_removed(repo: Path, cli) -> None:
    (repo / "environments/dev/checkout.yaml").unlink()
    assert cli("--repo", repo, "render").code == 0
    outcome = cli("--repo", repo, "diff", "--format", "markdown")
    assert "#### removed: Deployment micro-dev/checkout-v1" in outcome.out
    assert "#### removed: Service micro-dev/checkout" in outcome.out


def test_unknown_ref_is_exit_2(repo: Path, cli) -> None:
    outcome = cli("--repo", repo, "diff", "--base", "no-such-branch")
    assert outcome.code == 2
    assert "Traceback" not in outcome.err
