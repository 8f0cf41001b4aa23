"""The `github` format: one GitHub Actions workflow command per finding.

    ::error file=deploy/a.yaml,line=12,col=7,title=weights-sum::weights sum to 90%0Ahint: ...

Errors are `::error`, warnings `::warning`, info `::notice`; GitHub shows each on the line it
names in the pull request. Values are escaped as the Actions runner unescapes them (`%`, CR
and LF in the message; also `:` and `,` in properties, as the Actions toolkit does). Before
that, what they quote from the input goes through `printable`, as in the text format: the only
line break in a message is the one before its hint, and no control or bidi character reaches
the log or the annotation. With `--summary` the text format's summary lines follow as plain
log lines.
"""

from __future__ import annotations

from dataclasses import replace

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import Report, summary_lines
from meshcanary.report.text import format_problem

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(value: str) -> str:
    """The message after `::`: `%`, CR and LF are what the runner decodes there."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A `key=value` property: the data escapes plus `:` and `,`, which end a property."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(problem: Problem) -> str:
    loc = problem.location
    properties = {
        "file": printable(loc.file),
        "line": str(loc.line),
        "col": str(loc.column),
        "title": printable(problem.rule),
    }
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    message = printable(problem.message)
    if problem.hint:
        message += f"\nhint: {printable(problem.hint)}"
    return f"::{_COMMANDS[problem.severity]} {props}::{escape_data(message)}"


# GitHub shows at most 10 error, 10 warning (and 10 notice) annotations per step, and drops
# the rest without a word.
LIMIT = 10


def workflow_commands(problems: list[Problem]) -> list[str]:
    """One workflow command per finding, the first LIMIT of each kind; the last of those says
    how many more there are, and the rest are plain log lines (the job summary has them all)."""
    kinds = [_COMMANDS[p.severity] for p in problems]
    totals = {kind: kinds.count(kind) for kind in set(kinds)}
    seen: dict[str, int] = {}
    lines = []
    for problem, kind in zip(problems, kinds, strict=True):
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] > LIMIT:
            lines.append(format_problem(problem))
            continue
        more = totals[kind] - LIMIT if seen[kind] == LIMIT else 0
        if more:
            word = {"error": "errors", "warning": "warnings", "notice": "notices"}[kind]
            problem = replace(
                problem,
                message=f"{problem.message} (and {more} more {word}, not shown as annotations: "
                "see the job summary or the log)",
            )
        lines.append(annotation(problem))
    return lines


class GithubReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        lines = workflow_commands(list(report.problems))
        if summary:
            lines += summary_lines(report)
        return "".join(line + "\n" for line in lines)
