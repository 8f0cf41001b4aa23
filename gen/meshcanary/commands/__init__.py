"""One module per command: each takes plain arguments and returns a result or an exit code."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EditOptions:
    """What the commands that change files share (the edits, migrate): whether to write, and
    what to do with git afterwards."""

    dry_run: bool = False  # print the diff; write, commit and push nothing
    force: bool = False  # overwrite generated files edited by hand
    commit: bool = False
    branch: str | None = None
    push: str | None = None  # remote name
    pr_title: Path | None = None
    pr_body: Path | None = None
    github_output: Path | None = None  # $GITHUB_OUTPUT, when set
    date: float | None = None  # the commit's date (Unix seconds) instead of now: `advance --at`
    evidence: str = ""  # Markdown the PR body ends with: `advance`'s analysis
