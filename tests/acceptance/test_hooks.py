"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit framework.

Each test makes a git repository from the example environments/ and deploy/, installs
pre-commit's git hook in it and runs `git commit`, the way a person would: pre-commit decides
which hooks run on which staged files, and the commit goes through only if they pass.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT

BIN = Path(sys.executable).parent
MESHCANARY = BIN / "meshcanary"
HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
RELEASE = "environments/prod/micro-api.yaml"
VIRTUALSERVICE = "deploy/overlays/prod/micro-api/virtualservice.yaml"


def _manifest() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))
    return hooks


def _local_hooks() -> list[dict[str, Any]]:
    """The hooks of .pre-commit-hooks.yaml as `repo: local` hooks on the installed meshcanary.

    A consumer's pre-commit installs meshcanary from git into a virtual environment of its own
    (`language: python`), which needs downloads. The tests run offline, so they keep every key
    of each hook as .pre-commit-hooks.yaml has it (files, pass_filenames, require_serial,
    always_run, args: read from the file so they cannot drift) and change only how the command
    is found: `language: system`, with `entry` the console script beside this interpreter.
    """
    hooks = []
    for hook in _manifest():
        command = shlex.split(hook["entry"])
        assert command[0] == "meshcanary", hook["entry"]
        hooks.append(
            {**hook, "language": "system", "entry": shlex.join([str(MESHCANARY), *command[1:]])}
        )
    return hooks


def _names() -> dict[str, str]:
    """Hook id → the name pre-commit prints."""
    return {hook["id"]: hook["name"] for hook in _manifest()}


@dataclass
class Result:
    status: str  # Passed, Failed or Skipped
    reason: str  # e.g. "(no files to check)"
    output: str  # what pre-commit printed under the status line: hook id, exit code, output


@dataclass
class Commit:
    code: int
    output: str
    hooks: dict[str, Result]  # by hook id


class Repo:
    """A throwaway git repository with pre-commit's hook installed."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        # Nothing of the outer environment's git state (GIT_DIR, GIT_INDEX_FILE, ... when the
        # suite itself runs from a git hook) or pre-commit settings (SKIP) leaks in; a fixed
        # identity and no global or system git configuration (core.hooksPath, commit.gpgsign).
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GIT_", "PRE_COMMIT")) and key != "SKIP"
        }
        self.env.update(
            GIT_AUTHOR_NAME="Mesh Canary",
            GIT_AUTHOR_EMAIL="canary@example.com",
            GIT_COMMITTER_NAME="Mesh Canary",
            GIT_COMMITTER_EMAIL="canary@example.com",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            PRE_COMMIT_HOME=str(home),
            PRE_COMMIT_COLOR="never",
        )

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=120,
        )

    def git(self, *args: str) -> str:
        done = self.run("git", *args)
        assert done.returncode == 0, done.stdout
        return done.stdout

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def commit(self, message: str) -> Commit:
        done = self.run("git", "commit", "-m", message)
        return Commit(done.returncode, done.stdout, _parse(done.stdout))

    def read(self, name: str) -> str:
        return (self.path / name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text, encoding="utf-8")


_STATUS = re.compile(r"^(?P<name>.+?)\.+(?P<reason>\(.*\))?(?P<status>Passed|Failed|Skipped)$")


def _parse(output: str) -> dict[str, Result]:
    """Split pre-commit's report into one Result per hook (by id)."""
    ids = {name: hook_id for hook_id, name in _names().items()}
    results: dict[str, Result] = {}
    current: Result | None = None
    for line in output.splitlines():
        match = _STATUS.match(line)
        if match and match["name"] in ids:
            current = Result(match["status"], match["reason"] or "", "")
            results[ids[match["name"]]] = current
        elif current is not None:
            current.output += line + "\n"
    return results


@pytest.fixture
def repo(example_repo: Path, tmp_path: Path) -> Repo:
    repo = Repo(example_repo, tmp_path / "pre-commit-home")
    repo.write("README.md", "# deployments\n")
    config = {"repos": [{"repo": "local", "hooks": _local_hooks()}]}
    repo.write(".pre-commit-config.yaml", yaml.safe_dump(config, sort_keys=False))
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", "examples")  # before the hook is installed
    done = repo.run(sys.executable, "-m", "pre_commit", "install")
    assert done.returncode == 0, done.stdout
    return repo


def _set_weights(repo: Repo, v1: int, v2: int) -> int:
    """Set micro-api's prod weights; return the 1-based line of v2's version entry."""
    lines = repo.read(RELEASE).splitlines(keepends=True)
    found = {}
    for index, line in enumerate(lines):
        for version, weight in (("v1", v1), ("v2", v2)):
            if line.lstrip().startswith(f"{version}:") and "weight:" in line:
                lines[index] = re.sub(r"weight: \d+", f"weight: {weight}", line)
                found[version] = index
    assert set(found) == {"v1", "v2"}, "the example's release file changed shape"
    repo.write(RELEASE, "".join(lines))
    return found["v2"] + 1


def test_weights_that_do_not_sum_to_100_block_the_commit(repo: Repo) -> None:
    before = repo.head()
    line = _set_weights(repo, 70, 20)
    text = repo.read(RELEASE).splitlines()[line - 1]
    column = text.index("weight: 20") + len("weight: ") + 1  # the bad value itself
    repo.git("add", RELEASE)

    commit = repo.commit("prod: micro-api 70/20")

    assert commit.code != 0, commit.output
    assert repo.head() == before
    check = commit.hooks["meshcanary-check"]
    assert check.status == "Failed", commit.output
    assert f"{RELEASE}:{line}:{column}: error: weights sum to 90" in check.output, commit.output


