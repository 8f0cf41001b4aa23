"""The edit commands when git itself fails: one `error:` line and exit 2, never a traceback.

Real git, a real bare remote and a real broken repository; a git that fails is a script on
PATH in front of the real one, which fails the subcommand it is told to with the kind of
output a broken git prints (bytes that are not UTF-8, escapes, a NUL, a workflow command),
or is killed. Issue 12, item 4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Outcome, commit_all, git, isolate_git

REAL_GIT = shutil.which("git") or "git"
MESHCANARY = Path(sys.executable).parent / "meshcanary"
STEP = ("step", "prod", "micro-api", "--to", "40", "--commit", "--push", "origin")
BRANCH = "meshcanary/prod/micro-api/v2-40"

FAILING_GIT = f"""#!/bin/sh
# Run the real git, except for the subcommand named in $FAIL_GIT ("all": every one).
case "$1" in -*) sub="";; *) sub="$1";; esac
if [ -n "$FAIL_GIT" ] && [ "$FAIL_GIT" = all -o "$FAIL_GIT" = "$sub" ]; then
  case "$FAIL_HOW" in
    killed) kill -9 $$;;
    silent) exit 255;;
    *) printf '\\377\\376\\033[31mboom\\000\\r\\n::error::x\\n' >&2; exit 1;;
  esac
