"""One open repository, with the `GIT_*` variables of a git hook kept out of it.

Git runs through GitPython, never a shell. Inside a git hook, git exports `GIT_DIR`,
`GIT_INDEX_FILE` and friends that point at the hook's repository and index, not ours, and
GitPython both reads them when it opens a repository and copies them into every command it
runs (`env=` only adds variables, it cannot remove one). So each public function runs with
those variables taken out of `os.environ` for its duration and put back afterwards, and passes
the same scrubbed environment to every git command. meshcanary runs these steps on one thread.
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
# How many paths a message names before it says "and N more".
_LISTED = 5
# A git that fails with pages of output is quoted by one line of it, cut to this length.
_GIST_LENGTH = 300
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_environ_lock = threading.RLock()


class GitError(MeshcanaryError):
    """A git operation meshcanary refused or that failed; `message` and `hint` are one line each."""

    def __init__(self, message: str, hint: str = "", output: str = "") -> None:
        self.message = message
        self.hint = hint
        # Everything git printed, for a caller that wants to show more than the one line.
        self.output = output
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)


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
    the first command (`Session.run` says "git not found"); a git that is there but fails
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
            gist(said, "", status)
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


class Session:
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
            raise GitError(f"{what}: {gist(err, out, status)}", hint, joined(out, err))
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
                f"git cannot read {name}: {gist(err, out, status)}",
                "check the repository with `git status`",
                joined(out, err),
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
            f"git cannot read HEAD: {gist(err, out, status)}",
            "check the repository with `git status`",
            joined(out, err),
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
def opened(root: Path) -> Iterator[Session]:
    with _scrubbed_environ():
        session = Session(root)
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


def joined(*texts: str) -> str:
    return "\n".join(t for t in texts if t.strip())


def gist(err: str, out: str, status: int) -> str:
    """The line of git's output that says what went wrong."""
    lines = [ln.strip() for ln in joined(err, out).splitlines() if ln.strip()]
    found = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
    line = found or (lines[-1] if lines else f"git exited with code {status}")
    return line if len(line) <= _GIST_LENGTH else line[: _GIST_LENGTH - 1] + "…"


def listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    more = len(items) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown
