"""A baseline narrowed to some paths: git walks those alone, and answers only about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcanary.baseline import Baseline, resolve
from tests.support import commit_all, isolate_git, write


@pytest.fixture
def worktree(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed work tree whose meshcanary repository is its folder `repo`, then changed:
    files edited in three folders (one named like a pattern), one file new, one outside."""
    isolate_git(tmp_path_factory, monkeypatch)
    tree = tmp_path_factory.mktemp("tree")
    repo = tree / "repo"
    for path in ("a/x.yaml", "b[1]/y.yaml", "b1/z.yaml", "outside.yaml"):
        write(repo / path if path != "outside.yaml" else tree / path, "before\n")
    commit_all(tree)
    for path in ("a/x.yaml", "b[1]/y.yaml", "b1/z.yaml", "c/new.yaml"):
        write(repo / path, "after\n")
    write(tree / "outside.yaml", "after\n")
    return repo


def _head(repo: Path) -> Baseline:
    return resolve(repo, "HEAD", required=True)


def test_the_whole_repository_by_default(worktree: Path) -> None:
    assert _head(worktree).changed == {"a/x.yaml", "b[1]/y.yaml", "b1/z.yaml", "c/new.yaml"}


def test_narrowed_it_lists_what_differs_under_its_paths_only(worktree: Path) -> None:
    baseline = _head(worktree).narrowed(["a/", "./c/new.yaml", "b[1]", "b*"])
    # `b*` names a folder that is not there, and is not a pattern that would match b1.
    assert baseline.changed == {"a/x.yaml", "b[1]/y.yaml", "c/new.yaml"}
    assert baseline.touches("a") and baseline.differs("c/new.yaml")
    assert not baseline.touches("b[1]/other")


def test_a_path_outside_the_repository_does_not_hide_the_others(worktree: Path) -> None:
    # git refuses a whole command for one path outside: such a path never reaches it.
    baseline = _head(worktree).narrowed(["../outside.yaml", "a"])
    assert baseline.changed == {"a/x.yaml"}
    assert _head(worktree).narrowed(["../outside.yaml"]).changed == frozenset()


def test_asking_about_a_path_it_was_not_narrowed_to_is_a_mistake(worktree: Path) -> None:
    baseline = _head(worktree).narrowed(["a"])
    with pytest.raises(ValueError, match="b1 is outside"):
        baseline.touches("a", "b1")
    with pytest.raises(ValueError, match=r"ab/x\.yaml is outside"):
        baseline.differs("ab/x.yaml")


def test_what_an_edit_gives_is_what_differs(worktree: Path) -> None:
    given = resolve(worktree, "HEAD", required=True, changed=("b1/z.yaml",))
    assert given.narrowed(["a"]).changed == {"b1/z.yaml"}
    assert given.narrowed(["a"]).touches("b1")
