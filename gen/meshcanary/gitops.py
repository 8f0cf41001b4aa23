"""Everything meshcanary does with git after an edit: checks, branch, commit, push, PR text.

Git runs through GitPython, never a shell. Inside a git hook, git exports `GIT_DIR`,
`GIT_INDEX_FILE` and friends that point at the hook's repository and index, not ours, and
GitPython both reads them when it opens a repository and copies them into every command it
runs (`env=` only adds variables, it cannot remove one). So each public function runs with
those variables taken out of `os.environ` for its duration and put back afterwards, and passes
the same scrubbed environment to every git command. meshcanary runs these steps on one thread.

Commit hooks run, as they do for any commit in the repository: a repository's own checks (its
`meshcanary check` hook, a secret scanner, a commit-msg hook adding a trailer) apply to
meshcanary's commits too, and in CI the hooks are whatever the job installed, not files of the
pull request. What a hook stages is not trusted: the commit must change exactly what
meshcanary staged, and the user's index must be as it was, or the commit is undone and refused.

Everything that goes into the pull request's title and body is treated as text someone else
wrote (environment folders, service and version names, images, branch names): code spans long
enough for any backticks inside, no line breaks in the title, `|` escaped in table cells.
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshcanary.errors import MeshcanaryError

# Pushing over a network that never answers must not hang a CI job forever.
PUSH_TIMEOUT_SECONDS = 300
LOCAL_TIMEOUT_SECONDS = 120

# Variables a user sets on purpose for git (credentials, transport, configuration files) are
# kept; the ones git exports while a hook runs are not (pre-commit's `no_git_env`, plus the
# configuration-file switches a CI job or a test sets to pick its own configuration).
_KEPT = frozenset(
    {
        "GIT_ALLOW_PROTOCOL",
        "GIT_ASKPASS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_SYSTEM",
        "GIT_EXEC_PATH",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSL_CAINFO",
        "GIT_SSL_NO_VERIFY",
        "GIT_TERMINAL_PROMPT",
    }
)
# GitPython's own (GIT_PYTHON_GIT_EXECUTABLE: which git to run) are no hook's either.
_KEPT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_PYTHON_")
_LISTED = 5
# A git that fails with pages of output is quoted by one line of it, cut to this length.
_GIST_LENGTH = 300
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# How a failed commit's hint ends: `commit` leaves the work tree to its caller, which may say
# more precisely what it did with the files (the edit commands put them back).
FILES_KEPT = "the files meshcanary wrote are unchanged"
_environ_lock = threading.RLock()


class GitError(MeshcanaryError):
    """A git operation meshcanary refused or that failed; `message` and `hint` are one line each."""

    def __init__(self, message: str, hint: str = "", output: str = "") -> None:
        self.message = message
        self.hint = hint
        # Everything git printed, for a caller that wants to show more than the one line.
        self.output = output
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)


@dataclass(frozen=True)
class Committed:
    """The commit meshcanary made, and the branch the user was on before: the base, which the
    new branch started from and its pull request merges into."""

    branch: str
    sha: str
    created_branch: bool
    previous_branch: str


@dataclass(frozen=True)
class Base:
    """The branch an edit's branch starts from; `left`: the earlier edit's branch HEAD was on."""

    branch: str
    left: str | None = None


@dataclass(frozen=True)
class PullRequest:
    """What a traffic change did, for the pull request's title and body."""

    environment: str
    service: str
    before: dict[str, int]
    after: dict[str, int]
    images: dict[str, str]
    checks: list[tuple[str, str]]
    branch: str
    base_branch: str


def _scrubbed(name: str) -> bool:
    return name.startswith("GIT_") and name not in _KEPT and not name.startswith(_KEPT_PREFIXES)


def clean_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (default `os.environ`) without the `GIT_*` variables a git hook exports."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not _scrubbed(k)}


@contextmanager
def _scrubbed_environ() -> Iterator[None]:
    with _environ_lock:
        saved = {k: v for k, v in os.environ.items() if _scrubbed(k)}
        for name in saved:
            del os.environ[name]
        try:
            yield
        finally:
            os.environ.update(saved)


