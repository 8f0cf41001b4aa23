"""When a canary's current step began, read from Git: no state lives anywhere else.

A step begins with the commit that last changed the release file's weights, on the branch's
first-parent history: a pull request's commits are not live until it is merged, so the merge
(or the fast-forwarded commit) is when the new weights landed. A commit that changes the
release file without changing its weights (a new image tag, a comment) does not begin a step.
"""

from __future__ import annotations

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


def _weights(text: bytes) -> Weights | None:
    try:
        data: Any = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict):
        return None
    weights: Weights = {}
    for name, version in versions.items():
        weight = version.get("weight") if isinstance(version, dict) else None
        if not isinstance(name, str) or not isinstance(weight, int):
            return None
        weights[name] = weight
    return weights


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


def history(root: Path, path: str, revision: str = "HEAD") -> History:
    """Every commit of `revision`'s first-parent history that changed `path`'s weights.

    `path` is relative to `root`. A repository without commits has no history (empty).
    """
    with opened(root) as session:
        if session.rev(revision) is None:
            return History(path, ())
        spec = session.spec(path)
        out = session.check(
            "log",
            "--first-parent",
            "--format=%H %ct",
            "--no-renames",
            revision,
            "--",
            spec,
            what=f"git cannot read the history of {path}",
            hint="check the repository with `git status`",
        )
        listed = [line.split() for line in out.splitlines() if line.strip()]
        changes: list[Change] = []
        for sha, seconds in reversed(listed):
            weights = _weights(_blob(session, f"{sha}:{spec}"))
            if changes and changes[-1].weights == weights:
                continue
            changes.append(Change(sha, float(seconds), weights))
    return History(path, tuple(changes))
