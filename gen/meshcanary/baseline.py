"""What a change is judged against: a git ref, the paths changed since it, its files.

`check` compares with HEAD by default (in a pre-commit hook: what is being committed against
the commit before), with the pull request's base in CI (`--base origin/main`), and an edit
with HEAD. Policies see the base's objects as `oldObject`; the `weight-step` check compares
release files. Only what changed since the base is built at the base: a hook that touches one
service builds one old overlay, a check of an unchanged tree builds none. What changed is
asked of git only when a check first needs it (a report from the cache never does), and a
hook's check asks only about the folders of the services it names.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal, overload

from meshcanary.errors import InputError


def run_git(
    repository: Path, *args: str, index: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """git run in `repository`; a git that cannot be run is an InputError.

    The git the edit commands' GitPython runs: GIT_PYTHON_GIT_EXECUTABLE when it is set.
    Not a hook's GIT_DIR or GIT_INDEX_FILE, since commits need neither, unless `index`:
    what a hook is committing is in the index it names.
    """
    program = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    env = {k: v for k, v in os.environ.items() if index or not k.startswith("GIT_")}
    try:
        return subprocess.run(  # noqa: S603 - git, an argument list
            [program, "-C", str(repository), *args],
            capture_output=True,
            check=False,
            env=env,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"cannot run git: {exc}") from None


@dataclass(frozen=True)
class Baseline:
    """A commit of the repository and what differs from it in the work tree."""

    repository: Path  # the meshcanary repository (a folder of the git work tree)
    ref: str  # as given
    commit: str  # the full SHA it names
    # What differs, when the caller knows it (an edit checks a scratch copy, not the work
    # tree); else git is asked the first time `changed` is read.
    given: frozenset[str] | None = None
    # The repository paths `changed` covers; None: all of them. A hook's check asks about a
    # few folders, and git then walks those alone instead of the whole work tree.
    within: tuple[str, ...] | None = None

    @cached_property
    def changed(self) -> frozenset[str]:
        """Repository paths under `within` that differ from the commit, new files too."""
        if self.given is not None:
            return self.given
        return _changed(self.repository, self.commit, self.within)

    def narrowed(self, paths: Iterable[str]) -> Baseline:
        """The same baseline, answering only about `paths` (files or folders)."""
        return replace(self, within=tuple(sorted({_normal(p) for p in paths})))

    def differs(self, path: str) -> bool:
        """Whether the file at this repository path differs from the commit."""
        self._covers(path)
        return path in self.changed

    def touches(self, *folders: str) -> bool:
        """Whether anything under these repository paths differs from the commit."""
        for folder in folders:
            self._covers(folder)
        prefixes = tuple(f.rstrip("/") + "/" for f in folders)
        return any(p in folders or p.startswith(prefixes) for p in self.changed)

    def _covers(self, path: str) -> None:
        # A question outside `within` would be answered "unchanged": a wrong oldObject, a
        # weight step not checked. That is the caller's mistake, never the input's.
        if self.within is None or self.given is not None:
            return
        normal = _normal(path)
        if not any(normal == w or normal.startswith(f"{w}/") or w == "." for w in self.within):
            raise ValueError(f"{path} is outside the paths this baseline was narrowed to")

    def show(self, path: str) -> str | None:
        """The text of a repository file at the commit; None when it did not exist."""
        done = run_git(self.repository, "show", f"{self.commit}:./{path}")
        return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None

    def export(self, paths: list[str], target: Path) -> None:
        """These repository paths as they were at the commit, extracted into `target`."""
        import io
        import tarfile

        done = run_git(self.repository, "archive", "--format=tar", self.commit, "--", *paths)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise InputError(f"git archive {self.ref}: {message[-1] if message else 'failed'}")
        try:
            with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise InputError(f"git archive {self.ref}: {exc}") from None


@overload
def resolve(
    repository: Path, ref: str, *, required: Literal[True], changed: tuple[str, ...] | None = None
) -> Baseline: ...


@overload
def resolve(
    repository: Path, ref: str, *, required: bool, changed: tuple[str, ...] | None = None
) -> Baseline | None: ...


def resolve(
    repository: Path, ref: str, *, required: bool, changed: tuple[str, ...] | None = None
) -> Baseline | None:
    """The baseline `ref` names in the repository's git work tree.

    None when `ref` is not `required` (the default HEAD) and there is nothing to compare
    with: no git, or no commit yet. A required ref that is not there is an error that says
    how to fetch it (a CI checkout is often shallow). `changed`, when given, is what differs
    (an edit checks a scratch copy, not the work tree).
    """
    try:
        done = run_git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except InputError:
        if required:
            raise
        return None  # no git to run: nothing to compare with
    if done.returncode != 0:
        if not required:
            return None
        inside = run_git(repository, "rev-parse", "--is-inside-work-tree")
        if inside.returncode != 0:
            lines = inside.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise InputError(
                f"--base {ref}: {lines[-1] if lines else f'{repository} is not in a git work tree'}"
            )
        if not run_git(repository, "rev-list", "-n", "1", "--all").stdout.strip():
            raise InputError(f"--base {ref}: the repository has no commit yet")
        branch = ref.removeprefix("origin/")
        raise InputError(
            f"--base {ref}: no such commit in this clone\n"
            f"  hint: fetch it first, e.g. `git fetch --depth=1 origin {branch}` (a CI checkout "
            "is shallow and has only the pull request's commit)"
        )
    commit = done.stdout.decode().strip()
    return Baseline(repository, ref, commit, None if changed is None else frozenset(changed))


def _changed(repository: Path, commit: str, within: tuple[str, ...] | None) -> frozenset[str]:
    """What differs from `commit` in the work tree, of the repository paths `within`."""
    limits: tuple[str, ...] = ()
    if within is not None:
        # A path outside the repository has nothing git would list, and would fail the
        # whole command.
        inside = [w for w in within if not (w == ".." or w.startswith(("../", "/")))]
        if not inside:
            return frozenset()
        limits = ("--", *inside)
    # Both relative to the repository (diff's --relative; ls-files is by default).
    # Both walk the work tree: side by side, as git waits on the disk more than the CPU.
    with ThreadPoolExecutor(max_workers=2) as pool:
        diff_run = pool.submit(
            run_git,
            repository,
            # A path is a name, never a pattern: a release file chooses its base's name.
            "--literal-pathspecs",
            "diff",
            "--relative",
            "--name-only",
            "--no-renames",
            "-z",
            commit,
            *limits,
        )
        new_run = pool.submit(
            run_git,
            repository,
            "--literal-pathspecs",
            "ls-files",
            "--others",
            "--exclude-standard",
            "-z",
            *limits,
        )
        diff, new = diff_run.result(), new_run.result()
    names = (os.fsdecode(diff.stdout) + os.fsdecode(new.stdout)).split("\0")
    return frozenset(name for name in names if name)


def _normal(path: str) -> str:
    """A repository path as git names it: no trailing slash, no `./`."""
    return posixpath.normpath(path.rstrip("/")) if path.strip("/") else "."
