"""Preflight and commit: exactly the edited paths on a branch, undone whole when refused.

Commit hooks run, as they do for any commit in the repository: a repository's own checks (its
`meshcanary check` hook, a secret scanner, a commit-msg hook adding a trailer) apply to
meshcanary's commits too, and in CI the hooks are whatever the job installed, not files of the
pull request. What a hook stages is not trusted: the commit must change exactly what
meshcanary staged, and the user's index must be as it was, or the commit is undone and refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcanary.gitops.branch import (
    BASE_KEY,
    refuse_confusing_branch,
    refuse_stacking,
    refuse_unsafe_head,
)
from meshcanary.gitops.session import GitError, Session, gist, joined, listing, opened

# How a failed commit's hint ends: `commit` leaves the work tree to its caller, which may say
# more precisely what it did with the files (the edit commands put them back).
FILES_KEPT = "the files meshcanary wrote are unchanged"


@dataclass(frozen=True)
class Committed:
    """The commit meshcanary made, and the branch the user was on before: the base, which the
    new branch started from and its pull request merges into."""

    branch: str
    sha: str
    created_branch: bool
    previous_branch: str


def preflight(root: Path, paths: Sequence[str], branch: str | None = None) -> None:
    """Refuse to edit when a commit of `paths` (relative to `root`) could not hold only the edit.

    Refused: `root` is not in a git work tree; a merge, rebase, cherry-pick or revert is in
    progress; `.git/index.lock` exists (a git command running, or one that was killed); HEAD
    is detached or has no commit yet; any of `paths` (files or folders) has
    uncommitted, staged or untracked files; `branch`, when given, is a confusing name (see
    `branch_problem`). Changes elsewhere in the tree do not matter.
    """
    with opened(root) as session:
        refuse_unsafe_head(session)
        if branch is not None:
            refuse_confusing_branch(session, branch)
        specs = [session.spec(p) for p in ([paths] if isinstance(paths, str) else paths)]
        if not specs:
            return
        changed = session.changes(specs)
        if changed:
            raise GitError(
                "uncommitted changes in the files meshcanary would commit: "
                + listing([f"{path} ({state})" for path, state in changed]),
                "commit or stash them first (`git stash --include-untracked`), so meshcanary's "
                "commit holds only its own edit",
            )


# --- commit ------------------------------------------------------------------------------

_HOOK_CHANGED = "a commit hook changed what meshcanary commits"
_HOOK_HINT = (
    "meshcanary commits exactly the files it wrote; make the hook leave the staged files "
    "alone (or skip it for meshcanary's commits), then run again"
)


def commit(
    root: Path,
    paths: Sequence[str],
    message: str,
    branch: str | None,
    date: float | None = None,
) -> Committed:
    """Commit exactly `paths` (relative to `root`; folders include deletions) with `message`.

    `date` (Unix seconds): the commit's author and committer date instead of now; `advance
    --at` commits a step when its analysis says it began.

    With `branch`, create it from HEAD and switch to it first, or reuse it when it already
    points at HEAD; a branch that exists with other commits, a confusing name
    (`branch_problem`) and HEAD on the branch of an earlier edit are refused. The commit
    hooks run; if the commit they let through changes anything but what was staged here
    under `paths`, or the user's index differs afterwards, the commit is undone and refused.
    If anything fails after the switch, HEAD goes back to the previous branch (without
    touching the work tree), a branch created here is deleted, one reused is put back, and
    the index is restored byte for byte; the files in the work tree stay as the caller
    wrote them. On success the repository stays on the (new) branch, which records in the
    repository's configuration the branch it started from (`return_to_base` reads it).
    """
    with opened(root) as session:
        refuse_unsafe_head(session)
        previous = session.current_branch() or ""
        if branch is not None:
            refuse_confusing_branch(session, branch)
        paths = [paths] if isinstance(paths, str) else paths
        specs = _known_specs(session, [session.spec(p) for p in paths])
        if not specs or not session.changes(specs):
            raise GitError(
                f"nothing to commit: no changes in {listing(list(paths)) or 'no paths given'}",
                "the edit changed no file; nothing was committed",
            )
        target = previous if branch is None else branch
        if target != previous:
            refuse_stacking(session, previous)
        head = session.rev("HEAD") or ""
        saved_index = _read_index(session)
        created = switched = False
        if target != previous:
            created = _switch_to(session, target)
            switched = True
        try:
            if created:
                session.check(
                    "config",
                    f"branch.{target}.{BASE_KEY}",
                    previous,
                    what=f"cannot record the base of branch {target}",
                    hint="",
                )
            _stage_and_commit(session, specs, message, head, target, date)
            sha = session.rev("HEAD") or ""
        except GitError as exc:
            undone = _undo(
                session,
                saved_index,
                previous=previous,
                target=target,
                head=head,
                switched=switched,
                created=created,
            )
            raise GitError(
                exc.message, "; ".join(filter(None, [exc.hint, undone])), exc.output
            ) from None
        return Committed(target, sha, created, previous)


def _known_specs(session: Session, specs: Sequence[str]) -> list[str]:
    """The pathspecs that name something: on disk, or tracked (a deletion to commit)."""
    tracked = session.check(
        "ls-files", "-z", "--cached", "--", *specs, what="git ls-files failed", hint=""
    ).split("\0")
    known: list[str] = []
    for spec in specs:
        inside = spec + "/"
        if (session.top / spec).exists() or any(t == spec or t.startswith(inside) for t in tracked):
            known.append(spec)
    return known


def _switch_to(session: Session, branch: str) -> bool:
    """Switch to `branch`, creating it at HEAD; True when it was created.

    A branch whose every commit HEAD has already (its pull request merged, the branch kept)
    is moved to HEAD: nothing of it is lost, and the same change again can go on it.
    """
    head = session.rev("HEAD")
    tip = session.rev(f"refs/heads/{branch}")
    merged = tip is not None and session.run("merge-base", "--is-ancestor", tip, "HEAD")[0] == 0
    if tip is not None and tip != head and merged:
        session.check(
            "checkout", "-q", "-B", branch, what=f"cannot move branch {branch} to HEAD",
            hint=f"the repository is as it was; {FILES_KEPT}",
        )  # fmt: skip
        return False
    if tip is not None and tip != head:
        raise GitError(
            f"branch {branch} already exists with other content (its tip {tip[:12]} is not "
            f"HEAD {(head or '')[:12]})",
            f"an earlier change for the same target is on it: merge or close its pull "
            f"request and delete the branch (`git branch -D {branch}`), then run again",
        )
    hint = f"the repository is as it was; {FILES_KEPT}"
    if tip is None:
        session.check(
            "checkout", "-q", "-b", branch, what=f"cannot create branch {branch}", hint=hint
        )
        return True
    session.check(
        "checkout", "-q", branch, "--", what=f"cannot switch to branch {branch}", hint=hint
    )
    return False


def _stage_and_commit(
    session: Session,
    specs: Sequence[str],
    message: str,
    head: str,
    target: str,
    date: float | None = None,
) -> None:
    # `add -A -- PATHS` stages additions, changes and deletions under exactly these paths.
    session.check("add", "-A", "--", *specs, what="cannot stage the edited files", hint="")
    status, out, err = session.run("diff", "--cached", "--quiet", "HEAD", "--", *specs)
    if status not in (0, 1):
        raise GitError(f"git diff failed: {gist(err, out, status)}", "", joined(out, err))
    if status == 0:
        raise GitError(
            "nothing to commit: staging "
            + listing([session.shown(spec) for spec in specs])
            + " changes nothing",
            "the edit changed no tracked file",
        )
    # Taken before `git commit` runs any hook: what the commit must change (under the paths)
    # and what the user has staged elsewhere, which must still be staged afterwards.
    staged = _raw_diff(session, "--cached", head)
    wanted = {path: entry for path, entry in staged.items() if _under(path, specs)}
    elsewhere = {path: entry for path, entry in staged.items() if not _under(path, specs)}
    # A pathspec commit (`--only`) takes these paths and nothing else the user had staged.
    dated = {}
    if date is not None:
        stamp = f"{int(date)} +0000"
        dated = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    status, out, err = session.run("commit", "-q", "--only", "-m", message, "--", *specs, env=dated)
    if status != 0:
        text = joined(err, out)
        hint = (
            "set your identity: `git config user.name NAME` and `git config user.email EMAIL`"
            if "Please tell me who you are" in text or "empty ident" in text
            else "a commit hook may have rejected it"
        )
        raise GitError(f"git commit failed: {gist(err, out, status)}", hint, text)
    _verify(session, head, target, wanted, elsewhere)


def _verify(
    session: Session,
    head: str,
    target: str,
    wanted: Mapping[str, tuple[str, str]],
    elsewhere: Mapping[str, tuple[str, str]],
) -> None:
    """Refuse a commit that is not HEAD + exactly `wanted`, or an index that lost `elsewhere`.

    A hook runs inside `git commit` against the index being committed: whatever it stages
    goes into the commit, and after a pathspec commit the user's index no longer matches.
    """
    sha = session.rev("HEAD") or ""
    if session.current_branch() != target:
        raise GitError(f"{_HOOK_CHANGED}: HEAD is no longer on {target}", _HOOK_HINT)
    out = session.check(
        "rev-list", "--parents", "--max-count=1", sha, what="git rev-list failed", hint=""
    )
    if out.split()[1:] != [head]:
        raise GitError(
            f"{_HOOK_CHANGED}: {target} is not one commit on top of {head[:12]} (a hook "
            "committed too)",
            _HOOK_HINT,
        )
    committed = _raw_diff(session, head, sha)
    if committed != wanted:
        changes = [
            f"{path} ({_hook_change(wanted.get(path), committed.get(path))})"
            for path in sorted(set(committed) | set(wanted))
            if committed.get(path) != wanted.get(path)
        ]
        raise GitError(f"{_HOOK_CHANGED}: {listing(changes)}", _HOOK_HINT)
    index_now = _raw_diff(session, "--cached", sha)
    if index_now != elsewhere:
        changes = [
            path
            for path in sorted(set(index_now) | set(elsewhere))
            if index_now.get(path) != elsewhere.get(path)
        ]
        raise GitError(f"{_HOOK_CHANGED}: it changed the index at {listing(changes)}", _HOOK_HINT)


def _hook_change(wanted: tuple[str, str] | None, committed: tuple[str, str] | None) -> str:
    if wanted is None and committed is not None:
        return {"A": "added", "D": "deleted"}.get(committed[0], "modified")
    if committed is None:
        return "left out"
    return "other content"


def _raw_diff(session: Session, *revisions: str) -> dict[str, tuple[str, str]]:
    """path -> (status letter, the rest of git's raw line) for `git diff --raw REVISIONS`."""
    out = session.check(
        "diff",
        "--raw",
        "-z",
        "--no-renames",
        "--no-abbrev",
        "--no-color",
        "--ignore-submodules=none",
        *revisions,
        "--",
        what="git diff failed",
        hint="",
    )
    fields = out.split("\0")
    found: dict[str, tuple[str, str]] = {}
    for meta, path in zip(fields[::2], fields[1::2], strict=False):
        if meta.startswith(":"):
            found[path] = (meta.split()[-1][:1], meta)
    return found


def _under(path: str, specs: Sequence[str]) -> bool:
    return any(path == spec or path.startswith(spec.rstrip("/") + "/") for spec in specs)


def _index_path(session: Session) -> Path:
    return Path(session.repo.git_dir) / "index"


def _read_index(session: Session) -> bytes | None:
    try:
        return _index_path(session).read_bytes()
    except FileNotFoundError:
        return None


def _restore_index(session: Session, saved: bytes | None) -> bool:
    """Put back the index bytes read before the commit, taking git's lock as git does."""
    if saved is None:
        return True
    index = _index_path(session)
    lock = index.with_name("index.lock")
    try:
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        return False  # another git command holds the index
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(saved)
        os.replace(lock, index)
    except OSError:
        lock.unlink(missing_ok=True)
        return False
    return True


def _undo(
    session: Session,
    saved_index: bytes | None,
    *,
    previous: str,
    target: str,
    head: str,
    switched: bool,
    created: bool,
) -> str:
    """Put the repository back as it was before `commit`, except the files in the work tree.

    HEAD moves with `symbolic-ref` and branches with `update-ref`: a checkout would also
    rewrite (or delete) work-tree files that a refused commit holds and the user's index
    does not, such as a file a hook staged.
    """
    done: list[str] = []
    failed: list[str] = []
    (done if _restore_index(session, saved_index) else failed).append("unstaged the edited files")
    # Undoing runs after git failed once: a git that fails again must not stop the rest.
    try:
        tip = session.rev(f"refs/heads/{target}")
    except GitError:
        tip = None
    try:
        elsewhere = session.current_branch() != previous
    except GitError:
        elsewhere = True
    # A hook may have switched branches too.
    if switched or elsewhere:
        status, _, _ = session.run("symbolic-ref", "HEAD", f"refs/heads/{previous}")
        (done if status == 0 else failed).append(f"switched back to {previous}")
        if created and status == 0:
            status, _, _ = session.run("branch", "-q", "-D", "--", target)
            (done if status == 0 else failed).append(f"deleted branch {target}")
    if tip is not None and tip != head and not (switched and created):
        status, _, _ = session.run("update-ref", f"refs/heads/{target}", head, tip)
        (done if status == 0 else failed).append(f"put {target} back at {head[:12]}")
    text = "nothing was committed: " + ", ".join(done) if done else "nothing was committed"
    if failed:
        text += "; could not: " + ", ".join(failed)
    return f"{text}; {FILES_KEPT}"
