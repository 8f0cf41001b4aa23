"""Where a run works: the meshcanary repository, the git work tree around it, and paths between.

In a monorepo the meshcanary repository (the folder holding `environments/` and `deploy/`)
may be a folder of a larger git work tree (`platform/releases/`). A user runs meshcanary
from any folder below it, as git is run from any folder of a work tree; pre-commit passes
paths relative to the work tree's top; GitHub wants annotations on paths relative to it too.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from meshcanary.errors import InputError
from meshcanary.layout import ENVIRONMENTS, OVERLAYS

# What a staged path must be under to matter to a check: the rest of a monorepo does not.
CHECKED_FOLDERS = ("environments/", "deploy/", "policies/")


def git_top(start: Path) -> Path | None:
    """The top of the git work tree holding `start` (the folder with `.git`), if any."""
    for folder in (start, *start.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def _is_repository(folder: Path) -> bool:
    return (folder / ENVIRONMENTS).is_dir() or (folder / OVERLAYS).is_dir()


def find_root(start: Path) -> Path:
    """The meshcanary repository holding `start`: the nearest folder upward with
    `environments/` or `deploy/overlays/`, not above the git work tree's top. `start` when
    there is none (a new repository, or a command that needs none)."""
    start = start.resolve()
    top = git_top(start)
    for folder in (start, *start.parents):
        if _is_repository(folder):
            return folder
        if folder == top:
            break
    return start


@functools.lru_cache(maxsize=65536)
def _shown(top: str, base: str, path: str) -> str:
    # A report names the same few thousand files over and over.
    absolute = os.path.normpath(os.path.join(base, path))
    relative = os.path.relpath(absolute, top)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return path  # not under the top
    return relative.replace(os.sep, "/")


@dataclass(frozen=True)
class Workspace:
    """The repository a run works on, and the git work tree it is shown relative to."""

    root: Path  # the meshcanary repository, resolved
    top: Path | None  # the git work tree's top, resolved, when the repository is in one
    cwd: Path  # where the user ran meshcanary, resolved

    @classmethod
    def at(cls, root: Path, cwd: Path | None = None) -> Workspace:
        resolved = root.resolve()
        return cls(resolved, git_top(resolved), (cwd or Path.cwd()).resolve())

    def shown(self, path: str, base: Path | None = None) -> str:
        """`path` (relative to `base`, the repository by default) as reports show it: relative
        to the git work tree's top, so annotations land on real files. Unchanged when it is
        not a path under the top (`stdin`, a path outside, no git)."""
        if self.top is None or path in ("", "stdin", "-"):
            return path
        return _shown(str(self.top), str(base or self.root), path)

    def inside(self, raw: str) -> str | None:
        """A path as a user or pre-commit gives it, as a repository-relative POSIX path.

        Tried relative to the current folder, then to the git work tree's top (pre-commit
        passes those; in a monorepo they start with the repository's own folder), then to the
        repository; absolute paths as they are. None when it is outside the repository
        whichever way it is read.
        """
        given = Path(raw)
        candidates = [given] if given.is_absolute() else [self.cwd / given]
        if not given.is_absolute():
            # As pre-commit passes it; and as `--repo DIR check PATH` always took it.
            candidates += [self.top / given] if self.top is not None else []
            candidates.append(self.root / given)
        readings = [Path(os.path.normpath(candidate)) for candidate in candidates]
        inside = [r for r in readings if r.is_relative_to(self.root)]
        # A reading in the repository that names something; else, when another reading names
        # something outside it, that is what was meant; else (a deleted file) the first
        # reading in the repository.
        chosen = next((r for r in inside if os.path.lexists(r)), None)
        if chosen is None:
            if any(os.path.lexists(r) for r in readings) or not inside:
                return None
            chosen = inside[0]
        return PurePosixPath(chosen.relative_to(self.root).as_posix()).as_posix()

    def staged(self) -> list[str]:
        """Repository paths of the changes staged in git under CHECKED_FOLDERS, deletions
        included.

        pre-commit passes hooks only the files that still exist: a commit that deletes a
        release file would run no hook at all. The environment is git's own: in a hook,
        GIT_INDEX_FILE is the index being committed.
        """
        from meshcanary.baseline import run_git

        if self.top is None:
            raise InputError(f"--staged: {self.root} is not in a git work tree")
        try:
            done = run_git(
                self.top, "diff", "--cached", "--name-only", "--no-renames", "-z", index=True
            )
        except InputError as exc:
            raise InputError(f"--staged: {exc}") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise InputError(f"--staged: git diff --cached: {lines[-1] if lines else 'failed'}")
        names = [n for n in os.fsdecode(done.stdout).split("\0") if n]
        inside = [self.inside(str(self.top / name)) for name in names]
        return [p for p in inside if p is not None and p.startswith(CHECKED_FOLDERS)]
