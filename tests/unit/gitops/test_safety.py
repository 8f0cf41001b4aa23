"""gitops against a hostile repository, with real git and a bare `origin`.

The threat: a pull request's author controls every file of the repository (release files,
environment folders, bases), and CI runs the edit commands with a token. Four guarantees:
commit hooks that stage more than meshcanary wrote cannot widen its commit; each edit's branch
starts from the base branch, never from an earlier edit's branch; confusing branch names are
refused and derived ones are always valid; no value breaks the pull request's Markdown or the
`$GITHUB_OUTPUT` file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from meshcanary import gitops
from meshcanary.errors import MeshcanaryError
from meshcanary.gitops import GitError, PullRequest, branch_name, commit, pr_body, pr_title
from tests.support import Outcome, isolate_git
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

BRANCH = "meshcanary/prod/micro-api/v2-50"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path_factory, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """tests.support.gitops's small repository (a release file and its overlay), on `origin`."""
    return pushed_work_tree(tmp_path, bare_remote(tmp_path))


def index(repo: Path) -> tuple[str, str]:
    """The index, entry by entry, and what it stages against HEAD."""
    return git(repo, "ls-files", "--stage"), git(repo, "diff", "--cached", "--raw", "HEAD")


def files(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def user_work(repo: Path) -> None:
    """What a person has going on elsewhere: a staged change, an unstaged one, a new file."""
    write(repo, {"environments/prod/environment.yaml": "namespace: staged\n"})
    git(repo, "add", "environments/prod/environment.yaml")
    write(repo, {"README.md": "unstaged edit\n", "notes.txt": "untracked\n"})


def install_hook(repo: Path, where: str, name: str, body: str) -> None:
    if where == "hooks-path":
        folder = repo.parent / "shared-hooks"
        git(repo, "config", "core.hooksPath", str(folder))
    else:
        folder = repo / ".git" / "hooks"
    folder.mkdir(exist_ok=True)
    hook = folder / name
    hook.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    hook.chmod(0o755)


# --- 1. commit hooks that stage more ------------------------------------------------------------

STAGING_HOOKS = {
    # A file the hook makes: it used to land in the commit, and the index then had it
    # "deleted" (staged) and untracked at once.
    "stages-a-new-file": ("pre-commit", "echo leaked > leaked.txt\ngit add leaked.txt"),
    "stages-the-users-unstaged-edit": ("pre-commit", "git add README.md"),
    "stages-everything": ("pre-commit", "git add -A"),
    # Other bytes for a file meshcanary wrote, staged without touching the work tree.
    "restages-a-written-file": (
        "pre-commit",
        "blob=$(echo 'weight: 1' | git hash-object -w --stdin)\n"
        f"git update-index --cacheinfo 100644,$blob,{OVERLAY}/virtualservice.yaml",
    ),
    "unstages-a-written-file": ("pre-commit", f"git rm -q --cached {RELEASE}"),
    "commits-again-afterwards": (
        "post-commit",
        "echo more > more.txt\ngit add more.txt\ngit commit -q -m 'hook commit' --no-verify",
    ),
}


@pytest.mark.parametrize("where", ["hooks-folder", "hooks-path"])
@pytest.mark.parametrize("behaviour", sorted(STAGING_HOOKS))
def test_a_hook_that_changes_what_is_staged_is_refused_and_everything_stays(
    repo: Path, where: str, behaviour: str
) -> None:
    """Guarantee: whatever a commit hook stages, meshcanary's commit holds exactly the paths
    it wrote, or there is no commit: a one-line error, HEAD and the branches as before, and
    the user's index (staged, unstaged, untracked) and work tree unchanged."""
    name, body = STAGING_HOOKS[behaviour]
    install_hook(repo, where, name, body)
    user_work(repo)
    edit(repo)
    head, before_index, before_status = git(repo, "rev-parse", "HEAD"), index(repo), status(repo)
    before_files = files(repo)

    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "prod/micro-api: v2 30% -> 50%", BRANCH)

    assert isinstance(caught.value, MeshcanaryError) and caught.value.exit_code == 2
    first, *rest = caught.value.text.splitlines()
    assert first.startswith("error: a commit hook changed what meshcanary commits: "), first
    assert [line for line in rest if not line.startswith("  hint: ")] == []
    assert "nothing was committed" in caught.value.hint
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "branch", "--list", BRANCH) == ""
    assert index(repo) == before_index
    # A file the hook made itself stays where it put it, untracked: the hook's, not lost work.
    hooks_own = ("leaked.txt", "more.txt")
    assert [line for line in status(repo) if line[3:] not in hooks_own] == before_status
    assert {k: v for k, v in files(repo).items() if k not in hooks_own} == before_files