def _import_gitpython() -> None:
    """Import GitPython, or say in one line why git does not work.

    GitPython runs `git version` while it is imported and, when that fails, raises an
    ImportError with a page of advice. Told to be quiet it lets a missing git pass, to fail at
    the first command (`_Session.run` says "git not found"); a git that is there but fails
    still stops the import, and is a GitError here. Imported here rather than with the module,
    so what needs no git (branch names, the pull request's text) works without one.
    """
    saved = os.environ.get("GIT_PYTHON_REFRESH")
    os.environ["GIT_PYTHON_REFRESH"] = "quiet"
    try:
        import git  # noqa: F401
    except ImportError as exc:
        cause = exc.__cause__
        status = getattr(cause, "status", None)
        said = re.sub(r"^\s*stderr: '(.*)'$", r"\1", getattr(cause, "stderr", ""), flags=re.S)
        why = (
            _gist(said, "", status)
            if isinstance(status, int)
            else str(cause or exc).strip().splitlines()[0]
        )
        raise GitError(
            f"git does not work: `git version` failed: {why}",
            "install git, or set GIT_PYTHON_GIT_EXECUTABLE to its path",
            str(exc),
        ) from None
    finally:
        if saved is None:
            os.environ.pop("GIT_PYTHON_REFRESH", None)
        else:
            os.environ["GIT_PYTHON_REFRESH"] = saved


class _Session:
    """One open repository and the folder (`root`) the caller's paths are relative to."""

    def __init__(self, root: Path) -> None:
        _import_gitpython()
        from git import Repo
        from git.exc import InvalidGitRepositoryError, NoSuchPathError

        try:
            repo = Repo(root, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise GitError(
                f"{root} is not inside a git work tree",
                "run meshcanary in a clone of the repository, or `git init` and commit the "
                "release files first",
            ) from None
        except (OSError, ValueError) as exc:
            # A .git that cannot be read (a gitdir file naming something odd, no permission).
            raise GitError(
                f"cannot open the git repository at {root}: {exc}",
                "check the repository with `git status`",
            ) from None
        if repo.bare or repo.working_tree_dir is None:
            repo.close()
            raise GitError(
                f"{root} is not inside a git work tree (the repository is bare)",
                "run meshcanary in a clone with a work tree",
            )
        self.repo = repo
        self.top = Path(repo.working_tree_dir).resolve()
        try:
            inside = Path(root).resolve().relative_to(self.top).as_posix()
        except ValueError:
            inside = "."
        self.prefix = "" if inside == "." else inside

    def run(
        self,
        *args: str,
        timeout: float = LOCAL_TIMEOUT_SECONDS,
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """Run `git ARGS...` in the work tree's top folder; returns status, stdout, stderr."""
        from git.exc import GitCommandNotFound

        try:
            status, out, err = self.repo.git.execute(
                [self.repo.git.GIT_PYTHON_GIT_EXECUTABLE, *args],
                with_extended_output=True,
                with_exceptions=False,
                shell=False,
                kill_after_timeout=timeout,
                env={**clean_env(), **(env or {})},
            )
        except GitCommandNotFound:
            raise GitError(
                "git not found", "install git, or set GIT_PYTHON_GIT_EXECUTABLE to its path"
            ) from None
        except OSError as exc:
            # Found but not runnable (no permission, a broken interpreter line).
            raise GitError(
                f"cannot run git: {exc.strerror or exc}",
                "install git, or set GIT_PYTHON_GIT_EXECUTABLE to its path",
            ) from None
        return status, out, err

    def check(self, *args: str, what: str, hint: str) -> str:
        """Run git and return its output; a failure is a GitError saying `what` failed."""
        status, out, err = self.run(*args)
        if status != 0:
            raise GitError(f"{what}: {_gist(err, out, status)}", hint, _joined(out, err))
        return out

    def rev(self, name: str) -> str | None:
        """The commit `name` names, or None when there is none; a git that fails is an error.

        `--quiet` makes git exit 1 without a word when the name names nothing: anything else
        (a broken repository, a git that cannot run) must not read as "no such commit".
        """
        status, out, err = self.run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
        if status == 1 and not err.strip():
            return None
        sha = out.strip()
        if status != 0 or not _OBJECT_ID.fullmatch(sha):
            raise GitError(
                f"git cannot read {name}: {_gist(err, out, status)}",
                "check the repository with `git status`",
                _joined(out, err),
            )
        return sha

    def spec(self, path: str) -> str:
        """A caller's path (relative to root) as a pathspec relative to the work tree's top."""
        if Path(path).is_absolute():
            raise GitError(f"{path} is not a path inside the repository", "give a relative path")
        spec = posixpath.normpath(posixpath.join(self.prefix, Path(path).as_posix()))
        if spec == ".." or spec.startswith("../"):
            raise GitError(f"{path} is outside the repository at {self.top}", "")
        return spec

    def shown(self, spec: str) -> str:
        """A top-relative path as the caller knows it (relative to root)."""
        if self.prefix and spec.startswith(self.prefix + "/"):
            return spec[len(self.prefix) + 1 :]
        return spec

    def current_branch(self) -> str | None:
        """The branch HEAD is on (it may have no commit yet); None when HEAD is detached."""
        status, out, err = self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        if status == 0 and out.strip():
            return out.strip()
        if status == 1 and not err.strip():
            return None  # detached: `--quiet` says so with its exit code alone
        raise GitError(
            f"git cannot read HEAD: {_gist(err, out, status)}",
            "check the repository with `git status`",
            _joined(out, err),
        )

    def remotes(self) -> list[str]:
        """The repository's remotes, as git reads its configuration."""
        listed = self.check("remote", what="git remote failed", hint="")
        return sorted(name for name in listed.splitlines() if name.strip())

    def changes(self, specs: Sequence[str]) -> list[tuple[str, str]]:
        """(path, state) for every uncommitted, staged or untracked file under `specs`."""
        out = self.check(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
            "--",
            *specs,
            what="git status failed",
            hint="",
        )
        found: list[tuple[str, str]] = []
        fields = iter(out.split("\0"))
        for entry in fields:
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code[0] in "RC":
                next(fields, None)  # the rename's or copy's source path
            found.append((self.shown(path), _state(code)))
        return found


@contextmanager
def _session(root: Path) -> Iterator[_Session]:
    with _scrubbed_environ():
        session = _Session(root)
        try:
            yield session
        finally:
            session.repo.close()


def _state(code: str) -> str:
    if code == "??":
        return "untracked"
    if "U" in code or code in ("AA", "DD"):
        return "unmerged"
    staged, unstaged = code[0] != " ", code[1] != " "
    if staged and unstaged:
        return "staged and modified"
    return "staged" if staged else ("deleted" if code[1] == "D" else "modified")


def _joined(*texts: str) -> str:
    return "\n".join(t for t in texts if t.strip())


def _gist(err: str, out: str, status: int) -> str:
    """The line of git's output that says what went wrong."""
    lines = [ln.strip() for ln in _joined(err, out).splitlines() if ln.strip()]
    found = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
    line = found or (lines[-1] if lines else f"git exited with code {status}")
    return line if len(line) <= _GIST_LENGTH else line[: _GIST_LENGTH - 1] + "…"


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    more = len(items) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


# --- preflight ---------------------------------------------------------------------------

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


def preflight(root: Path, paths: Sequence[str], branch: str | None = None) -> None:
    """Refuse to edit when a commit of `paths` (relative to `root`) could not hold only the edit.

    Refused: `root` is not in a git work tree; a merge, rebase, cherry-pick or revert is in
    progress; `.git/index.lock` exists (a git command running, or one that was killed); HEAD
    is detached or has no commit yet; any of `paths` (files or folders) has
    uncommitted, staged or untracked files; `branch`, when given, is a confusing name (see
    `branch_problem`). Changes elsewhere in the tree do not matter.
    """
    with _session(root) as session:
        _refuse_unsafe_head(session)
        if branch is not None:
            _refuse_confusing_branch(session, branch)
        specs = [session.spec(p) for p in ([paths] if isinstance(paths, str) else paths)]
        if not specs:
            return
        changed = session.changes(specs)
        if changed:
            raise GitError(
                "uncommitted changes in the files meshcanary would commit: "
                + _listing([f"{path} ({state})" for path, state in changed]),
                "commit or stash them first (`git stash --include-untracked`), so meshcanary's "
                "commit holds only its own edit",
            )


def return_to_base(root: Path) -> Base:
    """The branch an edit's branch starts from, switched to when HEAD is on an earlier edit's.

    Each edit's branch starts from the base, so that its pull request holds that one change:
    the branch the user is on, unless it is a branch meshcanary made for an earlier edit;
    then the branch that edit started from (recorded when meshcanary made it), and the work
    tree switches to it before anything is read. A `meshcanary/` branch with no record (made
    by an older meshcanary, or by hand) is refused rather than guessed.
    """
    with _session(root) as session:
        _refuse_unsafe_head(session)
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


def _recorded_base(session: _Session, branch: str) -> str | None:
    if not branch:
        return None
    status, out, _ = session.run("config", "--get", f"branch.{branch}.{_BASE_KEY}")
    recorded = out.strip() if status == 0 else ""
    return recorded or None


def _refuse_unknown_edit_branch(branch: str) -> None:
    if branch.startswith(EDIT_PREFIX):
        raise GitError(
            f"{branch} looks like the branch of an earlier edit, and meshcanary does not know "
            "which branch it started from",
            "switch to the branch the change is for (such as `git switch main`), then run "
            "again: each edit's branch starts from the base, not from another edit's branch",
        )


def _refuse_unsafe_head(session: _Session) -> None:
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


# --- branch names ------------------------------------------------------------------------

# Branches meshcanary names itself, and the configuration key (`branch.<name>.meshcanaryBase`)
# where it records, for each branch it makes, the branch that one started from.
EDIT_PREFIX = "meshcanary/"
_BASE_KEY = "meshcanaryBase"
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


def _refuse_confusing_branch(session: _Session, name: str) -> None:
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


def _refuse_stacking(session: _Session, current: str) -> None:
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


# --- commit ------------------------------------------------------------------------------

_HOOK_CHANGED = "a commit hook changed what meshcanary commits"
_HOOK_HINT = (
    "meshcanary commits exactly the files it wrote; make the hook leave the staged files "
    "alone (or skip it for meshcanary's commits), then run again"
)


def commit(root: Path, paths: Sequence[str], message: str, branch: str | None) -> Committed:
    """Commit exactly `paths` (relative to `root`; folders include deletions) with `message`.

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
    with _session(root) as session:
        _refuse_unsafe_head(session)
        previous = session.current_branch() or ""
        if branch is not None:
            _refuse_confusing_branch(session, branch)
        paths = [paths] if isinstance(paths, str) else paths
        specs = _known_specs(session, [session.spec(p) for p in paths])
        if not specs or not session.changes(specs):
            raise GitError(
                f"nothing to commit: no changes in {_listing(list(paths)) or 'no paths given'}",
                "the edit changed no file; nothing was committed",
            )
        target = previous if branch is None else branch
        if target != previous:
            _refuse_stacking(session, previous)
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
                    f"branch.{target}.{_BASE_KEY}",
                    previous,
                    what=f"cannot record the base of branch {target}",
                    hint="",
                )
            _stage_and_commit(session, specs, message, head, target)
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


def _known_specs(session: _Session, specs: Sequence[str]) -> list[str]:
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


def _switch_to(session: _Session, branch: str) -> bool:
    """Switch to `branch`, creating it at HEAD; True when it was created."""
    head = session.rev("HEAD")
    tip = session.rev(f"refs/heads/{branch}")
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
    session: _Session, specs: Sequence[str], message: str, head: str, target: str
) -> None:
    # `add -A -- PATHS` stages additions, changes and deletions under exactly these paths.
    session.check("add", "-A", "--", *specs, what="cannot stage the edited files", hint="")
    status, out, err = session.run("diff", "--cached", "--quiet", "HEAD", "--", *specs)
    if status not in (0, 1):
        raise GitError(f"git diff failed: {_gist(err, out, status)}", "", _joined(out, err))
    if status == 0:
        raise GitError(
            "nothing to commit: staging "
            + _listing([session.shown(spec) for spec in specs])
            + " changes nothing",
            "the edit changed no tracked file",
        )
    # Taken before `git commit` runs any hook: what the commit must change (under the paths)
    # and what the user has staged elsewhere, which must still be staged afterwards.
    staged = _raw_diff(session, "--cached", head)
    wanted = {path: entry for path, entry in staged.items() if _under(path, specs)}
    elsewhere = {path: entry for path, entry in staged.items() if not _under(path, specs)}
    # A pathspec commit (`--only`) takes these paths and nothing else the user had staged.
    status, out, err = session.run("commit", "-q", "--only", "-m", message, "--", *specs)
    if status != 0:
        text = _joined(err, out)
        hint = (
            "set your identity: `git config user.name NAME` and `git config user.email EMAIL`"
            if "Please tell me who you are" in text or "empty ident" in text
            else "a commit hook may have rejected it"
        )
        raise GitError(f"git commit failed: {_gist(err, out, status)}", hint, text)
    _verify(session, head, target, wanted, elsewhere)


def _verify(
    session: _Session,
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
        raise GitError(f"{_HOOK_CHANGED}: {_listing(changes)}", _HOOK_HINT)
    index_now = _raw_diff(session, "--cached", sha)
    if index_now != elsewhere:
        changes = [
            path
            for path in sorted(set(index_now) | set(elsewhere))
            if index_now.get(path) != elsewhere.get(path)
        ]
        raise GitError(f"{_HOOK_CHANGED}: it changed the index at {_listing(changes)}", _HOOK_HINT)


def _hook_change(wanted: tuple[str, str] | None, committed: tuple[str, str] | None) -> str:
    if wanted is None and committed is not None:
        return {"A": "added", "D": "deleted"}.get(committed[0], "modified")
    if committed is None:
        return "left out"
    return "other content"


def _raw_diff(session: _Session, *revisions: str) -> dict[str, tuple[str, str]]:
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


def _index_path(session: _Session) -> Path:
    return Path(session.repo.git_dir) / "index"


def _read_index(session: _Session) -> bytes | None:
    try:
        return _index_path(session).read_bytes()
    except FileNotFoundError:
        return None


def _restore_index(session: _Session, saved: bytes | None) -> bool:
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
    session: _Session,
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


# --- push --------------------------------------------------------------------------------


def push(root: Path, remote: str, branch: str) -> None:
    """Push `branch` to the same name on `remote` and set it as upstream; never forced.

    A rejected push (the branch there has other commits), an unknown remote and an
    unreachable remote are GitErrors with git's message; the local branch stays as it is.
    """
    with _session(root) as session:
        remotes = session.remotes()
        if remote not in remotes:
            known = f"known remotes: {', '.join(remotes)}" if remotes else "there are none"
            raise GitError(
                f"no git remote named {remote!r} ({known})",
                f"add it with `git remote add {remote} URL`, or choose another remote",
            )
        if session.rev(f"refs/heads/{branch}") is None:
            raise GitError(f"no local branch {branch!r} to push", "commit on it first")
        kept = f"your branch {branch} is kept as it is"
        # Full ref names on both sides and no leading "+": git refuses anything but a
        # fast-forward, whatever the branch is called.
        ref = f"refs/heads/{branch}"
        status, out, err = session.run(
            "push",
            "--set-upstream",
            "--",
            remote,
            f"{ref}:{ref}",
            timeout=PUSH_TIMEOUT_SECONDS,
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
        if status == 0:
            return
        text = _joined(err, out)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        refused = next((ln for ln in lines if ln.startswith("! [")), None)
        said = [ln[len("remote:") :].strip() for ln in lines if ln.startswith("remote:")]
        said = [ln for ln in said if ln]
        if refused and "[rejected]" in refused:
            raise GitError(
                f"{remote} refused {branch}: the branch there has commits this one does not "
                f"have ({refused})",
                f"someone pushed to {branch} first and meshcanary never force-pushes; {kept}: "
                f"compare with `git fetch {remote} {branch}`, then delete or rename yours and "
                "run again",
                text,
            )
        if refused:
            why = f" ({said[0]})" if said else ""
            raise GitError(
                f"{remote} rejected {branch}: {refused}{why}",
                f"the remote's rules (a hook, a protected branch) refused it; {kept}",
                text,
            )
        raise GitError(
            f"cannot push {branch} to {remote}: {_transport_gist(lines, status)}",
            f"check the remote's URL (`git remote get-url {remote}`) and your access; {kept}: "
            f"push it later with `git push -u {remote} {branch}`",
            text,
        )


def _transport_gist(lines: Sequence[str], status: int) -> str:
    # The transport (ssh, the dynamic linker of a helper) says why before git's own "fatal:".
    for line in lines:
        if not line.startswith(("hint:", "warning:", "Warning:", "remote:")):
            return line
    return f"git push exited with code {status}"


# --- pull request text -------------------------------------------------------------------

# A name that reads the same in Markdown, a Mermaid chart and a shell: shown as it is.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _shown(text: str) -> str:
    r"""`text` on one line: what is not printable (line breaks, control and format characters,
    such as a right-to-left override) written as its Python escape, `\n` or `\u202e`."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _code(text: str) -> str:
    """`text` as one Markdown code span, whatever backticks or spaces it holds.

    The fence is one backtick longer than the longest run inside; a space on each side keeps
    a leading or trailing backtick off the fence (CommonMark takes one such space off again).
    """
    text = _shown(text)
    if not text:
        return '`""`'
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = text.strip(" ") and (text[0] in "` " or text[-1] in "` ")
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def _name(text: str) -> str:
    """A version (or other) name in running Markdown: as it is when plain, else a code span."""
    return text if _PLAIN.fullmatch(text) else _code(text)


def _cell(markdown: str) -> str:
    # GFM splits a table row at every `|` not escaped, inside a code span too.
    return markdown.replace("|", "\\|")


def _label(text: str) -> str:
    """A name inside a Mermaid chart, where it sits between double quotes on one line."""
    return text if _PLAIN.fullmatch(text) else re.sub(r"[^A-Za-z0-9._ -]", "_", text) or "_"


def _versions(pr: PullRequest) -> list[str]:
    """Every version of the change, in the release file's order, removed ones where they were."""
    return [*pr.before, *(v for v in pr.after if v not in pr.before)]


def pr_title(pr: PullRequest) -> str:
    """`prod/micro-api: v2 30% -> 50%`: each version whose weight moved, added or removed.

    With two versions before and after, the first's move mirrors the second's, so only the
    second (the canary) is named. When no weight moved, the title gives the weights. One line,
    whatever the names hold.
    """
    parts: list[str] = []
    for version in _versions(pr):
        was, now = pr.before.get(version), pr.after.get(version)
        if was is None and now is not None:
            parts.append(f"{_shown(version)} added at {now}%")
        elif now is None:
            parts.append(f"{_shown(version)} removed")
        elif was != now:
            parts.append(f"{_shown(version)} {was}% -> {now}%")
    if len(pr.before) == 2 and list(pr.before) == list(pr.after) and len(parts) == 2:
        parts = parts[1:]
    if not parts:
        weights = ", ".join(f"{_shown(v)} {w}%" for v, w in pr.after.items())
        parts = [f"{weights} (weights unchanged)"]
    return f"{_shown(pr.environment)}/{_shown(pr.service)}: {', '.join(parts)}"


def _weight_cell(was: int | None, now: int | None) -> str:
    if was is None:
        return f"new → {now}%"
    if now is None:
        return f"{was}% → removed"
    return f"{was}% (unchanged)" if was == now else f"{was}% → {now}%"


# Okabe and Ito's colours, told apart with the common colour-vision deficiencies and on
# GitHub's light and dark backgrounds. The Nth version of a change (in `_versions` order) has
# the Nth colour in both charts, so a version reads as the same colour before and after.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#999999")
# Mermaid's pie has twelve colour slots, `pie1` to `pie12`; past them it starts over.
_PIE_SLOTS = 12


def _colours(versions: Sequence[str]) -> dict[str, str]:
    return {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(versions)}


def _pie(heading: str, weights: Mapping[str, int], colours: Mapping[str, str]) -> list[str]:
    """A Mermaid pie of `weights`, each version in its colour from `colours`, 0% ones too.

    Mermaid does not colour slices in the order they are written: it sorts them by value,
    largest first, and hands out `pie1`, `pie2`... in that order (the newest also leaves
    slices under 1% out of the circle and gives them the next slots in its legend). Written
    here largest first, ties in the release's order and versions at 0% last, the slots
    follow the lines whichever Mermaid draws it; each chart then sets slot N to the colour of
    its Nth line. `showData` puts each value in the legend, so a version at 0% reads as 0.
    """
    if not any(weight > 0 for weight in weights.values()):
        return [f"{heading}: no version receives traffic.", ""]
    ranked = sorted(weights.items(), key=lambda item: -item[1])
    slots = ", ".join(
        f"'pie{slot}': '{colours[version]}'"
        for slot, (version, _) in enumerate(ranked[:_PIE_SLOTS], start=1)
    )
    return [
        "```mermaid",
        f"%%{{init: {{'themeVariables': {{{slots}}}}}}}%%",
        "pie showData",
        f"    title {heading}",
        *(f'    "{_label(version)}" : {weight}' for version, weight in ranked),
        "```",
        "",
    ]


def _revert(pr: PullRequest) -> list[str]:
    """How to undo the change: revert the pull request, or the commands that undo it.

    A command is offered only when it would change something (`set-weights` refuses weights
    that already are) and every word of it is plain, so pasting it runs nothing else. A
    version the change added is taken away again with `retire`; one it removed only a revert
    brings back.
    """
    added = [v for v in pr.after if v not in pr.before]
    removed = [v for v in pr.before if v not in pr.after]
    restorable = sum(pr.before.get(v, 0) for v in pr.after) == sum(pr.before.values())
    moved = any(pr.before.get(v, 0) != weight for v, weight in pr.after.items())
    commands: list[str] = []
    if pr.before and restorable and moved:
        weights = " ".join(f"{v}={pr.before.get(v, 0)}" for v in pr.after)
        commands.append(f"meshcanary set-weights {pr.environment} {pr.service} {weights}")
    if pr.before and restorable:
        commands += [f"meshcanary retire {pr.environment} {pr.service} {v}" for v in added]
    words = [pr.environment, pr.service, *pr.after]
    lines = ["Revert this pull request."]
    if commands and all(_PLAIN.fullmatch(w) for w in words):
        lines = [
            "Revert this pull request, or run "
            + ", then ".join(f"`{command}`" for command in commands)
            + "."
        ]
    if removed:
        lines.append(
            f"Only reverting the pull request brings back {', '.join(_name(v) for v in removed)}, "
            "which this change removes."
        )
    return lines


def pr_body(pr: PullRequest) -> str:
    """The pull request's Markdown: weights before → after, images, charts, checks, revert.

    Names, images and branches are text others wrote: each is a code span (or, when plain, as
    it is) that nothing inside can close, break a table row or start a heading with; the revert
    command is offered only when every word of it is plain, so pasting it runs nothing else.
    """
    versions = _versions(pr)
    lines = [
        f"Traffic change for {_code(pr.service)} in {_code(pr.environment)}: merging "
        f"{_code(pr.branch)} into {_code(pr.base_branch)} applies it.",
        "",
        "| version | weight (before → after) | image |",
        "|---|---|---|",
    ]
    for version in versions:
        image = pr.images.get(version)
        cells = [
            _name(version),
            _weight_cell(pr.before.get(version), pr.after.get(version)),
            _code(image) if image else "—",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    colours = _colours(versions)
    lines += ["", *_pie("Before", pr.before, colours), *_pie("After", pr.after, colours)]
    lines += ["### Checks", ""]
    lines += [f"- {_shown(name)}: {_shown(result)}" for name, result in pr.checks] or [
        "No checks ran."
    ]
    lines += ["", "### How to revert", "", *_revert(pr)]
    return "\n".join(lines) + "\n"


# --- GitHub Actions ----------------------------------------------------------------------

# What GitHub accepts as an output's name: a letter or `_`, then letters, digits, `-` or `_`.
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def write_github_output(path: Path, values: Mapping[str, str]) -> None:
    """Append `values` to the `$GITHUB_OUTPUT` file: `key=value`, or a heredoc when multi-line.

    A multi-line value is written as `key<<DELIMITER`, the value, and `DELIMITER`, with a
    delimiter that occurs nowhere in the value (`MESHCANARY_EOF`, else the first free
    `MESHCANARY_EOF_<n>`): no line of a value can end it early and start an output of its own,
    and the same values always give the same file.
    """
    chunks: list[str] = []
    for key, value in values.items():
        if not _OUTPUT_NAME.fullmatch(key):
            raise ValueError(f"{key!r} cannot be a GitHub Actions output name")
        if "\n" not in value and "\r" not in value:
            chunks.append(f"{key}={value}\n")
            continue
        delimiter = "MESHCANARY_EOF"
        count = 0
        while delimiter in value:
            count += 1
            delimiter = f"MESHCANARY_EOF_{count}"
        chunks.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
    try:
        # A file that does not end its last line would glue our first line onto it.
        lead = "\n" if path.exists() and _ends_without_newline(path) else ""
        with path.open("a", encoding="utf-8", newline="\n") as out:
            out.write(lead + "".join(chunks))
    except OSError as exc:
        raise MeshcanaryError(
            f"cannot write the GitHub Actions output file {path}: {exc.strerror or exc}"
        ) from None


def _ends_without_newline(path: Path) -> bool:
    with path.open("rb") as existing:
        existing.seek(0, os.SEEK_END)
        if existing.tell() == 0:
            return False
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) != b"\n"
