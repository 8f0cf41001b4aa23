"""The outcomes that stop a command: bad input (exit 2) and a refused operation."""

from __future__ import annotations

from collections.abc import Iterable

from meshcanary.problem import Problem, printable

_HINT = "\n  hint: "


class MeshcanaryError(Exception):
    """Something the user must fix before the command can run; maps to exit code 2."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            # Not about a place in a file: still one `error: ` line, as located ones say it,
            # and the hint (after the `\n  hint: ` that `Problem.format` also writes) on its own.
            # Both quote untrusted text (file names, kustomize's and git's output): printable.
            message, hinted, hint = problems.removeprefix("error: ").partition(_HINT)
            self.text = f"error: {printable(message)}"
            if hinted:
                self.text += f"{_HINT}{printable(hint)}"
        else:
            # A base used by several releases fails once per release: say it once.
            self.problems = tuple(sorted(dict.fromkeys(problems), key=Problem.sort_key))
            self.text = "\n".join(p.format() for p in self.problems)
        super().__init__(self.text)


class InputError(MeshcanaryError):
    """A release file, environment file or base that cannot be used as it is."""


class ToolError(MeshcanaryError):
    """An external tool (kustomize, git) is missing or failed."""
