"""The `tap` format: TAP version 13, one test point per resource, as kubeconform writes it.

    TAP version 13
    ok 1 - fixtures/valid.yaml (v1/ReplicationController//bob)
    not ok 2 - a.yaml (apps/v1/Deployment/prod/web): 12:7: weights sum to 90, not 100
    ok 3 - a.yaml (v1/Secret/prod/token) # skip
    not ok 4 - broken.yaml: 3:1: mapping values are not allowed here
    1..4

A resource is `apiVersion/Kind/namespace/name`. A point is `not ok` when the resource has a
finding at or above `--fail-on` (error by default: what makes the exit code 1) or could not be
checked; it then names those findings, `line:col: message` each, joined by `; `. Findings
below `--fail-on` leave the point `ok`, described as kubeconform describes a valid resource. A
finding that belongs to no resource (a file that does not parse) is a test point of its own,
after the resources of its file. The plan comes last, as kubeconform writes it: TAP takes a
plan only before the first test point or after the last line, so `--summary` puts its lines,
as TAP comments, before the plan. What a point quotes from the input goes through `printable`
(controls and line breaks as escapes), and `#` becomes `\\#`.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshcanary.problem import Problem, Severity, printable
from meshcanary.report import (
    Report,
    ResourceResult,
    Status,
    file_order,
    qualified_name,
    summary_lines,
    unattached,
)


def _text(value: str) -> str:
    # One line per test point, and a bare `#` would start a directive.
    return printable(value).replace("#", "\\#")


UNREADABLE = "input"  # input that could not be read or parsed


def _fails(problem: Problem, fail_on: Severity) -> bool:
    return problem.severity.rank >= fail_on.rank


def _findings(problems: Sequence[Problem], fallback: str) -> str:
    found = [f"{p.location.line}:{p.location.column}: {_text(p.message)}" for p in problems]
    return "; ".join(found) or fallback


def _point(result: ResourceResult, fail_on: Severity) -> tuple[bool, str]:
    """Whether the resource passed, and the test point's description."""
    subject = f"{_text(result.file)} ({_text(qualified_name(result.resource))})"
    if result.status is Status.SKIPPED:
        return True, f"{subject} # skip"
    failing = [p for p in result.problems if _fails(p, fail_on)]
    if result.status is Status.ERROR:
        if not (result.resource.kind or result.resource.name):
            subject = _text(result.file)  # kubeconform: no signature for what did not parse
        return False, f"{subject}: {_findings(failing, 'could not be checked')}"
    if failing or (result.status is Status.INVALID and not result.problems):
        return False, f"{subject}: {_findings(failing, 'invalid')}"
    return True, subject


class TapReporter:
    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        by_file: dict[str, list[tuple[bool, str]]] = {file: [] for file in file_order(report)}
        for result in report.results:
            by_file[result.file].append(_point(result, fail_on))
        for problem in unattached(report):
            file = problem.location.file
            if problem.rule == UNREADABLE or _fails(problem, fail_on):
                by_file[file].append((False, f"{_text(file)}: {_findings([problem], '')}"))
            else:
                by_file[file].append((True, _text(file)))
        points = [point for file_points in by_file.values() for point in file_points]
        lines = ["TAP version 13"]
        lines += [
            f"{'ok' if passed else 'not ok'} {number} - {description}"
            for number, (passed, description) in enumerate(points, start=1)
        ]
        if summary:
            lines += [f"# {line}" for line in summary_lines(report)]
        lines.append(f"1..{len(points)}")
        return "".join(line + "\n" for line in lines)
