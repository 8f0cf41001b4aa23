"""The outcomes that stop a command: bad input (exit 2) and a refused operation."""

from __future__ import annotations

from collections.abc import Iterable

from meshcanary.problem import Problem


class MeshcanaryError(Exception):
    """Something the user must fix before the command can run; maps to exit code 2."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            # Not about a place in a file: still one `error: ` line, as located ones say it.
            self.text = problems if problems.startswith("error: ") else f"error: {problems}"
        else:
            # A base used by several releases fails once per release: say it once.
            self.problems = tuple(sorted(dict.fromkeys(problems), key=Problem.sort_key))
            self.text = "\n".join(p.format() for p in self.problems)
        super().__init__(self.text)


class InputError(MeshcanaryError):
    """A release file, environment file or base that cannot be used as it is."""


class ToolError(MeshcanaryError):
    """An external tool (kustomize, git) is missing or failed."""