def test_a_weight_change_committed_with_its_render_passes(repo: Repo) -> None:
    before = repo.head()
    _set_weights(repo, 60, 40)
    rendered = repo.run(MESHCANARY, "render")
    assert rendered.returncode == 0, rendered.stdout
    repo.git("add", "--all")
    staged = repo.git("diff", "--cached", "--name-only").split()
    assert set(staged) == {
        RELEASE,
        "deploy/overlays/prod/micro-api/.meshcanary.json",
        VIRTUALSERVICE,
    }

    commit = repo.commit("prod: micro-api 60/40")

    assert commit.code == 0, commit.output
    assert commit.hooks["meshcanary-check"].status == "Passed", commit.output
    assert commit.hooks["meshcanary-render"].status == "Passed", commit.output
    assert repo.head() != before
    assert repo.git("status", "--porcelain") == ""  # the hooks changed nothing


def test_a_release_file_committed_without_its_render_is_blocked(repo: Repo) -> None:
    # The render exists in the working tree but is not staged: pre-commit stashes it, so the
    # hooks judge what would be committed, not what is on disk.
    before = repo.head()
    _set_weights(repo, 60, 40)
    rendered = repo.run(MESHCANARY, "render")
    assert rendered.returncode == 0, rendered.stdout
    repo.git("add", RELEASE)

    commit = repo.commit("prod: micro-api 60/40, render forgotten")

    assert commit.code != 0, commit.output
    assert repo.head() == before
    render = commit.hooks["meshcanary-render"]
    assert render.status == "Failed", commit.output
    assert "- exit code: 1" in render.output, commit.output  # 1: stale (2 would be bad input)
    for diff_line in (
        f"--- a/{VIRTUALSERVICE}",
        f"+++ b/{VIRTUALSERVICE}",
        "-      weight: 70",
        "+      weight: 60",
        "-      weight: 30",
        "+      weight: 40",
    ):
        assert diff_line in render.output.splitlines(), commit.output
    check = commit.hooks["meshcanary-check"]
    assert check.status == "Failed", commit.output
    assert "[render-fresh]" in check.output, commit.output
    # pre-commit put the unstaged render back.
    assert "weight: 60" in repo.read(VIRTUALSERVICE)


def test_a_commit_outside_environments_and_deploy_checks_nothing(repo: Repo) -> None:
    """The check hook always runs (a deletion passes it no file), and finds nothing staged
    under environments/, deploy/ or policies/ to check."""
    before = repo.head()
    repo.write("README.md", "# deployments\n\nHow we ship.\n")
    repo.git("add", "README.md")

    commit = repo.commit("docs")

    assert commit.code == 0, commit.output
    assert repo.head() != before
    assert set(commit.hooks) == set(_names()), commit.output
    assert commit.hooks["meshcanary-check"].status == "Passed", commit.output
    assert commit.hooks["meshcanary-check"].output == "", commit.output
    render = commit.hooks["meshcanary-render"]
    assert (render.status, render.reason) == ("Skipped", "(no files to check)"), commit.output


def test_deleting_a_release_file_without_its_overlay_is_blocked(repo: Repo) -> None:
    """pre-commit passes hooks no deleted file: before, this commit ran no hook and landed
    an overlay that nothing renders any more."""
    before = repo.head()
    repo.git("rm", "--quiet", "environments/prod/checkout.yaml")

    commit = repo.commit("prod: drop checkout, overlay forgotten")

    assert commit.code != 0, commit.output
    assert repo.head() == before
    check = commit.hooks["meshcanary-check"]
    assert check.status == "Failed", commit.output
    assert (
        "deploy/overlays/prod/checkout/virtualservice.yaml:1:1: error: virtualservice.yaml is "
        "no longer rendered from environments/prod/checkout.yaml [render-fresh]"
    ) in check.output, commit.output


def test_a_hook_in_a_monorepo_subfolder_checks_and_reports_from_the_top(
    example_repo: Path, tmp_path: Path
) -> None:
    """The repository is platform/releases/ of a larger work tree; the hook gets `-C` in its
    args (after the command, as pre-commit appends them) and reports paths from the top."""
    top = tmp_path / "monorepo"
    releases = top / "platform" / "releases"
    releases.parent.mkdir(parents=True)
    example_repo.rename(releases)
    repo = Repo(top, tmp_path / "pre-commit-home")
    hooks = [{**hook, "args": ["-C", "platform/releases"]} for hook in _local_hooks()]
    repo.write(
        ".pre-commit-config.yaml", yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    )
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", "monorepo")
    assert repo.run(sys.executable, "-m", "pre_commit", "install").returncode == 0
    before = repo.head()
    release = "platform/releases/" + RELEASE
    text = repo.read(release)
    repo.write(release, text.replace("weight: 30}", "weight: 20}"))
    repo.git("add", release)

    commit = repo.commit("prod: micro-api 70/20")

    assert commit.code != 0, commit.output
    assert repo.head() == before
    check = commit.hooks["meshcanary-check"]
    assert check.status == "Failed", commit.output
    assert f"{release}:" in check.output and "weights sum to 90" in check.output, commit.output
