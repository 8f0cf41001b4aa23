"""The `markdown` format: the whole report as a Markdown page (a job summary, a PR comment).

    ### meshcanary: 2 errors, 1 warning

    | | where | finding | rule |
    |---|---|---|---|
    | error | `deploy/a.yaml:12:7` | weights sum to 90, not 100 | `weights-sum` |

`--format github` writes this page to `$GITHUB_STEP_SUMMARY` as well: GitHub shows at most
ten error and ten warning annotations per step, and the page shows every finding. Every text
from the input is in a code span or escaped, so nothing in it is a link, an image or HTML.
"""

from __future__ import annotations

import re

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import Report, severity_line, summary_line

_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def text(value: str) -> str:
    """`value` as Markdown text on one line: every character Markdown could read escaped."""
    return _SPECIAL.sub(r"\\\1", printable(value))


def code(value: str) -> str:
    """`value` as inline code, with more backticks than any run inside; `|` escaped for tables
    (GitHub reads `\\|` as a pipe even inside a code span of a table cell)."""
    shown = printable(value)
    ticks = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    pad = " " if shown[:1] == "`" or shown[-1:] == "`" else ""
    return f"{ticks}{pad}{shown}{pad}{ticks}".replace("|", "\\|")


def row(problem: Problem) -> str:
    message = text(problem.message)
    if problem.hint:
        message += f"<br>hint: {text(problem.hint)}"
    return (
        f"| {problem.severity.value} | {code(str(problem.location))} | {message} "
        f"| {code(problem.rule)} |"
    )


class MarkdownReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        counts = severity_line(report) or "no findings"
        lines = [f"### meshcanary: {counts}", ""]
        if report.problems:
            lines += ["| | where | finding | rule |", "|---|---|---|---|"]
            lines += [row(p) for p in report.problems]
            lines.append("")
        if summary:
            lines += [text(summary_line(report)), ""]
        return "\n".join(lines)
