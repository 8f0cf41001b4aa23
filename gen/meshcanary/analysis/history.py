"""When a canary's current step began, read from Git: no state lives anywhere else.

A step begins with the commit that last changed the release file's weights or a version's
image, on the branch's first-parent history: a pull request's commits are not live until it is
merged, so its merge is when they landed (GitHub's merge, squash and rebase buttons all make a
commit dated then; a local fast-forward keeps the branch commit's own date). A new image is a
new build, whose metrics start from nothing, so it begins a step too; a commit that changes
neither (replicas, a comment) does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcanary.gitops.session import Session, opened

Weights = dict[str, int]


@dataclass(frozen=True)
class Change:
    """The weights one commit gave the release file, and when it was committed."""

    commit: str
    time: float  # the committer's date, Unix seconds
    weights: Weights | None  # None: the file is missing or cannot be read at that commit
    images: dict[str, str] | None = None  # each version's image

    def same_step(self, other: Change) -> bool:
        return (self.weights, self.images) == (other.weights, other.images)


@dataclass(frozen=True)
class History:
    """The release file's weight changes on the first-parent history, oldest first."""

    path: str
    changes: tuple[Change, ...]

    def at(self, time: float) -> Change | None:
        """The change in force at `time` (the last one committed at or before it)."""
        found = None
        for change in self.changes:
            if change.time <= time:
                found = change
        return found


def _state(text: bytes) -> tuple[Weights | None, dict[str, str] | None]:
    """A release file's weights and images, version by version; (None, None) when it cannot
    be read (missing at that commit, or not a release file then)."""
    try:
        data: Any = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None, None
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict):
        return None, None
    weights: Weights = {}
    images: dict[str, str] = {}
    for name, version in versions.items():
        weight = version.get("weight") if isinstance(version, dict) else None
        if not isinstance(name, str) or not isinstance(weight, int):
            return None, None
        weights[name] = weight
        images[name] = str(version.get("image"))
    return weights, images


def _blob(session: Session, name: str) -> bytes:
    """The object `name` names; empty when there is none (the file deleted by that commit).

    GitPython keeps one `git cat-file --batch` process for every read, where a process per
    commit would cost more than the rest of `analyze`.
    """
    try:
        _, kind, _, data = session.repo.git.get_object_data(name)
    except ValueError:
        return b""
    # GitPython's annotations say str; it gives the type as cat-file prints it, in bytes.
    found: object = kind
    return bytes(data) if found == b"blob" else b""


def histories(root: Path, paths: Sequence[str], revision: str = "HEAD") -> dict[str, History]:
    """Every commit of `revision`'s first-parent history that changed each path's weights.

    `paths` are relative to `root`. One `git log` reads the commits of them all, and one
    `cat-file` process the files at each, whatever the number of releases. A repository
    without commits has no history (empty).
    """
    found: dict[str, list[Change]] = {path: [] for path in paths}
    if not paths:
        return {}
    with opened(root) as session:
        if session.rev(revision) is None:
            return {path: History(path, ()) for path in paths}
        specs = {session.spec(path): path for path in paths}
        out = session.check(
            "log",
            "--first-parent",
            # A merge's files as against its first parent (git before 2.31 lists none without).
            "-m",
            "--format=%x00%H %ct",
            "--name-only",
            "--no-renames",
            revision,
            "--",
            *specs,
            what="git cannot read the history of the release files",
            hint="check the repository with `git status`",
        )
        listed: list[tuple[str, float, list[str]]] = []
        for entry in out.split("\0")[1:]:
            head, _, names = entry.partition("\n")
            sha, stamp = head.split()
            touched = [name for name in names.splitlines() if name in specs]
            listed.append((sha, float(stamp), touched))
        for sha, seconds, touched in reversed(listed):
            for spec in touched:
                changes = found[specs[spec]]
                change = Change(sha, seconds, *_state(_blob(session, f"{sha}:{spec}")))
                if changes and changes[-1].same_step(change):
                    continue
                changes.append(change)
    return {path: History(path, tuple(changes)) for path, changes in found.items()}


def history(root: Path, path: str, revision: str = "HEAD") -> History:
    """The weight changes of one release file (see `histories`)."""
    return histories(root, [path], revision)[path]
