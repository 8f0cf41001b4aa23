"""What a change is judged against, when that cannot be had: one clear error line each."""

from __future__ import annotations

from pathlib import Path

from tests.support import commit_all, git


def test_a_repository_with_no_commit_says_so(example_repo: Path, cli) -> None:
    git(example_repo, "init", "-q")
    outcome = cli("--repo", example_repo, "check", "--base", "HEAD")
    assert (outcome.code, outcome.err) == (
        2,
        "error: --base HEAD: the repository has no commit yet\n",
    )
    # The default base is HEAD when there is one: none yet is not an error.
    assert cli("--repo", example_repo, "check").code == 0


def test_a_ref_this_clone_lacks_says_how_to_fetch_it(example_repo: Path, cli) -> None:
    commit_all(example_repo)
    outcome = cli("--repo", example_repo, "check", "--base", "origin/main")
    assert outcome.code == 2
    assert outcome.err == (
        "error: --base origin/main: no such commit in this clone\n"
        "  hint: fetch it first, e.g. `git fetch --depth=1 origin main` (a CI checkout is "
        "shallow and has only the pull request's commit)\n"
    )
    # diff says it in the same words.
    diffed = cli("--repo", example_repo, "diff", "--base", "origin/main")
    assert (diffed.code, diffed.err) == (2, outcome.err)


def test_a_broken_repository_shows_gits_own_words(example_repo: Path, cli) -> None:
    commit_all(example_repo)
    with open(example_repo / ".git/config", "a", encoding="utf-8") as config:
        config.write("[broken\n")
    outcome = cli("--repo", example_repo, "check", "--base", "HEAD")
    assert outcome.code == 2
    assert outcome.err.startswith("error: --base HEAD: fatal: bad config line")


def test_outside_git_the_default_base_is_none(example_repo: Path, cli) -> None:
    assert cli("--repo", example_repo, "check").code == 0
    outcome = cli("--repo", example_repo, "check", "--base", "HEAD")
    assert outcome.code == 2
    assert "not a git repository" in outcome.err
