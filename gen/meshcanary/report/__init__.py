"""Reports: one model of what a check found, and one module per output format.

Every format renders the same `Report`; `FORMATS` maps the names the CLI accepts to the
reporter classes, so adding a format is adding a module and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from meshcanary.problem import Problem, ResourceRef, Severity


class Status(StrEnum):
    """What happened to one resource, in kubeconform's words."""

    VALID = "valid"
    INVALID = "invalid"  # it has findings
    ERROR = "error"  # it could not be checked (no schema, unreadable)
    SKIPPED = "skipped"  # --skip, or no schema with --ignore-missing-schemas


@dataclass(frozen=True)
class ResourceResult:
    """One resource that was checked and its findings."""

    file: str
    resource: ResourceRef
    status: Status
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class RuleInfo:
    """What a report needs to know about a rule (SARIF lists them in its driver)."""

    id: str
    severity: Severity
    summary: str
    help: str = ""


@dataclass(frozen=True)
class Report:
    """Everything one run of `check` or `lint` found."""

    problems: tuple[Problem, ...]  # every finding, sorted by position
    results: tuple[ResourceResult, ...] = ()  # one per resource, in input order
    files: int = 0  # files read (kubeconform counts them in its summary)
    stdin: bool = False  # the input was standard input
    rules: tuple[RuleInfo, ...] = field(default=())
    checks: tuple[str, ...] = field(default=())  # the stages that ran, e.g. ("schema", "rules")

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    def at_least(self, severity: Severity) -> list[Problem]:
        return [p for p in self.problems if p.severity.rank >= severity.rank]

    def unreadable(self) -> list[Problem]:
        """Problems with the input itself (a file that cannot be read or parsed): exit 2."""
        return [p for p in self.problems if p.rule == "input"]

    def relocated(self, shown: Callable[[str], str]) -> Report:
        """The same report with every file named as `shown` names it."""

        def moved(problem: Problem) -> Problem:
            where = problem.location
            return replace(problem, location=replace(where, file=shown(where.file)))

        moves = {p: moved(p) for p in self.problems}
        for result in self.results:
            moves.update((p, moved(p)) for p in result.problems if p not in moves)
        return replace(
            self,
            problems=tuple(moves[p] for p in self.problems),
            results=tuple(
                replace(r, file=shown(r.file), problems=tuple(moves[p] for p in r.problems))
                for r in self.results
            ),
        )


from typing import Protocol  # noqa: E402


class Reporter(Protocol):
    """One output format: the whole report as the text to print."""

    def render(
        self, report: Report, *, summary: bool, color: bool, fail_on: Severity = Severity.ERROR
    ) -> str:
        """`fail_on` is `--fail-on`: the formats that pass or fail (JUnit, TAP) fail on it."""
        ...


def counted(count: int, word: str) -> str:
    """`1 resource`, `7 resources`, and `0 resource`: kubeconform adds the `s` above one only."""
    return f"{count} {word}{'s' if count > 1 else ''}"


def summary_line(report: Report) -> str:
    """kubeconform's `-summary` line, word for word."""
    found = counted(len(report.results), "resource") + " found"
    where = "parsing stdin" if report.stdin else "in " + counted(report.files, "file")
    return (
        f"Summary: {found} {where} - Valid: {report.count(Status.VALID)}, "
        f"Invalid: {report.count(Status.INVALID)}, Errors: {report.count(Status.ERROR)}, "
        f"Skipped: {report.count(Status.SKIPPED)}"
    )


def severity_line(report: Report) -> str:
    """`2 errors, 1 warning, 3 info`: the findings by severity, empty when there are none."""
    words = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
    parts = []
    for severity, word in words.items():
        count = sum(1 for p in report.problems if p.severity is severity)
        if count:
            parts.append(f"{count} {word}" if severity is Severity.INFO else counted(count, word))
    return ", ".join(parts)


def summary_lines(report: Report) -> list[str]:
    """What `--summary` appends to the line-based formats."""
    counts = severity_line(report)
    return [counts, summary_line(report)] if counts else [summary_line(report)]


def qualified_name(resource: ResourceRef) -> str:
    """kubeconform's `apiVersion/Kind/namespace/name` (`v1/ReplicationController//bob`)."""
    return f"{resource.api_version}/{resource.kind}/{resource.namespace}/{resource.name}"


def unattached(report: Report) -> list[Problem]:
    """Findings no resource result carries (a file that does not parse has no resource)."""
    attached = {p for result in report.results for p in result.problems}
    return [p for p in report.problems if p not in attached]


def file_order(report: Report) -> list[str]:
    """Files in the order results, then findings, first name them."""
    files = [r.file for r in report.results] + [p.location.file for p in report.problems]
    return list(dict.fromkeys(files))


# The formats, by the name `--format` takes: the one list of them (the CLI's choices come from
# it). Each is imported when it is used, so `--help` and the other formats do not pay for it.
FORMATS: dict[str, str] = {
    "text": "meshcanary.report.text:TextReporter",
    "json": "meshcanary.report.json_report:JsonReporter",
    "junit": "meshcanary.report.junit:JunitReporter",
    "sarif": "meshcanary.report.sarif:SarifReporter",
    "github": "meshcanary.report.github:GithubReporter",
    "tap": "meshcanary.report.tap:TapReporter",
    "markdown": "meshcanary.report.markdown:MarkdownReporter",
}


def reporter(name: str) -> Reporter:
    """The reporter of the format called `name`."""
    from importlib import import_module

    module, _, attribute = FORMATS[name].partition(":")
    made: Reporter = getattr(import_module(module), attribute)()
    return made
