"""Everything meshcanary does with git after an edit: checks, branch, commit, push, PR text.

`session` opens the repository with a git hook's `GIT_*` variables kept out; `branch` names
branches and refuses confusing names and unsafe states of HEAD; `commit` runs the preflight
and commits exactly the edited paths; `push` pushes, never forced; `pr` writes the pull
request's title and body and the `$GITHUB_OUTPUT` lines. The names callers use are here.
"""

from __future__ import annotations

from meshcanary.gitops.branch import Base, branch_name, branch_problem, return_to_base
from meshcanary.gitops.commit import FILES_KEPT, Committed, commit, preflight
from meshcanary.gitops.pr import PullRequest, pr_body, pr_title, write_github_output
from meshcanary.gitops.push import pending_on_remote, push
from meshcanary.gitops.session import GitError, clean_env

__all__ = [
    "FILES_KEPT",
    "Base",
    "Committed",
    "GitError",
    "PullRequest",
    "branch_name",
    "branch_problem",
    "clean_env",
    "commit",
    "pending_on_remote",
    "pr_body",
    "pr_title",
    "preflight",
    "push",
    "return_to_base",
    "write_github_output",
]