def test_the_refusal_names_what_the_hook_changed(repo: Path) -> None:
    install_hook(repo, "hooks-folder", "pre-commit", "echo leaked > leaked.txt\ngit add leaked.txt")
    edit(repo)
    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", BRANCH)
    assert caught.value.message == (
        "a commit hook changed what meshcanary commits: leaked.txt (added)"
    )
    assert caught.value.hint.startswith(
        "meshcanary commits exactly the files it wrote; make the hook leave the staged files "
        "alone (or skip it for meshcanary's commits), then run again; nothing was committed"
    )


def test_hooks_still_run_and_may_check_or_reword(repo: Path, tmp_path: Path) -> None:
    """Decision: hooks run (a repository's own checks, such as `meshcanary check` or a secret
    scanner, apply to meshcanary's commits as to anyone's); only what they stage is checked.
    A hook that only checks, and a commit-msg hook that adds a trailer, are fine."""
    ran = tmp_path / "ran"
    install_hook(repo, "hooks-folder", "pre-commit", f"git diff --cached --name-only > {ran}")
    install_hook(repo, "hooks-folder", "commit-msg", 'printf "\\nChange-Id: I1\\n" >> "$1"')
    edit(repo)
    done = commit(repo, PATHS, "step", BRANCH)
    assert ran.read_text().split() == [f"{OVERLAY}/virtualservice.yaml", RELEASE]
    assert git(repo, "log", "-1", "--format=%B", done.sha) == "step\n\nChange-Id: I1"
    assert git(repo, "show", "--name-only", "--format=", done.sha).split() == [
        f"{OVERLAY}/virtualservice.yaml",
        RELEASE,
    ]
    assert status(repo) == []


# --- the edit commands end to end ---------------------------------------------------------------


@pytest.fixture
def shop(example_repo: Path, tmp_path: Path) -> Path:
    """The example repository on main, pushed to a bare `origin`."""
    remote = tmp_path / "shop.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(example_repo, "init", "-q")
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-q", "-m", "start")
    git(example_repo, "remote", "add", "origin", str(remote))
    git(example_repo, "push", "-q", "-u", "origin", "main")
    return example_repo


Cli = Callable[..., Outcome]


