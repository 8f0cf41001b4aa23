"""Branch names, the base an edit's branch starts from, and the states of HEAD that are refused."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from meshcanary.gitops.session import GitError, Session, opened

# Branches meshcanary names itself, and the configuration key (`branch.<name>.meshcanaryBase`)
# where it records, for each branch it makes, the branch that one started from.
EDIT_PREFIX = "meshcanary/"
BASE_KEY = "meshcanaryBase"
MAX_BRANCH_LENGTH = 200
# Three parts of at most 60 after the prefix stay under MAX_BRANCH_LENGTH, and each part far
# under the 255 bytes a file name (a loose ref) may have.
_PART_LENGTH = 60
_UNSAFE_IN_REF = re.compile(r"[^A-Za-z0-9._-]+")
_BRANCH_CHARACTER = re.compile(r"[A-Za-z0-9._/-]")
# git reads these first components as (part of) a full ref name: `git rev-parse tags/v1` is
# the tag, whatever branch is called that.
_REF_NAMESPACES = ("refs", "heads", "tags", "remotes")
# HEAD, ORIG_HEAD, FETCH_HEAD, MERGE_HEAD...: files in .git that git reads before any branch.
_PSEUDO_REF = re.compile(r"[A-Z_]*HEAD")

# An operation half done: the file git keeps in .git meanwhile, what it is, how to end it.
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge", "finish it (`git commit`) or abort it (`git merge --abort`)"),
    (
        "rebase-merge",
        "a rebase",
        "finish it (`git rebase --continue`) or abort it (`git rebase --abort`)",
    ),
    (
        "rebase-apply",
        "a rebase",
        "finish it (`git rebase --continue`) or abort it (`git rebase --abort`)",
    ),
    (
        "CHERRY_PICK_HEAD",
        "a cherry-pick",
        "finish it (`git cherry-pick --continue`) or abort it (`git cherry-pick --abort`)",
    ),
    (
        "REVERT_HEAD",
        "a revert",
        "finish it (`git revert --continue`) or abort it (`git revert --abort`)",
    ),
)


@dataclass(frozen=True)
class Base:
    """The branch an edit's branch starts from; `left`: the earlier edit's branch HEAD was on."""

    branch: str
    left: str | None = None


def _ref_component(text: str) -> str:
    part = _UNSAFE_IN_REF.sub("-", text)
    part = re.sub(r"\.{2,}", ".", part)
    part = re.sub(r"-{2,}", "-", part)
    # No leading "." (git), no leading "-" (reads as an option), no trailing "." (git).
    part = part[:_PART_LENGTH].strip(".-")
    if part.endswith(".lock"):
        part = part[: -len(".lock")] + "-lock"
    return part or "_"


def branch_name(environment: str, service: str, target: str) -> str:
    """`meshcanary/<env>/<service>/<target>`, each part reduced to what a git ref allows.

    `target` says where the change goes, e.g. `v2-50` or `v2=50`; characters a ref name
    cannot hold become `-` (`meshcanary/prod/micro-api/v2-50`), and each part is cut to 60
    characters: whatever the names, `branch_problem` finds nothing wrong with the result.
    """
    return "/".join(_ref_component(p) for p in ("meshcanary", environment, service, target))


def branch_problem(name: str, remotes: Collection[str] = ()) -> str | None:
    """Why `name` is refused as the branch of an edit, or None when it is fine.

    A branch name here is made of ASCII letters, digits, `-`, `_`, `.` and `/`, at most 200
    characters, and is none of the names git or a reader would take for something else:
    `HEAD` and the other names git keeps in `.git`, `@`, anything with `@{` or `..`, a name
    that starts with `-` (an option) or with `refs/`, `heads/`, `tags/`, `remotes/` or the
    name of a remote and `/` (`origin/main` reads as the remote-tracking branch), or that
    `git check-ref-format --branch` refuses (empty parts, parts starting with `.`, `.lock`).
    Spaces, control characters, backticks, quotes and `$` are refused with the rest: the name
    goes into shell commands, Markdown and the `$GITHUB_OUTPUT` file.
    """
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-', so git and other commands read it as an option"
    if name == "@":
        return "'@' is git's short name for HEAD"
    if _PSEUDO_REF.fullmatch(name):
        return f"git reads {name} as its own file in .git, not as a branch"
    if "@{" in name:
        return "'@{' is git's syntax for an earlier position of a branch"
    if ".." in name:
        return "'..' is git's syntax for a range of commits"
    odd = next((c for c in name if not _BRANCH_CHARACTER.fullmatch(c)), None)
    if odd is not None:
        return (
            f"it contains {odd!r}; a branch name here is made of ASCII letters, digits, "
            "'-', '_', '.' and '/'"
        )
    if len(name) > MAX_BRANCH_LENGTH:
        return f"it is longer than {MAX_BRANCH_LENGTH} characters"
    parts = name.split("/")
    if len(parts) > 1 and parts[0] in remotes:
        return (
            f"it starts with {parts[0]}/, the name of a remote, so it reads as the "
            f"remote-tracking branch {name}"
        )
    if len(parts) > 1 and parts[0] in _REF_NAMESPACES:
        return f"it starts with {parts[0]}/, so git reads it as (part of) a full ref name"
    for part in parts:
        if not part:
            return "it has an empty part ('//', or '/' at the start or the end)"
        if part.startswith("."):
            return f"its part {part!r} starts with '.', which git refuses"
        if part.endswith(".lock") or part.endswith("."):
            return f"its part {part!r} ends with '.lock' or '.', which git refuses"
    return None


def refuse_confusing_branch(session: Session, name: str) -> None:
    hint = (
        "choose a name of letters, digits, '-', '_', '.' and '/' (such as "
        "meshcanary/prod/micro-api/v2-50), or leave out --branch for the name meshcanary "
        "derives from the change"
    )
    remotes = session.remotes()
    problem = branch_problem(name, remotes)
    if problem is None and session.rev(f"refs/tags/{name}") is not None:
        problem = f"a tag is called {name} too, so git could read the name as either"
    if problem is None:
        # git's own rules, in case they grow stricter than the list above.
        status, _, _ = session.run("check-ref-format", "--branch", name)
        problem = None if status == 0 else "`git check-ref-format --branch` refuses it"
    if problem is not None:
        raise GitError(f"branch name {name!r} is refused: {problem}", hint)


def refuse_stacking(session: Session, current: str) -> None:
    """Refuse to start a new branch from the branch of an earlier edit (its PR would hold both)."""
    base = _recorded_base(session, current)
    if base is None:
        _refuse_unknown_edit_branch(current)
        return
    raise GitError(
        f"HEAD is on {current}, the branch of an earlier edit: a new edit's branch starts "
        f"from the base ({base}), or its pull request would hold both changes",
        f"switch back first (`git switch {base}`), or run the edit command, which does",
    )


def _refuse_unknown_edit_branch(branch: str) -> None:
    if branch.startswith(EDIT_PREFIX):
        raise GitError(
            f"{branch} looks like the branch of an earlier edit, and meshcanary does not know "
            "which branch it started from",
            "switch to the branch the change is for (such as `git switch main`), then run "
            "again: each edit's branch starts from the base, not from another edit's branch",
        )


def refuse_unsafe_head(session: Session) -> None:
    """Refuse a repository whose HEAD a commit must not move: mid-operation, locked, detached
    or without a commit."""
    git_dir = Path(session.repo.git_dir)
    for marker, operation, how in _IN_PROGRESS:
        if (git_dir / marker).exists():
            raise GitError(f"{operation} is in progress in {session.top}", f"{how}, then run again")
    # Checked before anything is written: every git step that follows would fail on it, and a
    # git killed while committing (a cancelled CI job) leaves it behind.
    index_lock = git_dir / "index.lock"
    if index_lock.exists():
        raise GitError(
            f"{index_lock} exists: another git command is running in this repository, or one "
            "was killed while it ran",
            f"wait for it to finish; if no git command is running, delete {index_lock} and "
            "run again",
        )
    if session.current_branch() is None:
        head = session.rev("HEAD")
        raise GitError(
            f"HEAD is detached at {head[:12] if head else 'an unknown commit'}: meshcanary "
            "commits on a branch",
            "switch to a branch first (`git switch main`, or `git switch -c NAME` to keep "
            "this commit)",
        )
    if session.rev("HEAD") is None:
        raise GitError(
            f"the repository at {session.top} has no commits yet",
            "commit the release files and the rendered tree first, then run again",
        )


def return_to_base(root: Path) -> Base:
    """The branch an edit's branch starts from, switched to when HEAD is on an earlier edit's.

    Each edit's branch starts from the base, so that its pull request holds that one change:
    the branch the user is on, unless it is a branch meshcanary made for an earlier edit;
    then the branch that edit started from (recorded when meshcanary made it), and the work
    tree switches to it before anything is read. A `meshcanary/` branch with no record (made
    by an older meshcanary, or by hand) is refused rather than guessed.
    """
    with opened(root) as session:
        refuse_unsafe_head(session)
        current = session.current_branch() or ""
        base = _recorded_base(session, current)
        if base is None:
            _refuse_unknown_edit_branch(current)
            return Base(current)
        if base.startswith("-") or session.rev(f"refs/heads/{base}") is None:
            raise GitError(
                f"{current} is the branch of an earlier edit, and {base}, the branch it "
                "started from, no longer exists",
                "switch to the branch the change is for (such as `git switch main`), then run "
                "again",
            )
        session.check(
            "checkout",
            "-q",
            base,
            "--",
            what=f"cannot switch from {current}, the branch of an earlier edit, back to {base}",
            hint=f"commit or stash what stops it, or `git switch {base}` yourself, then run "
            "again; nothing was written",
        )
        return Base(base, left=current)


def _recorded_base(session: Session, branch: str) -> str | None:
    if not branch:
        return None
    status, out, _ = session.run("config", "--get", f"branch.{branch}.{BASE_KEY}")
    recorded = out.strip() if status == 0 else ""
    return recorded or None
