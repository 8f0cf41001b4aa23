"""A new user's way from the article's manifests to a pushed canary step with its PR text.

The README's journey, command by command, run by bash as a user runs it in a clone of this
repository: init → drop the placeholder service → import the article → render → check (which
finds the article's targetPort) → fix → commit and push to a bare remote → `step --next
--commit --push` → a branch on the remote and a correct PR body. The installed script, real
kustomize, real git.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ARTICLE, ROOT, commit_all, git, isolate_git

INTRO = "From the article's manifests (`examples/article/`) to a pushed canary step"
BRANCH = "meshcanary/prod/micro-api/v2-50"
TITLE = "prod/micro-api: v2 30% -> 50%"
IMPORT = (
    "meshcanary --repo shop import --env prod examples/article/micro-api*.yaml"
    " examples/article/destination-rule-all.yaml examples/article/virtual-service-all.yaml"
    " examples/article/micro-gateway.yaml"
)
FIRST_CHECK = "meshcanary --repo shop render && meshcanary --repo shop check"
STEP = "meshcanary --repo shop step prod micro-api --next --commit --push origin --pr-body pr.md"
# The README's commands (continuation lines joined, comments dropped), each with its exit status.
JOURNEY = (
    ("meshcanary init shop --env prod --service placeholder", 0),
    ("rm -r shop/environments/prod/placeholder.yaml shop/deploy/base/placeholder", 0),
    (IMPORT, 0),
    (FIRST_CHECK, 1),
    (
        "sed -i 's/targetPort: 9090/targetPort: 19090/' shop/deploy/base/micro-api/service.yaml",
        0,
    ),
    ("meshcanary --repo shop check", 0),
    (
        'git -C shop init -b main && git -C shop add -A && git -C shop commit -m "Import micro-api"',
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
    shutil.copytree(ARTICLE, clone / "examples" / "article")
    commit_all(clone)

    ran: dict[str, subprocess.CompletedProcess[str]] = {}
    for command, status in JOURNEY:
        done = subprocess.run(
            ["bash", "-c", command], cwd=clone, capture_output=True, text=True, check=False
        )
        assert done.returncode == status, f"{command}\n{done.stdout}\n{done.stderr}"
        ran[command] = done

    assert "meta data" in ran[IMPORT].stderr  # what could not be represented is said, not dropped
    found = ran[FIRST_CHECK].stdout
    assert "deploy/base/micro-api/service.yaml:" in found and "[service-target-port]" in found
    assert ran[STEP].stdout == f"{TITLE}\n"

    repo = clone / "shop"
    remote_head = git(repo, "ls-remote", "origin", f"refs/heads/{BRANCH}").split()[0]
    assert remote_head == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "deploy/overlays/prod/.meshcanary.json",
        "deploy/overlays/prod/micro-api/virtualservice.yaml",
        "environments/prod/micro-api.yaml",
    ]
    text = (clone / "pr.md").read_text(encoding="utf-8")
    assert f"merging `{BRANCH}` into `main`" in text
    assert "| v1 | 70% → 50% |" in text and "| v2 | 30% → 50% |" in text
    assert 'pie showData\n    title Before\n    "v1" : 70\n    "v2" : 30\n' in text
    assert 'pie showData\n    title After\n    "v1" : 50\n    "v2" : 50\n' in text
    assert "meshcanary set-weights prod micro-api v1=70 v2=30" in text
