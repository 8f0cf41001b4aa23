"""A small repository for gitops tests (a release file and its overlay), and git run as a
person runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RELEASE = "environments/prod/micro-api.yaml"
OVERLAY = "deploy/overlays/prod/micro-api"
PATHS = [RELEASE, OVERLAY]
FILES = {
    RELEASE: "service: micro-api\nversions:\n  v1: {weight: 70}\n  v2: {weight: 30}\n",
    "environments/prod/environment.yaml": "namespace: default\n",
    f"{OVERLAY}/kustomization.yaml": "resources: [v1, v2, virtualservice.yaml]\n",
    f"{OVERLAY}/virtualservice.yaml": "weight: 70\nweight: 30\n",
    f"{OVERLAY}/v1/kustomization.yaml": "nameSuffix: -v1\n",
    f"{OVERLAY}/v2/kustomization.yaml": "nameSuffix: -v2\n",
    "README.md": "# example\n",
}
# Variables the test itself sets so that no one's own git configuration leaks in.
KEPT = ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git as a person would, never with a GIT_DIR a test set to confuse gitops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in KEPT}
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.rstrip("\n")


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def status(repo: Path) -> list[str]:
    return git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()


def edit(repo: Path) -> None:
    """What `meshcanary step` writes: a new weight in the release file and the overlay."""
    write(
        repo,
        {
            RELEASE: FILES[RELEASE].replace("70", "50").replace("30", "50"),
            f"{OVERLAY}/virtualservice.yaml": "weight: 50\nweight: 50\n",
        },
    )


def bare_remote(tmp_path: Path) -> Path:
    """An empty bare repository, tmp_path/remote.git, to be a work tree's `origin`."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    return bare


def pushed_work_tree(tmp_path: Path, remote: Path, *config: tuple[str, str]) -> Path:
    """tmp_path/work: FILES in one commit, pushed to `remote` as `origin`'s main; each
    (key, value) of `config` set in it first."""
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", str(work))
    for key, value in config:
        git(work, "config", key, value)
    write(work, FILES)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "-u", "origin", "main")
    return work