fi
exec {REAL_GIT} "$@"
"""


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path_factory, monkeypatch)


@pytest.fixture
def repo(example_repo: Path, tmp_path: Path) -> Path:
    """The examples, committed on main, with `origin` a bare repository holding main."""
    remote = tmp_path / "remote.git"
    subprocess.run([REAL_GIT, "init", "-q", "--bare", str(remote)], check=True)
    commit_all(example_repo)
    git(example_repo, "remote", "add", "origin", str(remote))
    git(example_repo, "push", "-q", "origin", "main")
    return example_repo


@pytest.fixture
def failing_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder put first on PATH, holding a `git` that fails as $FAIL_GIT and $FAIL_HOW say."""
    folder = tmp_path / "failing-bin"
    folder.mkdir()
    script = folder / "git"
    script.write_text(FAILING_GIT, encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def files(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def one_error(outcome: Outcome) -> str:
    """The one `error:` line of a run that failed as it should: exit 2, no traceback."""
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.err, outcome.err
    lines = outcome.err.splitlines()
    assert lines and lines[0].startswith("error: "), outcome.err
    assert [line for line in lines if "error:" in line and not line.startswith("  hint:")] == [
        lines[0]
    ], outcome.err
    assert all(line.startswith("  hint: ") for line in lines[1:]), outcome.err
    return lines[0]


def installed(repo: Path, *args: str, env: dict[str, str] | None = None) -> Outcome:
    """The installed `meshcanary` script in a process of its own (GitPython imported afresh)."""
    done = subprocess.run(
        [str(MESHCANARY), "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


# --- no git at all ------------------------------------------------------------------------


def test_no_git_on_path_in_a_fresh_process(repo: Path, tmp_path: Path) -> None:
    """GitPython looks for git while it is imported and raised an ImportError: a traceback."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    before = files(repo)
    outcome = installed(repo, *STEP, env={"PATH": str(empty)})
    assert one_error(outcome) == "error: git not found"
    assert files(repo) == before


def test_no_git_on_path_in_process(repo: Path, cli, tmp_path: Path, monkeypatch) -> None:
    # GitPython was imported with git there; its GitCommandNotFound comes at the first command.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    before = files(repo)
    assert one_error(cli("--repo", repo, *STEP)) == "error: git not found"
    assert files(repo) == before


def test_a_git_that_cannot_be_run(repo: Path, cli, failing_git: Path, monkeypatch) -> None:
    """A `git` without execute permission: Python's PermissionError was a traceback."""
    (failing_git / "git").chmod(0o644)
    monkeypatch.setenv("PATH", str(failing_git))  # no other git to fall back on
    before = files(repo)
    assert one_error(cli("--repo", repo, *STEP)) == "error: cannot run git: Permission denied"
    assert files(repo) == before


# --- a git that fails with odd output -----------------------------------------------------


def test_a_git_that_always_fails_in_a_fresh_process(repo: Path, failing_git: Path) -> None:
    before = files(repo)
    outcome = installed(repo, *STEP, env={"FAIL_GIT": "all"})
    # GitPython runs `git version` while it is imported: a failure there was a traceback.
    assert one_error(outcome) == "error: git does not work: `git version` failed: ::error::x"
    assert files(repo) == before


@pytest.mark.parametrize("how", ["odd", "silent", "killed"])
@pytest.mark.parametrize(
    ("command", "said"),
    [
        # These read as "no commits yet", "HEAD is detached" or "a hook committed too".
        ("rev-parse", "error: git cannot read HEAD: "),
        ("symbolic-ref", "error: git cannot read HEAD: "),
        ("rev-list", "error: git rev-list failed: "),
        ("status", "error: git status failed: "),
        ("checkout", f"error: cannot create branch {BRANCH}: "),
        ("add", "error: cannot stage the edited files: "),
        ("commit", "error: git commit failed: "),
        ("remote", "error: git remote failed: "),
    ],
)
def test_a_git_command_that_fails_stops_the_edit_and_takes_it_back(
    repo: Path, cli, failing_git: Path, monkeypatch, command: str, said: str, how: str
) -> None:
    monkeypatch.setenv("FAIL_GIT", command)
    monkeypatch.setenv("FAIL_HOW", how)
    before = files(repo)
    error = one_error(cli("--repo", repo, *STEP))
    assert error.startswith(said), error
    expected = {"odd": "::error::x", "silent": "code 255", "killed": "code -9"}[how]
    assert error.endswith(expected), error
    # Nothing committed, nothing left behind: the edit was taken back, main is checked out.
    monkeypatch.delenv("FAIL_GIT")
    assert files(repo) == before
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "branch", "--list", BRANCH) == ""
    assert git(repo, "status", "--porcelain") == ""


def test_a_push_that_fails_with_odd_output(repo: Path, cli, failing_git: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAIL_GIT", "push")
    error = one_error(cli("--repo", repo, *STEP))
    # What is not printable is written as an escape: the line stays one line.
    assert error == (f"error: cannot push {BRANCH} to origin: \\udcff\\udcfe\\x1b[31mboom\\x00"), (
        error
    )
    monkeypatch.delenv("FAIL_GIT")
    assert git(repo, "branch", "--show-current").strip() == BRANCH


# --- a broken repository ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breaks", "said"),
    [
        # Read as "HEAD is detached at an unknown commit".
        (
            lambda repo: (repo / ".git/config").write_text("[[[ not a config\n"),
            "error: git cannot read HEAD: fatal: bad config line 1 in file .git/config",
        ),
        (
            lambda repo: (repo / ".git/packed-refs").write_bytes(b"\x00 not refs\n"),
            "error: git cannot read HEAD: fatal: unexpected line in .git/packed-refs",
        ),
        (
            lambda repo: (repo / ".git/index").write_bytes(b"garbage"),
            "error: git status failed: fatal: .git/index: index file smaller than expected",
        ),
        (
            lambda repo: (repo / ".git/HEAD").write_text("garbage\n"),
            "error: {repo} is not inside a git work tree",
        ),
    ],
    ids=["config", "packed-refs", "index", "HEAD"],
)
def test_a_broken_repository_is_one_error(repo: Path, cli, breaks, said: str) -> None:
    breaks(repo)
    before = files(repo)
    error = one_error(cli("--repo", repo, *STEP))
    assert error.startswith(said.format(repo=repo)), error
    assert files(repo) == before


def test_a_repository_without_a_commit(example_repo: Path, cli) -> None:
    git(example_repo, "init", "-q")  # HEAD names main, which has no commit yet
    before = files(example_repo)
    error = one_error(cli("--repo", example_repo, *STEP))
    assert error == f"error: the repository at {example_repo} has no commits yet"
    assert files(example_repo) == before


def test_git_python_git_executable_names_the_git_to_run(repo: Path, tmp_path: Path) -> None:
    """The hint's way out: with no git on PATH, GIT_PYTHON_GIT_EXECUTABLE names one."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    outcome = installed(
        repo, *STEP, env={"PATH": str(empty), "GIT_PYTHON_GIT_EXECUTABLE": REAL_GIT}
    )
    assert outcome.code == 0, outcome.err
    assert git(repo, "branch", "--show-current").strip() == BRANCH
