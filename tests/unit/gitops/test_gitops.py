"""gitops against real git: a throwaway repository with a bare `origin`, a fixed identity."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from meshcanary.errors import MeshcanaryError
from meshcanary.gitops import (
    Committed,
    GitError,
    PullRequest,
    branch_name,
    commit,
    pr_body,
    pr_title,
    preflight,
    push,
    write_github_output,
)
from tests.support import GIT_EMAIL, GIT_NAME, isolate_git
from tests.support.gitops import (
    OVERLAY,
    PATHS,
    RELEASE,
    bare_remote,
    edit,
    git,
    pushed_work_tree,
    status,
    write,
)

NAME, EMAIL = GIT_NAME, GIT_EMAIL
BRANCH = "meshcanary/prod/micro-api/v2-50"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path_factory, monkeypatch)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return bare_remote(tmp_path)


@pytest.fixture
def repo(tmp_path: Path, remote: Path) -> Path:
    """A work tree with one commit of a release file and its overlay, pushed to `origin`."""
    return pushed_work_tree(tmp_path, remote, ("user.name", NAME), ("user.email", EMAIL))


def refusal(root: Path, paths: list[str] = PATHS) -> str:
    with pytest.raises(GitError) as caught:
        preflight(root, paths)
    assert isinstance(caught.value, MeshcanaryError)
    assert caught.value.exit_code == 2
    # One `error: ` line like every other error, then the reason.
    assert caught.value.text.startswith("error: ")
    return caught.value.text.removeprefix("error: ")


# --- preflight ---------------------------------------------------------------------------


def test_clean_paths_pass_and_changes_elsewhere_do_not_block(repo: Path) -> None:
    write(repo, {"README.md": "changed\n", "notes.txt": "new\n"})
    write(repo, {"deploy/overlays/prod/checkout/kustomization.yaml": "resources: []\n"})
    write(repo, {"environments/prod/environment.yaml": "namespace: other\n"})
    git(repo, "add", "environments/prod/environment.yaml")
    preflight(repo, PATHS)


def test_not_a_work_tree_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    text = refusal(plain)
    assert text.startswith(f"{plain} is not inside a git work tree\n  hint: ")


def test_detached_head_is_refused(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    head = git(repo, "rev-parse", "HEAD")
    assert refusal(repo) == (
        f"HEAD is detached at {head[:12]}: meshcanary commits on a branch\n"
        "  hint: switch to a branch first (`git switch main`, or `git switch -c NAME` to keep "
        "this commit)"
    )


def conflict(repo: Path) -> None:
    """A side branch and main both change README.md."""
    git(repo, "checkout", "-q", "-b", "side")
    write(repo, {"README.md": "side\n"})
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "checkout", "-q", "main")
    write(repo, {"README.md": "main\n"})
    git(repo, "commit", "-q", "-am", "main")


@pytest.mark.parametrize(
    ("command", "said", "how"),
    [
        (["merge", "side"], "a merge", "`git merge --abort`"),
        (["rebase", "side"], "a rebase", "`git rebase --abort`"),
        (["cherry-pick", "side"], "a cherry-pick", "`git cherry-pick --abort`"),
        (["revert", "--no-edit", "HEAD~1"], "a revert", "`git revert --abort`"),
    ],
)
def test_operation_in_progress_is_refused(
    repo: Path, command: list[str], said: str, how: str
) -> None:
    conflict(repo)
    if command[0] == "revert":
        write(repo, {"README.md": "main again\n"})
        git(repo, "commit", "-q", "-am", "main again")
    assert "CONFLICT" in git(repo, *command, check=False)
    text = refusal(repo)
    assert text.startswith(f"{said} is in progress in {repo.resolve()}\n  hint: finish it")
    assert how in text


@pytest.mark.parametrize(
    ("change", "state"),
    [
        ("modified", f"{RELEASE} (modified)"),
        ("staged", f"{RELEASE} (staged)"),
        ("deleted", f"{OVERLAY}/v1/kustomization.yaml (deleted)"),
        ("untracked", f"{OVERLAY}/v3/kustomization.yaml (untracked)"),
    ],
)
def test_changes_in_the_paths_are_refused(repo: Path, change: str, state: str) -> None:
    if change in ("modified", "staged"):
        write(repo, {RELEASE: "changed\n"})
        if change == "staged":
            git(repo, "add", RELEASE)
    elif change == "deleted":
        (repo / OVERLAY / "v1" / "kustomization.yaml").unlink()
    else:
        write(repo, {f"{OVERLAY}/v3/kustomization.yaml": "nameSuffix: -v3\n"})
    assert refusal(repo) == (
        f"uncommitted changes in the files meshcanary would commit: {state}\n"
        "  hint: commit or stash them first (`git stash --include-untracked`), so "
        "meshcanary's commit holds only its own edit"
    )


def test_refusal_lists_five_changes_and_counts_the_rest(repo: Path) -> None:
    write(repo, {f"{OVERLAY}/new/{n}.yaml": "{}\n" for n in "abcdefg"})
    first = refusal(repo).splitlines()[0]
    assert first == (
        "uncommitted changes in the files meshcanary would commit: "
        + ", ".join(f"{OVERLAY}/new/{n}.yaml (untracked)" for n in "abcde")
        + " and 2 more"
    )


# --- branch names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("prod", "micro-api", "v2-50"), "meshcanary/prod/micro-api/v2-50"),
        (("prod", "micro-api", "v2=50"), "meshcanary/prod/micro-api/v2-50"),
        (("prod", "micro-api", "v1=70 v2=30"), "meshcanary/prod/micro-api/v1-70-v2-30"),
        ((".hidden", "a..b", "x.lock"), "meshcanary/hidden/a.b/x-lock"),
        (("-opt", "svc@{1}", "~^:?*[\\"), "meshcanary/opt/svc-1/_"),
        (("prod", "micro-api", "promote v2 → 100%."), "meshcanary/prod/micro-api/promote-v2-100"),
    ],
)
def test_branch_names_are_valid_refs(
    tmp_path: Path, parts: tuple[str, str, str], expected: str
) -> None:
    name = branch_name(*parts)
    assert name == expected
    assert git(tmp_path, "check-ref-format", "--branch", name) == name


# --- commit ------------------------------------------------------------------------------


def test_commit_stages_exactly_the_listed_paths(repo: Path) -> None:
    preflight(repo, PATHS)
    edit(repo)
    (repo / OVERLAY / "v1" / "kustomization.yaml").unlink()
    (repo / OVERLAY / "v1").rmdir()
    write(repo, {f"{OVERLAY}/v3/kustomization.yaml": "nameSuffix: -v3\n"})
    write(repo, {"README.md": "unrelated edit\n", "notes.txt": "untracked elsewhere\n"})
    write(repo, {"environments/prod/environment.yaml": "namespace: staged-by-someone\n"})
    git(repo, "add", "environments/prod/environment.yaml")
    main = git(repo, "rev-parse", "HEAD")

    done = commit(repo, PATHS, "prod/micro-api: v2 30% -> 50%", BRANCH)

    assert done == Committed(BRANCH, git(repo, "rev-parse", "HEAD"), True, "main")
    assert git(repo, "rev-parse", "HEAD~1") == main
    assert git(repo, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert git(repo, "show", "--name-status", "--format=", "HEAD").splitlines() == [
        f"D\t{OVERLAY}/v1/kustomization.yaml",
        f"A\t{OVERLAY}/v3/kustomization.yaml",
        f"M\t{OVERLAY}/virtualservice.yaml",
        f"M\t{RELEASE}",
    ]
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B") == (
        f"{NAME} <{EMAIL}>|{NAME} <{EMAIL}>|prod/micro-api: v2 30% -> 50%"
    )
    # What the user had elsewhere stays exactly as it was: staged stays staged, the rest
    # stays unstaged and uncommitted.
    assert status(repo) == [" M README.md", "M  environments/prod/environment.yaml", "?? notes.txt"]
    assert (repo / "README.md").read_text() == "unrelated edit\n"


def test_commit_without_a_branch_commits_on_the_current_one(repo: Path) -> None:
    edit(repo)
    done = commit(repo, PATHS, "step", None)
    assert done == Committed("main", git(repo, "rev-parse", "HEAD"), False, "main")
    assert status(repo) == []


def test_commit_from_a_subfolder_root_takes_paths_relative_to_it(repo: Path) -> None:
    edit(repo)
    done = commit(repo / "environments", ["prod/micro-api.yaml"], "release only", BRANCH)
    assert git(repo, "show", "--name-only", "--format=", done.sha) == RELEASE
    assert status(repo) == [f" M {OVERLAY}/virtualservice.yaml"]


def test_nothing_to_commit_is_refused_before_any_branch_is_made(repo: Path) -> None:
    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", BRANCH)
    assert caught.value.message == (f"nothing to commit: no changes in {RELEASE}, {OVERLAY}")
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "branch", "--list", BRANCH) == ""


def test_an_existing_branch_at_head_is_reused(repo: Path) -> None:
    git(repo, "branch", BRANCH)
    edit(repo)
    done = commit(repo, PATHS, "step", BRANCH)
    assert (done.branch, done.created_branch, done.previous_branch) == (BRANCH, False, "main")
    assert git(repo, "rev-parse", BRANCH) == done.sha
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", f"{done.sha}~1")


def test_an_existing_branch_with_other_content_is_refused(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", BRANCH)
    write(repo, {"README.md": "an earlier attempt\n"})
    git(repo, "commit", "-q", "-am", "earlier")
    tip = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    edit(repo)
    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", BRANCH)
    head = git(repo, "rev-parse", "HEAD")
    assert caught.value.message == (
        f"branch {BRANCH} already exists with other content (its tip {tip[:12]} is not "
        f"HEAD {head[:12]})"
    )
    assert f"`git branch -D {BRANCH}`" in caught.value.hint
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "rev-parse", BRANCH) == tip
    assert status(repo) == [f" M {OVERLAY}/virtualservice.yaml", f" M {RELEASE}"]


def test_a_rejected_commit_leaves_the_repository_as_it_was(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'blocked by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    edit(repo)
    write(repo, {f"{OVERLAY}/v3/kustomization.yaml": "nameSuffix: -v3\n"})
    written = {p: p.read_bytes() for p in (repo / "environments").rglob("*") if p.is_file()}
    written |= {p: p.read_bytes() for p in (repo / "deploy").rglob("*") if p.is_file()}
    head = git(repo, "rev-parse", "HEAD")

    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", BRANCH)

    assert caught.value.message == "git commit failed: blocked by policy"
    assert caught.value.hint == (
        "a commit hook may have rejected it; nothing was committed: unstaged the edited "
        f"files, switched back to main, deleted branch {BRANCH}; the files meshcanary wrote "
        "are unchanged"
    )
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "branch", "--list", BRANCH) == ""
    assert {p: p.read_bytes() for p in written} == written
    assert status(repo) == [
        f" M {OVERLAY}/virtualservice.yaml",
        f" M {RELEASE}",
        f"?? {OVERLAY}/v3/kustomization.yaml",
    ]


# --- push --------------------------------------------------------------------------------


def committed(repo: Path) -> Committed:
    edit(repo)
    return commit(repo, PATHS, "step", BRANCH)


def test_push_creates_the_branch_on_the_remote_with_upstream(repo: Path, remote: Path) -> None:
    done = committed(repo)
    push(repo, "origin", BRANCH)
    assert git(remote, "ls-remote", str(remote), f"refs/heads/{BRANCH}") == (
        f"{done.sha}\trefs/heads/{BRANCH}"
    )
    assert git(repo, "rev-parse", "--abbrev-ref", f"{BRANCH}@{{upstream}}") == f"origin/{BRANCH}"


def test_a_concurrent_push_is_not_overwritten(repo: Path, remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "checkout", "-q", "-b", BRANCH)
    write(other, {"README.md": "someone else\n"})
    git(other, "commit", "-q", "-am", "someone else's change")
    git(other, "push", "-q", "origin", BRANCH)
    theirs = git(other, "rev-parse", "HEAD")
    done = committed(repo)

    with pytest.raises(GitError) as caught:
        push(repo, "origin", BRANCH)

    assert caught.value.message.startswith(
        f"origin refused {BRANCH}: the branch there has commits this one does not have "
        f"(! [rejected]"
    )
    assert "never force-pushes" in caught.value.hint
    assert f"your branch {BRANCH} is kept" in caught.value.hint
    assert git(remote, "rev-parse", f"refs/heads/{BRANCH}") == theirs
    assert git(repo, "rev-parse", BRANCH) == done.sha
    assert git(repo, "symbolic-ref", "--short", "HEAD") == BRANCH


def test_an_unknown_remote_is_refused(repo: Path) -> None:
    committed(repo)
    with pytest.raises(GitError) as caught:
        push(repo, "upstream", BRANCH)
    assert caught.value.text == (
        "error: no git remote named 'upstream' (known remotes: origin)\n"
        "  hint: add it with `git remote add upstream URL`, or choose another remote"
    )


def test_an_unreachable_remote_is_a_git_error(repo: Path, tmp_path: Path) -> None:
    done = committed(repo)
    git(repo, "remote", "add", "gone", str(tmp_path / "nowhere.git"))
    with pytest.raises(GitError) as caught:
        push(repo, "gone", BRANCH)
    assert caught.value.message.startswith(f"cannot push {BRANCH} to gone: fatal: ")
    assert "does not appear to be a git repository" in caught.value.message
    assert caught.value.hint == (
        "check the remote's URL (`git remote get-url gone`) and your access; your branch "
        f"{BRANCH} is kept as it is: push it later with `git push -u gone {BRANCH}`"
    )
    assert git(repo, "rev-parse", BRANCH) == done.sha


# --- inside a git hook -------------------------------------------------------------------


def test_git_variables_of_a_hook_do_not_confuse_gitops(
    repo: Path, remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    git(tmp_path, "init", "-q", str(decoy))
    write(decoy, {"x": "x\n"})
    git(decoy, "add", "x")
    git(decoy, "commit", "-q", "-m", "decoy")
    decoy_head = git(decoy, "rev-parse", "HEAD")
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(decoy / ".git" / "index"))
    monkeypatch.setenv("GIT_PREFIX", "somewhere/")

    write(repo, {RELEASE: "dirty\n"})
    assert "micro-api.yaml (modified)" in refusal(repo)
    edit(repo)
    preflight(repo, ["deploy/overlays/prod/micro-api/v1"])
    done = commit(repo, PATHS, "step", BRANCH)
    push(repo, "origin", BRANCH)

    assert git(repo, "rev-parse", BRANCH) == done.sha
    assert git(remote, "rev-parse", f"refs/heads/{BRANCH}") == done.sha
    assert git(decoy, "rev-parse", "HEAD") == decoy_head
    assert git(decoy, "branch", "--list", BRANCH) == ""
    assert os.environ["GIT_DIR"] == str(decoy / ".git")


# --- pull request text -------------------------------------------------------------------

TWO = PullRequest(
    environment="prod",
    service="micro-api",
    before={"v1": 70, "v2": 30},
    after={"v1": 50, "v2": 50},
    images={"v1": "registry.example/micro-api:1.1", "v2": "registry.example/micro-api:1.3"},
    checks=[("render", "passed"), ("check", "passed: 0 errors, 1 warning")],
    branch=BRANCH,
    base_branch="main",
)

THREE = PullRequest(
    environment="staging",
    service="checkout",
    before={"v1": 60, "v2": 40, "v3": 0},
    after={"v1": 0, "v2": 50, "v3": 50},
    images={
        "v1": "registry.example/checkout:2.0",
        "v2": "registry.example/checkout:2.1",
        "v3": "registry.example/checkout:2.2",
    },
    checks=[],
    branch="meshcanary/staging/checkout/v3-50",
    base_branch="develop",
)


def test_title_of_a_two_version_step_names_the_canary() -> None:
    assert pr_title(TWO) == "prod/micro-api: v2 30% -> 50%"


def test_title_of_a_three_version_change_names_every_move() -> None:
    assert pr_title(THREE) == "staging/checkout: v1 60% -> 0%, v2 40% -> 50%, v3 0% -> 50%"


def test_titles_of_start_retire_and_no_move() -> None:
    start = PullRequest("prod", "api", {"v1": 100}, {"v1": 100, "v2": 0}, {}, [], "b", "main")
    retire = PullRequest("prod", "api", {"v1": 0, "v2": 100}, {"v2": 100}, {}, [], "b", "main")
    same = PullRequest("prod", "api", {"v1": 70, "v2": 30}, {"v1": 70, "v2": 30}, {}, [], "b", "m")
    assert pr_title(start) == "prod/api: v2 added at 0%"
    assert pr_title(retire) == "prod/api: v1 removed"
    assert pr_title(same) == "prod/api: v1 70%, v2 30% (weights unchanged)"


def test_body_of_a_two_version_step() -> None:
    assert pr_body(TWO) == (
        "Traffic change for `micro-api` in `prod`: merging "
        f"`{BRANCH}` into `main` applies it.\n"
        "\n"
        "| version | weight (before → after) | image |\n"
        "|---|---|---|\n"
        "| v1 | 70% → 50% | `registry.example/micro-api:1.1` |\n"
        "| v2 | 30% → 50% | `registry.example/micro-api:1.3` |\n"
        "\n"
        "```mermaid\n"
        "%%{init: {'themeVariables': {'pie1': '#0072B2', 'pie2': '#E69F00'}}}%%\n"
        "pie showData\n"
        "    title Before\n"
        '    "v1" : 70\n'
        '    "v2" : 30\n'
        "```\n"
        "\n"
        "```mermaid\n"
        "%%{init: {'themeVariables': {'pie1': '#0072B2', 'pie2': '#E69F00'}}}%%\n"
        "pie showData\n"
        "    title After\n"
        '    "v1" : 50\n'
        '    "v2" : 50\n'
        "```\n"
        "\n"
        "### Checks\n"
        "\n"
        "- render: passed\n"
        "- check: passed: 0 errors, 1 warning\n"
        "\n"
        "### How to revert\n"
        "\n"
        "Revert this pull request, or run "
        "`meshcanary set-weights prod micro-api v1=70 v2=30`.\n"
    )


def test_body_of_a_three_version_change_keeps_each_colour_and_shows_zero_weights() -> None:
    assert pr_body(THREE) == (
        "Traffic change for `checkout` in `staging`: merging "
        "`meshcanary/staging/checkout/v3-50` into `develop` applies it.\n"
        "\n"
        "| version | weight (before → after) | image |\n"
        "|---|---|---|\n"
        "| v1 | 60% → 0% | `registry.example/checkout:2.0` |\n"
        "| v2 | 40% → 50% | `registry.example/checkout:2.1` |\n"
        "| v3 | 0% → 50% | `registry.example/checkout:2.2` |\n"
        "\n"
        "```mermaid\n"
        "%%{init: {'themeVariables': "
        "{'pie1': '#0072B2', 'pie2': '#E69F00', 'pie3': '#009E73'}}}%%\n"
        "pie showData\n"
        "    title Before\n"
        '    "v1" : 60\n'
        '    "v2" : 40\n'
        '    "v3" : 0\n'
        "```\n"
        "\n"
        "```mermaid\n"
        "%%{init: {'themeVariables': "
        "{'pie1': '#E69F00', 'pie2': '#009E73', 'pie3': '#0072B2'}}}%%\n"
        "pie showData\n"
        "    title After\n"
        '    "v2" : 50\n'
        '    "v3" : 50\n'
        '    "v1" : 0\n'
        "```\n"
        "\n"
        "### Checks\n"
        "\n"
        "No checks ran.\n"
        "\n"
        "### How to revert\n"
        "\n"
        "Revert this pull request, or run "
        "`meshcanary set-weights staging checkout v1=60 v2=40 v3=0`.\n"
    )
    assert pr_body(THREE) == pr_body(THREE)


def test_body_of_start_and_retire() -> None:
    start = PullRequest("prod", "api", {"v1": 100}, {"v1": 100, "v2": 0}, {}, [], "b", "main")
    retire = PullRequest("prod", "api", {"v1": 0, "v2": 100}, {"v2": 100}, {}, [], "b", "main")
    assert "| v2 | new → 0% | — |" in pr_body(start)
    assert "| v1 | 0% → removed | — |" in pr_body(retire)


def test_body_of_start_and_retire_offers_commands_that_undo_them() -> None:
    """Issue 12: the body offered `set-weights` with the weights already there, which
    set-weights refuses ("nothing to change"): after `start` the command that undoes it is
    `retire`, and after `retire` only a revert brings the version back."""
    start = PullRequest("prod", "api", {"v1": 100}, {"v1": 100, "v2": 0}, {}, [], "b", "main")
    first = PullRequest("prod", "api", {"v1": 100}, {"v1": 90, "v2": 10}, {}, [], "b", "main")
    retire = PullRequest("prod", "api", {"v1": 0, "v2": 100}, {"v2": 100}, {}, [], "b", "main")
    assert pr_body(start).endswith(
        "Revert this pull request, or run `meshcanary retire prod api v2`.\n"
    )
    assert pr_body(first).endswith(
        "Revert this pull request, or run `meshcanary set-weights prod api v1=100 v2=0`, "
        "then `meshcanary retire prod api v2`.\n"
    )
    assert pr_body(retire).endswith(
        "### How to revert\n"
        "\n"
        "Revert this pull request.\n"
        "Only reverting the pull request brings back v1, which this change removes.\n"
    )


def charts(body: str) -> list[tuple[dict[str, int], dict[int, str]]]:
    """Each Mermaid pie of `body`: its slices (label -> value, as written) and its colour slots."""
    found = []
    for chart in re.findall(r"```mermaid\n(.*?)```", body, re.S):
        lines = chart.splitlines()
        assert lines[0].startswith("%%{init: ") and lines[0].endswith("}%%"), lines[0]
        assert lines[1] == "pie showData" and lines[2].startswith("    title "), lines
        slots = {int(n): c for n, c in re.findall(r"'pie(\d+)': '(#[0-9A-F]{6})'", lines[0])}
        slices = {}
        for line in lines[3:]:
            found_slice = re.fullmatch(r'    "([^"]+)" : (\d+)', line)
            assert found_slice, line
            slices[found_slice[1]] = int(found_slice[2])
        found.append((slices, slots))
    return found


def colours_mermaid_gives(slices: dict[str, int], slots: dict[int, str]) -> dict[str, str]:
    """The colour of each slice as Mermaid's pie renderer hands them out (11.x, pieRenderer):
    slot N to the Nth label its ordinal colour scale sees. It draws the slices of at least 1%
    largest first (a stable sort, so ties in written order), then lists the rest in the
    legend in written order. Older Mermaid, which did not sort, sees them in written order:
    both orders must give the same colours."""
    total = sum(slices.values())
    drawn = sorted((lb for lb in slices if slices[lb] * 100 >= total), key=lambda lb: -slices[lb])
    seen = [*drawn, *(lb for lb in slices if lb not in drawn)]
    assert seen == list(slices), "slices written in the order Mermaid colours them"
    return {label: slots[n] for n, label in enumerate(seen, start=1)}


SWAP = PullRequest("prod", "api", {"v1": 70, "v2": 30}, {"v1": 40, "v2": 60}, {}, [], "b", "m")
START = PullRequest(
    "prod", "api", {"v1": 70, "v2": 30}, {"v1": 60, "v2": 30, "v3": 10}, {}, [], "b", "m"
)
RETIRE = PullRequest("prod", "api", {"v1": 0, "v2": 100}, {"v2": 100}, {}, [], "b", "m")
FIVE = PullRequest(
    "prod",
    "api",
    {"v1": 40, "v2": 0, "v3": 20, "v4": 20, "v5": 20},
    {"v1": 10, "v2": 0, "v3": 20, "v4": 20, "v5": 50},
    {},
    [],
    "b",
    "m",
)


@pytest.mark.parametrize("pr", [TWO, THREE, SWAP, START, RETIRE, FIVE], ids=lambda p: str(p.after))
def test_each_version_keeps_its_colour_in_both_charts(pr: PullRequest) -> None:
    """Issue 12: Mermaid colours slices by rank, so a canary overtaking the stable swapped
    their colours between Before and After, and a version at 0% was left out of its chart."""
    (before, before_slots), (after, after_slots) = charts(pr_body(pr))
    # Every version of each side is in its chart with its weight, 0% ones included.
    assert before == pr.before and after == pr.after
    before_colours = colours_mermaid_gives(before, before_slots)
    after_colours = colours_mermaid_gives(after, after_slots)
    for version in set(before) & set(after):
        assert before_colours[version] == after_colours[version], version
    # Colours tell the versions apart.
    for colours in (before_colours, after_colours):
        assert len(set(colours.values())) == len(colours)
    # The stable version is the same colour in every pull request.
    assert before_colours["v1"] == after_colours.get("v1", before_colours["v1"]) == "#0072B2"


# --- GitHub Actions output ---------------------------------------------------------------


def test_github_output_single_and_multi_line_values(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    out.write_text("earlier=1")  # a last line without its newline
    write_github_output(
        out,
        {
            "branch": BRANCH,
            "title": pr_title(TWO),
            "body": "line one\nMESHCANARY_EOF\nline three\n",
            "empty": "",
        },
    )
    write_github_output(out, {"sha": "abc"})
    assert out.read_text() == (
        "earlier=1\n"
        f"branch={BRANCH}\n"
        "title=prod/micro-api: v2 30% -> 50%\n"
        "body<<MESHCANARY_EOF_1\n"
        "line one\nMESHCANARY_EOF\nline three\n"
        "\n"
        "MESHCANARY_EOF_1\n"
        "empty=\n"
        "sha=abc\n"
    )


def test_github_output_refuses_a_name_that_would_break_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="output name"):
        write_github_output(tmp_path / "out", {"a=b": "x"})


def test_a_merged_branch_is_moved_to_head_and_reused(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", BRANCH)
    write(repo, {"README.md": "an earlier change, merged since\n"})
    git(repo, "commit", "-q", "-am", "earlier")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", BRANCH)
    write(repo, {"README.md": "main moved on\n"})
    git(repo, "commit", "-q", "-am", "later")
    edit(repo)
    done = commit(repo, PATHS, "step", BRANCH)
    assert (done.branch, done.created_branch) == (BRANCH, False)
    assert git(repo, "rev-parse", f"{done.sha}~1") == git(repo, "rev-parse", "main")
