"""What a change is judged against: a git ref, the paths changed since it, its files.

`check` compares with HEAD by default (in a pre-commit hook: what is being committed against
the commit before), with the pull request's base in CI (`--base origin/main`), and an edit
with HEAD. Policies see the base's objects as `oldObject`; the `weight-step` check compares
release files. Only what changed since the base is built at the base: a hook that touches one
service builds one old overlay, a check of an unchanged tree builds none.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    changed: frozenset[str]  # repository paths that differ from the commit, new files too

    def touches(self, *folders: str) -> bool:
        """Whether anything under these repository paths differs from the commit."""
        prefixes = tuple(f.rstrip("/") + "/" for f in folders)
        return any(p in folders or p.startswith(prefixes) for p in self.changed)

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
    if changed is None:
        # Both relative to the repository (diff's --relative; ls-files is by default).
        # Both walk the work tree: side by side, as git waits on the disk more than the CPU.
        with ThreadPoolExecutor(max_workers=2) as pool:
            diff_run = pool.submit(
                run_git,
                repository,
                "diff",
                "--relative",
                "--name-only",
                "--no-renames",
                "-z",
                commit,
            )
            new_run = pool.submit(
                run_git, repository, "ls-files", "--others", "--exclude-standard", "-z"
            )
            diff, new = diff_run.result(), new_run.result()
        names = (os.fsdecode(diff.stdout) + os.fsdecode(new.stdout)).split("\0")
        changed = tuple(name for name in names if name)
    return Baseline(repository, ref, commit, frozenset(changed))
