"""A new user's way from a whole application's manifests to a pushed canary step with its
PR text.

The README's journey, command by command, run by bash as a user runs it in a clone of this
repository: init → drop the placeholder service → import Istio's Bookinfo (four services) into
staging, and into prod with other routes, reusing the bases → render → check → commit and push
to a bare remote → `step --next --commit --push` moves reviews' canary (v3, the newest) → a
branch on the remote and a correct PR body. The installed script, real kustomize, real git.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import BOOKINFO, ROOT, commit_all, git, isolate_git

INTRO = "From Istio's Bookinfo (`examples/bookinfo/`, four services, three versions of `reviews`)"
BRANCH = "meshcanary/staging/reviews/v3-10"
TITLE = "staging/reviews: v3 0% -> 10%; v1 (stable) keeps the rest, 80% -> 70%; v2 stays at 20%"
APP = (
    " examples/bookinfo/bookinfo.yaml examples/bookinfo/destination-rule-all.yaml"
    " examples/bookinfo/bookinfo-gateway.yaml"
)
DROPS = (
    " --drop 'DestinationRule/ratings:spec.subsets' --drop 'DestinationRule/details:spec.subsets'"
)
IMPORT_STAGING = (
    "meshcanary --repo shop import --env staging"
    + APP
    + " examples/bookinfo/virtual-service-reviews-80-20.yaml"
    + DROPS
)
IMPORT_PROD = (
    "meshcanary --repo shop import --env prod"
    + APP
    + " examples/bookinfo/virtual-service-reviews-test-v2.yaml"
    + DROPS
)
FIRST_CHECK = "meshcanary --repo shop render && meshcanary --repo shop check"
STEP = "meshcanary --repo shop step staging reviews --next --commit --push origin --pr-body pr.md"
# The README's commands (continuation lines joined, comments dropped), each with its exit status.
JOURNEY = (
    ("meshcanary init shop --env staging --env prod --service placeholder", 0),
    (
        "rm -r shop/environments/staging/placeholder.yaml shop/environments/prod/placeholder.yaml"
        " shop/deploy/base/placeholder",
        0,
    ),
    (IMPORT_STAGING, 0),
    (IMPORT_PROD, 0),
    (FIRST_CHECK, 0),
    (
        'git -C shop init -b main && git -C shop add -A && git -C shop commit -m "Import Bookinfo"',
        0,
    ),
    ("git init --bare shop.git && git -C shop remote add origin ../shop.git", 0),
    ("git -C shop push origin main", 0),
    (STEP, 0),
)
# It needs the pull request's repository on GitHub: the test checks what it names instead.
PR = f'cd shop && gh pr create --head {BRANCH} --title "{TITLE}" --body-file ../pr.md'


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```sh\n", text.index(INTRO)) + len("```sh\n")
    block = re.sub(r"\s*\\\n\s*", " ", text[start : text.index("```\n", start)])
    return [re.sub(r"\s+# .*", "", line) for line in block.splitlines()]


def test_the_readme_shows_the_journey_this_test_runs() -> None:
    assert readme_commands() == [command for command, _ in JOURNEY] + [PR]


def test_from_the_article_to_a_pushed_canary_step(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(tmp_path_factory, monkeypatch)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    clone = tmp_path / "meshcanary"  # the user's clone: the article's manifests, under git
    shutil.copytree(BOOKINFO, clone / "examples" / "bookinfo")
    commit_all(clone)

    ran: dict[str, subprocess.CompletedProcess[str]] = {}
    for command, status in JOURNEY:
        done = subprocess.run(
            ["bash", "-c", command], cwd=clone, capture_output=True, text=True, check=False
        )
        assert done.returncode == status, f"{command}\n{done.stdout}\n{done.stderr}"
        ran[command] = done

    # Every service in one run, verified; the second environment reuses the bases.
    assert "verify: the rendered tree is equivalent to the manifests" in ran[IMPORT_STAGING].stdout
    assert "service reviews: stable v1" in ran[IMPORT_STAGING].stdout
    assert "4 dropped (--drop), 0 refused" in ran[IMPORT_STAGING].stdout
    assert "base deploy/base/reviews exists, the same: reused" in ran[IMPORT_PROD].stdout
    assert ran[STEP].stdout == f"{TITLE}\n"

    repo = clone / "shop"
    remote_head = git(repo, "ls-remote", "origin", f"refs/heads/{BRANCH}").split()[0]
    assert remote_head == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "deploy/overlays/staging/reviews/.meshcanary.json",
        "deploy/overlays/staging/reviews/virtualservice.yaml",
        "environments/staging/reviews.yaml",
    ]
    text = (clone / "pr.md").read_text(encoding="utf-8")
    assert f"merging `{BRANCH}` into `main`" in text
    assert "| v1 | 80% → 70% |" in text and "| v3 | 0% → 10% |" in text
    assert "meshcanary set-weights staging reviews v1=80 v2=20 v3=0" in text