def test_an_edit_whose_hook_stages_more_exits_2_and_leaves_the_repository_as_it_was(
    shop: Path, cli: Cli
) -> None:
    install_hook(shop, "hooks-folder", "pre-commit", "git add -A")
    write(shop, {"notes.txt": "mine\n", "README.md": "draft\n"})
    git(shop, "add", "README.md")
    before_files, before_index, head = files(shop), index(shop), git(shop, "rev-parse", "HEAD")

    done = cli("--repo", shop, "step", "prod", "micro-api", "--to", "40", "--commit")

    assert done.code == 2
    first, *rest = done.err.splitlines()
    assert first == (
        "error: a commit hook changed what meshcanary commits: README.md (added), notes.txt (added)"
    ), done.err
    assert all(line.startswith("  hint: ") for line in rest), done.err
    assert "environments/prod/micro-api.yaml and deploy/overlays/prod/ are as they were" in (
        done.err
    )
    assert files(shop) == before_files
    assert index(shop) == before_index
    assert git(shop, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(shop, "rev-parse", "HEAD") == head
    assert git(shop, "branch", "--list", "meshcanary/*") == ""


# --- 2. each edit branches from the base ----------------------------------------------------------


def test_consecutive_edits_each_branch_from_the_base(
    shop: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guarantee: a second `--commit` edit starts from the branch the first started from, not
    from the first edit's branch, so each pull request holds one change; it says which base
    it used, and leaves the user on its own branch (as the first did)."""
    main = git(shop, "rev-parse", "main")
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    first = cli("--repo", shop, "step", "prod", "micro-api", "--to", "40", "--commit")
    assert first.code == 0, first.err
    assert git(shop, "symbolic-ref", "--short", "HEAD") == "meshcanary/prod/micro-api/v2-40"
    body = tmp_path / "pr.md"

    second = cli(
        "--repo", shop, "step", "prod", "checkout", "--to", "5", "--commit", "--pr-body", body
    )

    assert second.code == 0, second.err
    one, two = "meshcanary/prod/micro-api/v2-40", "meshcanary/prod/checkout/v2-5"
    assert git(shop, "rev-parse", f"{one}~1") == main
    assert git(shop, "rev-parse", f"{two}~1") == main
    assert git(shop, "symbolic-ref", "--short", "HEAD") == two
    changed = git(shop, "diff", "--name-only", "main", two).split()
    assert changed and not [p for p in changed if "micro-api" in p], changed
    assert "weight: 30}" in (shop / "environments/prod/micro-api.yaml").read_text()
    assert f"merging `{two}` into `main` applies it." in body.read_text()
    assert output.read_text().count("base=main\n") == 2


def test_an_edit_branch_of_unknown_origin_is_refused_before_anything_is_written(
    shop: Path, cli: Cli
) -> None:
    """A `meshcanary/` branch with no recorded base (an older meshcanary made it, or a
    person): starting from it would stack, and guessing the base could pick the wrong one."""
    git(shop, "switch", "-q", "-c", "meshcanary/prod/micro-api/v2-40")
    before = files(shop)
    done = cli("--repo", shop, "step", "prod", "checkout", "--to", "5", "--commit")
    assert done.code == 2
    assert done.err.splitlines()[0] == (
        "error: meshcanary/prod/micro-api/v2-40 looks like the branch of an earlier edit, and "
        "meshcanary does not know which branch it started from"
    ), done.err
    assert "`git switch main`" in done.err or "`git switch BASE`" in done.err
    assert files(shop) == before


def test_an_edit_on_a_feature_branch_uses_it_as_the_base(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "release-2026")
    assert gitops.return_to_base(repo).branch == "release-2026"
    edit(repo)
    done = commit(repo, PATHS, "step", BRANCH)
    assert (done.branch, done.previous_branch) == (BRANCH, "release-2026")
    edit_again = {RELEASE: "service: micro-api\nversions:\n  v1: {weight: 0}\n"}
    assert gitops.return_to_base(repo).branch == "release-2026"
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "release-2026"
    write(repo, edit_again)
    again = commit(repo, [RELEASE], "again", "meshcanary/prod/micro-api/v1-0")
    assert git(repo, "rev-parse", f"{again.sha}~1") == git(repo, "rev-parse", "release-2026")


def test_commit_refuses_to_stack_on_an_edit_branch(repo: Path) -> None:
    edit(repo)
    commit(repo, PATHS, "step", BRANCH)
    write(repo, {RELEASE: "service: micro-api\nversions:\n  v1: {weight: 0}\n"})
    with pytest.raises(GitError) as caught:
        commit(repo, [RELEASE], "again", "meshcanary/prod/micro-api/v1-0")
    assert caught.value.message.startswith(f"HEAD is on {BRANCH}, the branch of an earlier edit")
    assert git(repo, "branch", "--list", "meshcanary/prod/micro-api/v1-0") == ""


# --- 3. branch names ----------------------------------------------------------------------------

CONFUSING = [
    "origin/main",
    "refs/heads/x",
    "heads/x",
    "tags/v1",
    "remotes/origin/x",
    "@",
    "HEAD",
    "ORIG_HEAD",
    "FETCH_HEAD",
    "-x",
    "--force",
    "a..b",
    "x@{1}",
    "@{-1}",
    "has space",
    "tab\there",
    "new\nline",
    "bell\x07",
    "rtl\u202eoverride",
    "back`tick",
    "$(id)",
    "semi;colon",
    "quote'd",
    "x.lock",
    "a//b",
    "/lead",
    "trail/",
    "dot.",
    ".hidden",
    "a/.hidden",
    "",
    "x" * 201,
]


@pytest.mark.parametrize("name", CONFUSING, ids=repr)
def test_a_confusing_branch_name_is_refused_before_anything_changes(repo: Path, name: str) -> None:
    edit(repo)
    before_status, head = status(repo), git(repo, "rev-parse", "HEAD")
    branches = git(repo, "for-each-ref", "--format=%(refname)")
    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", name)
    assert caught.value.message.startswith(f"branch name {name!r} is refused: "), (
        caught.value.message
    )
    assert "\n" not in caught.value.message
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "for-each-ref", "--format=%(refname)") == branches
    assert status(repo) == before_status


def test_a_branch_name_that_is_also_a_tag_is_refused(repo: Path) -> None:
    git(repo, "tag", "v2-50")
    edit(repo)
    with pytest.raises(GitError) as caught:
        commit(repo, PATHS, "step", "v2-50")
    assert caught.value.message == (
        "branch name 'v2-50' is refused: a tag is called v2-50 too, so git could read the name "
        "as either"
    )


@pytest.mark.parametrize(
    "name", ["meshcanary/prod/micro-api/v2-50", "canary/JIRA-123_x", "release-2.4", "a/b/c"]
)
def test_plain_branch_names_are_accepted(repo: Path, name: str) -> None:
    edit(repo)
    assert commit(repo, PATHS, "step", name).branch == name


def test_a_confusing_branch_option_stops_the_edit_before_it_writes(shop: Path, cli: Cli) -> None:
    before = files(shop)
    done = cli(
        "--repo",
        shop,
        "step",
        "prod",
        "micro-api",
        "--to",
        "40",
        "--commit",
        "--branch",
        "origin/main",
    )
    assert done.code == 2
    assert done.err.startswith(
        "error: branch name 'origin/main' is refused: it starts with origin/, the name of a "
        "remote, so it reads as the remote-tracking branch origin/main\n"
    ), done.err
    assert files(shop) == before
    assert git(shop, "branch", "--list", "origin/*") == ""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300), st.text(max_size=300))
def test_a_derived_branch_name_is_always_accepted(
    environment: str, service: str, target: str
) -> None:
    name = branch_name(environment, service, target)
    assert gitops.branch_problem(name) is None, (name, gitops.branch_problem(name))


def test_derived_names_from_hostile_parts_are_valid_refs(repo: Path) -> None:
    """Every name made from hostile parts is one git creates, and short enough to be a file."""
    parts = [
        ("e" * 300, "s" * 300, "t" * 300),
        ("HEAD", "@", "@{-1}"),
        ("origin", "main", "x"),
        ("..", "-", ".lock"),
        ("prod`", "$(id)", "v2\n50"),
        ("prod", "micro-api", "v2-50." * 60),
    ]
    for environment, service, target in parts:
        name = branch_name(environment, service, target)
        assert name.startswith("meshcanary/") and len(name) <= 200, name
        assert git(repo, "check-ref-format", "--branch", name) == name
        git(repo, "branch", name)
        assert git(repo, "rev-parse", f"refs/heads/{name}") == git(repo, "rev-parse", "HEAD")


# --- 4. pull request text and GitHub Actions outputs ---------------------------------------------

HOSTILE = PullRequest(
    environment="prod`\n# injected heading | *bold*",
    service="api|`x`",
    before={"v1": 70, "v`2|\n<b>x</b>": 30},
    after={"v1": 50, "v`2|\n<b>x</b>": 50},
    images={"v1": "reg/x:``1`", "v`2|\n<b>x</b>": "a|b\n| evil | row |"},
    checks=[("render", "fresh")],
    branch="meshcanary/prod/a`b",
    base_branch="main``x",
)


def shown(text: str) -> str:
    """How a value reads in the PR text: what is not printable is written as an escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def markdown(text: str) -> list[Token]:
    """GitHub's Markdown as markdown-it parses it: CommonMark plus GFM tables."""
    return MarkdownIt("commonmark").enable("table").parse(text)


def inline(tokens: list[Token], kind: str) -> list[Token]:
    found: list[Token] = []
    for token in tokens:
        if token.type == kind:
            found.append(token)
        found += inline(token.children or [], kind)
    return found


def test_hostile_values_do_not_break_the_pr_body() -> None:
    body = pr_body(HOSTILE)
    tokens = markdown(body)
    assert not inline(tokens, "html_inline") and not inline(tokens, "html_block")
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Checks", "How to revert"]
    # The first paragraph: four code spans, each exactly one value.
    first = next(t for t in tokens if t.type == "inline")
    assert [c.content for c in inline([first], "code_inline")] == [
        shown(HOSTILE.service),
        shown(HOSTILE.environment),
        HOSTILE.branch,
        HOSTILE.base_branch,
    ]
    # One table: the header and one row per version, three cells each; names and images whole.
    rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
    assert len(rows) == 3
    cells = [tokens[i + 1] for i, t in enumerate(tokens) if t.type in ("th_open", "td_open")]
    assert len(cells) == 9
    assert [c.content for c in inline(cells, "code_inline")] == [
        "reg/x:``1`",
        shown("v`2|\n<b>x</b>"),
        shown("a|b\n| evil | row |"),
    ]
    # Two Mermaid charts: the colours, `pie showData`, a title and one line per version.
    fences = [t for t in tokens if t.type == "fence"]
    assert [f.info for f in fences] == ["mermaid", "mermaid"]
    assert [len(f.content.splitlines()) for f in fences] == [5, 5]
    for fence in fences:
        init, kind, title, *slices = fence.content.splitlines()
        assert re.fullmatch(r"%%\{init: \{'themeVariables': \{[#'a-zA-Z0-9:, ]+\}\}\}%%", init)
        assert kind == "pie showData" and title in ("    title Before", "    title After")
        for line in slices:
            assert re.fullmatch(r'    "[A-Za-z0-9._ -]+" : \d+', line), line
    # A revert command a person would paste into a shell is given only for plain names.
    assert "set-weights" not in body


def test_hostile_values_give_a_one_line_title() -> None:
    title = pr_title(HOSTILE)
    assert title.isprintable()
    assert title == ("prod`\\n# injected heading | *bold*/api|`x`: v`2|\\n<b>x</b> 30% -> 50%")


def test_plain_values_read_as_before() -> None:
    plain = PullRequest(
        "prod", "api", {"v1": 70, "v2": 30}, {"v1": 60, "v2": 40}, {}, [], "b", "main"
    )
    body = pr_body(plain)
    assert body.startswith("Traffic change for `api` in `prod`: merging `b` into `main`")
    assert "| v1 | 70% → 60% | — |" in body
    assert "`meshcanary set-weights prod api v1=70 v2=30`" in body


def actions_outputs(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT` read the way GitHub's runner reads it on Linux (FileCommandManager)."""
    found: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            key, value = line.split("=", 1)
        else:
            key, delimiter = line.split("<<", 1)
            value_lines: list[str] = []
            for next_line in lines:
                if next_line == delimiter:
                    break
                value_lines.append(next_line)
            else:
                raise AssertionError(f"no closing {delimiter!r}")
            value = "\n".join(value_lines)
        assert key not in found, f"{key} written twice"
        found[key] = value
    return found


@pytest.mark.parametrize(
    "values",
    [
        {"title": "a\nsha=injected", "branch": "b"},
        {"title": "x\nMESHCANARY_EOF\nsha=injected\n", "branch": "MESHCANARY_EOF"},
        {"body": "MESHCANARY_EOF\nMESHCANARY_EOF_1\nMESHCANARY_EOF_2\n", "x": "y<<z"},
        {"title": "carriage\rsha=injected", "empty": ""},
        {"title": "=<<\n<<=\n\n"},
    ],
)
def test_github_output_values_cannot_add_outputs(tmp_path: Path, values: dict[str, str]) -> None:
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    gitops.write_github_output(out, values)
    # Bytes, not read_text: universal newlines would turn a lone "\r" into a line break.
    assert actions_outputs(out.read_bytes().decode()) == {"earlier": "1", **values}


@pytest.mark.parametrize("key", ["a<", "a b", "1st", "", "x\ny", "naïve", "a=b", "a<<b"])
def test_github_output_names_are_what_actions_accepts(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="output name"):
        gitops.write_github_output(tmp_path / "out", {key: "x\ny"})
