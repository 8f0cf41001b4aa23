"""A new user's way from the article's manifests to a pushed canary step with its PR text.

init → import the seed → render → check (which finds the seed's targetPort) → fix → commit and
push → `step --next --commit --push` → a branch on the remote and a correct PR body. Real
kustomize, real git, a real bare remote.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import SHARED

SEED = SHARED / "seed"


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def test_from_the_seed_to_a_pushed_canary_step(cli, tmp_path: Path) -> None:
    repo, remote = tmp_path / "shop", tmp_path / "remote.git"
    assert cli("init", repo, "--service", "placeholder", "--env", "prod").code == 0
    (repo / "environments/prod/placeholder.yaml").unlink()
    for path in sorted((repo / "deploy/base/placeholder").iterdir()):
        path.unlink()
    (repo / "deploy/base/placeholder").rmdir()
    seed = [
        SEED / name
        for name in (
            "micro-api.yaml",
            "micro-api-canary-istio-v1.yaml",
            "micro-api-canary-istio-v2.yaml",
            "destination-rule-all.yaml",
            "virtual-service-all.yaml",
            "micro-gateway.yaml",
        )
    ]
    imported = cli("--repo", repo, "import", "--env", "prod", *seed)
    assert imported.code == 0, imported.err
    assert "meta data" in imported.err  # what could not be represented is said, not dropped
    assert cli("--repo", repo, "render").code == 0

    found = cli("--repo", repo, "check")
    assert found.code == 1
    assert (
        "deploy/base/micro-api/service.yaml:" in found.out and "[service-target-port]" in found.out
    )
    service = repo / "deploy/base/micro-api/service.yaml"
    service.write_text(
        service.read_text(encoding="utf-8").replace("targetPort: 9090", "targetPort: 19090"),
        encoding="utf-8",
    )
    assert cli("--repo", repo, "check").code == 0

    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Test")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "Import micro-api from the article")
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "-q", "origin", "main")

    body = tmp_path / "pr.md"
    stepped = cli(
        "--repo",
        repo,
        "step",
        "prod",
        "micro-api",
        "--next",
        "--commit",
        "--push",
        "origin",
        "--pr-body",
        body,
    )
    assert stepped.code == 0, stepped.err
    assert stepped.out == "prod/micro-api: v2 30% -> 50%\n"
    branch = "meshcanary/prod/micro-api/v2-50"
    remote_head = _git(repo, "ls-remote", "origin", f"refs/heads/{branch}").split()[0]
    assert remote_head == _git(repo, "rev-parse", "HEAD").strip()
    assert _git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "deploy/overlays/prod/.meshcanary.json",
        "deploy/overlays/prod/micro-api/virtualservice.yaml",
        "environments/prod/micro-api.yaml",
    ]
    text = body.read_text(encoding="utf-8")
    assert f"merging `{branch}` into `main`" in text
    assert "| v1 | 70% → 50% |" in text and "| v2 | 30% → 50% |" in text
    assert 'pie title Before\n    "v1" : 70\n    "v2" : 30' in text
    assert 'pie title After\n    "v1" : 50\n    "v2" : 50' in text
    assert "meshcanary set-weights prod micro-api v1=70 v2=30" in text
