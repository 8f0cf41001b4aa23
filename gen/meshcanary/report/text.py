"""The `text` format: one `file:line:col: severity: message [rule]` line per finding.

    deploy/a.yaml:12:7: error: weights sum to 90, not 100 [weights-sum]
      hint: make the weights of the route add up to 100

With `--summary` it ends with the findings by severity (`2 errors, 1 warning`) when there are
any, then kubeconform's summary line, word for word:

    Summary: 7 resources found in 2 files - Valid: 6, Invalid: 1, Errors: 0, Skipped: 0

File names, messages, hints and rule IDs are shown through `printable`: one line each, with
control and invisible characters as escapes (`\\n`, `\\x1b`, `\\u202e`).
"""

from __future__ import annotations

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import Report, summary_lines

# Plain ANSI codes: importing Rich for three colours would cost more than the whole report.
_COLORS = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.INFO: "\x1b[1;36m",
}
_RESET = "\x1b[0m"


def format_problem(problem: Problem, *, color: bool = False) -> str:
    """`file:line:col: severity: message [rule]`, and `  hint: ...` on a line of its own."""
    severity = problem.severity.value
    if color:
        severity = f"{_COLORS[problem.severity]}{severity}{_RESET}"
    # Every part but the severity quotes the input (a policy names its own rule): printable.
    location, message = printable(str(problem.location)), printable(problem.message)
    text = f"{location}: {severity}: {message} [{printable(problem.rule)}]"
    if problem.hint:
        text += f"\n  hint: {printable(problem.hint)}"
    return text


class TextReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        lines = [format_problem(p, color=color) for p in report.problems]
        if summary:
            lines += summary_lines(report)
        return "".join(line + "\n" for line in lines)
